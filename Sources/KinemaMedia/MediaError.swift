/// Why a media operation failed.
public struct MediaError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable {
        /// The bytes are not a format Kinema decodes (only PNG and JPEG).
        case unsupportedFormat
        /// The image claims to be PNG/JPEG but its header or pixel data is broken.
        case corruptImage
        /// The image is larger than the configured `ImageLimits`.
        case exceedsLimits
        /// An FFmpeg codec or muxer call failed.
        case codec
        /// Reading or writing a file failed.
        case io
        /// The caller passed something inconsistent (wrong frame size, use after finish…).
        case invalidArgument
        /// The operation was stopped on request.
        case cancelled
    }

    /// What kind of failure this is.
    public var code: Code
    /// Says what was wrong and, where possible, how to fix it.
    public var message: String

    /// Creates an error with a code and a human-readable message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The code and message, for logs.
    public var description: String { "\(code.rawValue): \(message)" }
}
