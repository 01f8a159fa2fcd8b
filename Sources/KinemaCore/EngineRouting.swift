/// The engines a task can be routed to (`architecture.md`, "Engine routing"): short, stable names recorded on every
/// task at submit and named by every worker at claim.
public enum EngineNames {
    /// The built-in CPU motion engine; the default when an operator enables none.
    public static let motion = "motion"
    /// Open-weight models in the Python GPU worker (`workers/diffusers`).
    public static let diffusers = "diffusers"
    /// Every name `kinema serve --engine` and `extra.engine` accept.
    public static let known: [String] = [motion, diffusers, "novita", "kling", "fal"]

    /// Whether `name` has the shape of an engine name a worker may claim for (1–64 of `A-Za-z0-9._-`); a worker may
    /// name an engine this build does not know yet (it then simply finds no tasks).
    public static func isWellFormed(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }
}

/// Request features an engine may or may not honour. A task needs some of them; a worker says which it honours, and
/// is handed only tasks it can run in full: a task is never silently degraded.
public struct RequestFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: Int

    public init(rawValue: Int) {
        self.rawValue = rawValue
    }

    /// Last-frame conditioning (`end_image`).
    public static let endImage = RequestFeatures(rawValue: 1)
    /// Several shots with their own prompts (`multi_prompt`).
    public static let multiPrompt = RequestFeatures(rawValue: 2)
    /// An audio track (`sound: true`).
    public static let sound = RequestFeatures(rawValue: 4)
    /// Everything this build knows.
    public static let all: RequestFeatures = [.endImage, .multiPrompt, .sound]

    /// The wire names of the features, as the worker protocol's `capabilities` lists them.
    public static let names: [(String, RequestFeatures)] = [("end_image", .endImage), ("multi_prompt", .multiPrompt), ("sound", .sound)]

    /// The features named in `names`; names this build does not know are ignored (a newer worker may know more).
    public init(names list: [String]) {
        var features: RequestFeatures = []
        for name in list {
            if let feature = Self.names.first(where: { $0.0 == name })?.1 { features.insert(feature) }
        }
        self = features
    }

    /// The wire names of these features, in a fixed order.
    public var names: [String] { Self.names.filter { contains($0.1) }.map(\.0) }
}

extension GenerationRequest {
    /// The features a worker must honour to run this request in full.
    public var requiredFeatures: RequestFeatures {
        var features: RequestFeatures = []
        if hasEndImage { features.insert(.endImage) }
        if shots != nil { features.insert(.multiPrompt) }
        if sound { features.insert(.sound) }
        return features
    }
}
