/// One thing wrong with a request, with the contract reason it maps to and the JSON path of the field.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem it is; the API maps each kind to one contract `reason`.
    public enum Kind: String, Sendable, Equatable {
        /// `INVALID_REQUEST_BODY`
        case invalidRequestBody
        /// `INVALID_IMAGE_FORMAT`
        case invalidImageFormat
        /// `IMAGE_FILE_EXCEEDS_MAX_SIZE`
        case imageFileTooLarge
        /// `INVALID_IMAGE_SIZE`
        case invalidImageSize
        /// `IMAGE_EXCEEDS_MAX_RESOLUTION`
        case imageExceedsMaxResolution
        /// `IMAGE_FETCH_FAILED`
        case imageFetchFailed

        /// The contract's `reason` string.
        public var reason: String {
            switch self {
            case .invalidRequestBody: "INVALID_REQUEST_BODY"
            case .invalidImageFormat: "INVALID_IMAGE_FORMAT"
            case .imageFileTooLarge: "IMAGE_FILE_EXCEEDS_MAX_SIZE"
            case .invalidImageSize: "INVALID_IMAGE_SIZE"
            case .imageExceedsMaxResolution: "IMAGE_EXCEEDS_MAX_RESOLUTION"
            case .imageFetchFailed: "IMAGE_FETCH_FAILED"
            }
        }
    }

    public var kind: Kind
    /// JSON path of the offending field, e.g. `multi_prompt[1].duration`; "" for the body as a whole.
    public var field: String
    /// One human sentence: what was wrong and what is allowed.
    public var message: String

    public init(_ kind: Kind, field: String, _ message: String) {
        self.kind = kind
        self.field = field
        self.message = message
    }

    public var description: String { "\(kind.reason) (\(field)): \(message)" }
}
