/// The body of `POST /v3/async/kling-v3.0-std-i2v`, as a client sends it: every field of the contract and the
/// extensions; fields left `nil` are not sent (the server's defaults apply).
public struct SubmitRequestBody: Encodable, Sendable, Equatable {
    /// One shot of `multi_prompt`.
    public struct Shot: Encodable, Sendable, Equatable {
        public var prompt: String
        public var duration: Int?

        public init(prompt: String, duration: Int? = nil) {
            self.prompt = prompt
            self.duration = duration
        }
    }

    /// First frame: an http(s) URL, raw base64, or a `data:image/png|jpeg;base64,` URI.
    public var image: String
    public var prompt: String?
    public var negativePrompt: String?
    public var duration: Int?
    public var cfgScale: Double?
    public var sound: Bool?
    /// Last frame, in the same forms as `image`.
    public var endImage: String?
    public var multiPrompt: [Shot]?
    /// (ext) 0…4294967295, or -1 for a random seed.
    public var seed: Int64?
    /// (ext) Where the signed webhook goes when the task ends.
    public var webhookURL: String?
    /// (ext) One of the engines the server enabled.
    public var engine: String?

    public init(
        image: String, prompt: String? = nil, negativePrompt: String? = nil, duration: Int? = nil, cfgScale: Double? = nil,
        sound: Bool? = nil, endImage: String? = nil, multiPrompt: [Shot]? = nil, seed: Int64? = nil, webhookURL: String? = nil,
        engine: String? = nil
    ) {
        self.image = image
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.duration = duration
        self.cfgScale = cfgScale
        self.sound = sound
        self.endImage = endImage
        self.multiPrompt = multiPrompt
        self.seed = seed
        self.webhookURL = webhookURL
        self.engine = engine
    }

    enum CodingKeys: String, CodingKey {
        case image, prompt, duration, sound, seed, extra
        case negativePrompt = "negative_prompt"
        case cfgScale = "cfg_scale"
        case endImage = "end_image"
        case multiPrompt = "multi_prompt"
    }

    private struct Extra: Encodable {
        struct Webhook: Encodable { var url: String }
        var webhook: Webhook?
        var engine: String?
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(image, forKey: .image)
        try c.encodeIfPresent(prompt, forKey: .prompt)
        try c.encodeIfPresent(negativePrompt, forKey: .negativePrompt)
        try c.encodeIfPresent(duration, forKey: .duration)
        try c.encodeIfPresent(cfgScale, forKey: .cfgScale)
        try c.encodeIfPresent(sound, forKey: .sound)
        try c.encodeIfPresent(endImage, forKey: .endImage)
        try c.encodeIfPresent(multiPrompt, forKey: .multiPrompt)
        try c.encodeIfPresent(seed, forKey: .seed)
        if webhookURL != nil || engine != nil {
            try c.encode(Extra(webhook: webhookURL.map(Extra.Webhook.init), engine: engine), forKey: .extra)
        }
    }
}
