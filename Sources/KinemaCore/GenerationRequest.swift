import Foundation

/// One shot of a multi-shot request: its own prompt and length in seconds.
public struct Shot: Codable, Sendable, Equatable {
    /// What this shot shows and how the camera moves (1–2500 Unicode scalars).
    public var prompt: String
    /// Length of the shot in whole seconds (3…15).
    public var duration: Int

    public init(prompt: String, duration: Int) {
        self.prompt = prompt
        self.duration = duration
    }
}

/// A validated, immutable image-to-video request: everything an engine needs besides the image bytes.
///
/// Built only by `RequestValidator` (API and CLI alike), so every instance satisfies the contract's rules.
public struct GenerationRequest: Codable, Sendable, Equatable {
    /// The main prompt; `nil` only when `shots` is given.
    public var prompt: String?
    /// Moves and effects the caller does not want.
    public var negativePrompt: String?
    /// Total length in seconds (for multi-shot: the sum of the shots).
    public var duration: Int
    /// Adherence to the prompt, 0…1.
    public var cfgScale: Double
    /// Whether the MP4 carries an audio track.
    public var sound: Bool
    /// Multi-shot plan, in order; `nil` for a single-shot request.
    public var shots: [Shot]?
    /// The seed actually used (never -1 once stored: a random seed is drawn at submit time).
    public var seed: UInt32
    /// Whether an end image accompanies the request.
    public var hasEndImage: Bool
    /// Webhook target from `extra.webhook.url`, if any (delivery is a later feature).
    public var webhookURL: String?

    /// The request as clips in order: each shot's prompt and seconds, or the one prompt for the whole duration.
    public var clips: [(prompt: String, seconds: Int)] {
        shots?.map { ($0.prompt, $0.duration) } ?? [(prompt ?? "", duration)]
    }

    /// The contract's length in seconds when a request gives no `duration` (and of each shot that gives none).
    public static let defaultDuration = 5
    /// The contract's `cfg_scale` when a request gives none.
    public static let defaultCfgScale = 0.5

    public init(
        prompt: String?, negativePrompt: String? = nil, duration: Int = defaultDuration, cfgScale: Double = defaultCfgScale,
        sound: Bool = false, shots: [Shot]? = nil, seed: UInt32 = 0, hasEndImage: Bool = false,
        webhookURL: String? = nil
    ) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.duration = duration
        self.cfgScale = cfgScale
        self.sound = sound
        self.shots = shots
        self.seed = seed
        self.hasEndImage = hasEndImage
        self.webhookURL = webhookURL
    }

    /// Output frame rate of every engine's MP4.
    public static let framesPerSecond = 24

    /// Exact number of frames the finished video must have.
    public var frameCount: Int { duration * Self.framesPerSecond }
}
