/// Why the motion engine could not render a video.
public struct MotionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What kind of problem stopped the render.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name, e.g. `invalid_image`.
        public var rawValue: String
        /// Wraps a stable code name.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The first image could not be decoded (corrupt, truncated, unsupported or over the limits).
        public static let invalidImage = Code(rawValue: "invalid_image")
        /// The end image could not be decoded.
        public static let invalidEndImage = Code(rawValue: "invalid_end_image")
        /// The request asks for something the engine cannot render (e.g. zero frames).
        public static let invalidRequest = Code(rawValue: "invalid_request")
        /// Encoding or writing the MP4 failed.
        public static let encodingFailed = Code(rawValue: "encoding_failed")
        /// The render was cancelled before it finished.
        public static let cancelled = Code(rawValue: "cancelled")
        /// The code's stable name.
        public var description: String { rawValue }
    }

    /// What kind of problem stopped the render.
    public var code: Code
    /// Says what was wrong and, where possible, how to fix it.
    public var message: String
    /// The underlying error's description, if another layer failed first.
    public var cause: String?

    /// Creates an error with a code, a message and an optional underlying cause.
    public init(code: Code, message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    /// The code, message and cause, for logs.
    public var description: String {
        cause.map { "\(code): \(message) (\($0))" } ?? "\(code): \(message)"
    }
}
