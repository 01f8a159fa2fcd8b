import Foundation

/// A submit body that passed validation; its images are still to be resolved (URLs fetched) and checked.
public struct SubmitDraft: Sendable, Equatable {
    public var image: ImageInput
    public var endImage: ImageInput?
    /// The request, with `seed` as asked; `requestedSeed == nil` means "draw a random seed".
    public var request: GenerationRequest
    public var requestedSeed: UInt32?
    /// The engine asked for in `extra.engine` (ext), if any: the API checks it is one the operator enabled.
    public var requestedEngine: String? = nil
}

/// Validates a submit body exactly as the contract says: a pure function from bytes to a draft or an error.
public struct RequestValidator: Sendable {
    public var limits: ValidationLimits

    public init(limits: ValidationLimits = ValidationLimits()) {
        self.limits = limits
    }

    /// Parses and validates the JSON body of `POST /v3/async/kling-v3.0-std-i2v`.
    public func validate(body: Data) throws(ValidationError) -> SubmitDraft {
        try validate(body: [UInt8](body))
    }

    /// Parses and validates the JSON body of `POST /v3/async/kling-v3.0-std-i2v`, given as bytes.
    public func validate(body: [UInt8]) throws(ValidationError) -> SubmitDraft {
        let json: JSONValue
        do {
            json = try JSONParser(maxDepth: limits.maxJSONDepth, maxStringBytes: limits.maxJSONStringBytes).parse(body)
        } catch {
            throw Self.validationError(for: error, limits: limits)
        }
        return try validate(json: json)
    }

    /// The contract's answer to a body the parser refused: a limit that belongs to a field names that field, with the
    /// field's own reason (an oversized image is `IMAGE_FILE_EXCEEDS_MAX_SIZE`, not broken JSON).
    static func validationError(for error: JSONParseError, limits: ValidationLimits) -> ValidationError {
        // Inside a top-level array the body is not an object at all: no field of ours is involved.
        let field = error.path.hasPrefix("[") ? "" : error.path
        switch error.kind {
        case .stringTooLong where field == "image" || field == "end_image":
            return ValidationError(
                .imageFileTooLarge, field: field,
                "\(field) is larger than \(limits.maxImageBytes) bytes (10 MB) after base64 decoding; send a smaller PNG or JPEG.")
        case .stringTooLong where !field.isEmpty:
            return ValidationError(
                .invalidRequestBody, field: field,
                "\(field) is a string of more than \(limits.maxJSONStringBytes) bytes; text fields allow at most \(limits.maxPromptLength) characters."
            )
        case .stringTooLong:
            return ValidationError(
                .invalidRequestBody, field: "", "The request body has a member name longer than \(limits.maxJSONStringBytes) bytes.")
        case .tooDeep:
            return ValidationError(
                .invalidRequestBody, field: field,
                "\(field.isEmpty ? "The request body" : field) is nested deeper than \(limits.maxJSONDepth) levels of arrays and objects.")
        case .duplicateMember:
            return ValidationError(.invalidRequestBody, field: field, "\(field) is given more than once; send each field once.")
        case .syntax:
            let place = field.isEmpty ? "" : " in \(field)"
            return ValidationError(.invalidRequestBody, field: field, "The request body is not valid JSON\(place) (\(error.description)).")
        }
    }

    /// Validates an already parsed body.
    public func validate(json: JSONValue) throws(ValidationError) -> SubmitDraft {
        guard case .object = json else {
            throw ValidationError(.invalidRequestBody, field: "", "The request body must be a JSON object, not \(json.typeName).")
        }
        let multiPrompt = present(json["multi_prompt"])
        let endImageValue = present(json["end_image"])
        if multiPrompt != nil, endImageValue != nil {
            throw ValidationError(
                .invalidRequestBody, field: "end_image", "end_image and multi_prompt cannot be used together; send one or the other.")
        }

        guard let imageValue = present(json["image"]) else {
            throw ValidationError(
                .invalidRequestBody, field: "image", "image is required: an http(s) URL, raw base64 or a data:image/…;base64 URI of a PNG or JPEG.")
        }
        let image = try ImageInput.parse(try string(imageValue, field: "image"), field: "image", limits: limits)
        let endImage = try endImageValue.map { v throws(ValidationError) in
            try ImageInput.parse(try string(v, field: "end_image"), field: "end_image", limits: limits)
        }

        var prompt: String?
        if let p = present(json["prompt"]) {
            prompt = try text(p, field: "prompt", allowEmpty: false)
        } else if multiPrompt == nil {
            throw ValidationError(
                .invalidRequestBody, field: "prompt", "prompt is required (1 to \(limits.maxPromptLength) characters) unless multi_prompt is given.")
        }
        let negative = try present(json["negative_prompt"]).map { v throws(ValidationError) in
            try text(v, field: "negative_prompt", allowEmpty: true)
        }

        var duration: Int?
        if let d = present(json["duration"]) {
            duration = try integer(d, field: "duration", in: limits.minDuration...limits.maxDuration)
        }

        var cfgScale = GenerationRequest.defaultCfgScale
        if let c = present(json["cfg_scale"]) {
            guard case .number(let literal) = c else {
                throw ValidationError(.invalidRequestBody, field: "cfg_scale", "cfg_scale must be a number from 0 to 1, not \(c.typeName).")
            }
            guard let value = Double(literal), value.isFinite, (0...1).contains(value) else {
                throw ValidationError(
                    .invalidRequestBody, field: "cfg_scale", "cfg_scale is \(Self.shown(literal)); it must be between 0 and 1 inclusive.")
            }
            cfgScale = value
        }

        var sound = false
        if let s = present(json["sound"]) {
            guard case .bool(let b) = s else {
                throw ValidationError(.invalidRequestBody, field: "sound", "sound must be true or false, not \(s.typeName).")
            }
            sound = b
        }

        var shots: [Shot]?
        if let mp = multiPrompt {
            let parsed = try parseShots(mp)
            let total = parsed.reduce(0) { $0 + $1.duration }
            if total > limits.maxDuration {
                throw ValidationError(
                    .invalidRequestBody, field: "multi_prompt",
                    "The shots of multi_prompt add up to \(total) seconds; the video may last at most \(limits.maxDuration) seconds.")
            }
            if let d = duration, d != total {
                throw ValidationError(
                    .invalidRequestBody, field: "duration",
                    "duration is \(d) but the shots of multi_prompt add up to \(total) seconds; omit duration or make it equal to that sum.")
            }
            duration = total
            shots = parsed
        }

        var requestedSeed: UInt32?
        if let s = present(json["seed"]) {
            let value = try integer(s, field: "seed", in: -1...Int(UInt32.max))
            requestedSeed = value == -1 ? nil : UInt32(value)
        }

        var webhookURL: String?
        var engine: String?
        if let extra = present(json["extra"]) {
            guard case .object = extra else {
                throw ValidationError(.invalidRequestBody, field: "extra", "extra must be a JSON object, not \(extra.typeName).")
            }
            if let webhook = present(extra["webhook"]) {
                guard case .object = webhook else {
                    throw ValidationError(
                        .invalidRequestBody, field: "extra.webhook", "extra.webhook must be a JSON object such as {\"url\": \"https://…\"}.")
                }
                if let url = present(webhook["url"]) {
                    guard case .string(let text) = url else {
                        throw ValidationError(
                            .invalidRequestBody, field: "extra.webhook.url", "extra.webhook.url must be a string, not \(url.typeName).")
                    }
                    if let problem = Self.webhookURLProblem(text) {
                        throw ValidationError(.invalidRequestBody, field: "extra.webhook.url", "extra.webhook.url \(problem).")
                    }
                    webhookURL = text
                }
            }
            if let e = present(extra["engine"]) {
                guard case .string(let name) = e, EngineNames.isWellFormed(name) else {
                    throw ValidationError(
                        .invalidRequestBody, field: "extra.engine",
                        "extra.engine must be the name of an engine this server runs, such as \"\(EngineNames.motion)\".")
                }
                engine = name
            }
        }

        let request = GenerationRequest(
            prompt: prompt, negativePrompt: negative, duration: duration ?? GenerationRequest.defaultDuration, cfgScale: cfgScale, sound: sound,
            shots: shots, seed: requestedSeed ?? 0, hasEndImage: endImage != nil, webhookURL: webhookURL
        )
        return SubmitDraft(image: image, endImage: endImage, request: request, requestedSeed: requestedSeed, requestedEngine: engine)
    }

    // MARK: - Field rules

    /// A number literal as echoed in a message: a client may send megabytes of digits, the message stays a sentence.
    static func shown(_ literal: String) -> String {
        literal.utf8.count <= 40 ? literal : String(literal.prefix(24)) + "…(\(literal.utf8.count) digits)"
    }

    /// JSON `null` counts as absent for every field: clients often send nulls for optional fields.
    private func present(_ value: JSONValue?) -> JSONValue? {
        if case .null? = value { return nil }
        return value
    }

    private func string(_ value: JSONValue, field: String) throws(ValidationError) -> String {
        guard case .string(let s) = value else {
            throw ValidationError(.invalidRequestBody, field: field, "\(field) must be a string, not \(value.typeName).")
        }
        return s
    }

    /// Text fields are counted in Unicode scalars, as the contract says.
    private func text(_ value: JSONValue, field: String, allowEmpty: Bool) throws(ValidationError) -> String {
        let s = try string(value, field: field)
        let count = s.unicodeScalars.count
        if count == 0 && !allowEmpty {
            throw ValidationError(.invalidRequestBody, field: field, "\(field) must not be empty (1 to \(limits.maxPromptLength) characters).")
        }
        if count > limits.maxPromptLength {
            throw ValidationError(
                .invalidRequestBody, field: field, "\(field) has \(count) characters; at most \(limits.maxPromptLength) are allowed.")
        }
        return s
    }

    private func integer(_ value: JSONValue, field: String, in range: ClosedRange<Int>) throws(ValidationError) -> Int {
        guard case .number(let literal) = value else {
            throw ValidationError(
                .invalidRequestBody, field: field,
                "\(field) must be a whole number from \(range.lowerBound) to \(range.upperBound), not \(value.typeName).")
        }
        guard let n = JSONNumber.exactInteger(literal) else {
            throw ValidationError(
                .invalidRequestBody, field: field,
                "\(field) is \(Self.shown(literal)); it must be a whole number from \(range.lowerBound) to \(range.upperBound).")
        }
        guard let i = Int(exactly: n), range.contains(i) else {
            throw ValidationError(
                .invalidRequestBody, field: field, "\(field) is \(Self.shown(literal)); it must be from \(range.lowerBound) to \(range.upperBound).")
        }
        return i
    }

    private func parseShots(_ value: JSONValue) throws(ValidationError) -> [Shot] {
        guard case .array(let items) = value else {
            throw ValidationError(
                .invalidRequestBody, field: "multi_prompt", "multi_prompt must be an array of 1 to \(limits.maxShots) shots, not \(value.typeName).")
        }
        guard (1...limits.maxShots).contains(items.count) else {
            throw ValidationError(
                .invalidRequestBody, field: "multi_prompt", "multi_prompt has \(items.count) shots; it must have 1 to \(limits.maxShots).")
        }
        var shots: [Shot] = []
        for (i, item) in items.enumerated() {
            let path = "multi_prompt[\(i)]"
            switch item {
            case .string:
                shots.append(Shot(prompt: try text(item, field: path, allowEmpty: false), duration: GenerationRequest.defaultDuration))
            case .object:
                guard let p = present(item["prompt"]) else {
                    throw ValidationError(
                        .invalidRequestBody, field: "\(path).prompt", "\(path).prompt is required (1 to \(limits.maxPromptLength) characters).")
                }
                let prompt = try text(p, field: "\(path).prompt", allowEmpty: false)
                var d = GenerationRequest.defaultDuration
                if let dv = present(item["duration"]) {
                    d = try integer(dv, field: "\(path).duration", in: limits.minDuration...limits.maxDuration)
                }
                shots.append(Shot(prompt: prompt, duration: d))
            default:
                throw ValidationError(
                    .invalidRequestBody, field: path, "\(path) must be an object {\"prompt\", \"duration\"} or a string, not \(item.typeName).")
            }
        }
        return shots
    }
}

/// Exact reading of JSON number literals.
public enum JSONNumber {
    /// The literal's value if it is a whole number that fits in 64 bits (`5`, `5.0`, `5e0`, `50e-1`), else `nil` (`5.5`, `1e30`).
    public static func exactInteger(_ literal: String) -> Int64? {
        var s = Substring(literal)
        var negative = false
        if s.first == "-" { negative = true; s = s.dropFirst() }
        var exponent = 0
        if let e = s.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            // A range check, not `abs(x) < 1000`: abs(Int.min) traps, and "1e-9223372036854775808" is valid JSON.
            guard let x = Int(s[s.index(after: e)...]), x > -1000, x < 1000 else { return nil }
            exponent = x
            s = s[..<e]
        }
        var digits = ""
        if let dot = s.firstIndex(of: ".") {
            let frac = s[s.index(after: dot)...]
            digits = String(s[..<dot]) + frac
            exponent -= frac.count
        } else {
            digits = String(s)
        }
        // Normalise: strip trailing zeros into the exponent, leading zeros away.
        while digits.count > 1, digits.last == "0" { digits.removeLast(); exponent += 1 }
        digits = String(digits.drop(while: { $0 == "0" }))
        if digits.isEmpty { return 0 }
        if exponent < 0 { return nil }
        guard digits.count + exponent <= 19 else { return nil }
        guard let base = Int64(digits + String(repeating: "0", count: exponent)) else { return nil }
        return negative ? -base : base
    }
}

extension RequestValidator {
    /// The longest webhook URL accepted.
    public static let maxWebhookURLLength = 2048

    /// Why `text` cannot be a webhook target (http or https, a host, at most 2048 characters, no credentials, no
    /// spaces), or `nil` when it can. Where it points is checked at delivery, by the safe fetcher's address rules.
    public static func webhookURLProblem(_ text: String) -> String? {
        if text.isEmpty { return "is empty" }
        if text.utf8.count > maxWebhookURLLength { return "is longer than \(maxWebhookURLLength) characters" }
        if text.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            return "contains spaces or control characters"
        }
        guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased() else {
            return "is not a URL (expected http://… or https://…)"
        }
        guard scheme == "http" || scheme == "https" else { return "must use http or https, not \(scheme)" }
        guard let host = parts.host, !host.isEmpty else { return "has no host" }
        if parts.user != nil || parts.password != nil { return "contains credentials (user:password@host), which are never sent" }
        return nil
    }
}
