import KinemaCore

/// Why an image URL could not be fetched; `message` is one sentence fit to show the caller.
public struct FetchError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Equatable {
        /// The text is not an absolute URL with a host, or carries credentials (`user:pass@`).
        case invalidURL
        /// The scheme is not `http` or `https`.
        case unsupportedScheme
        /// The host resolves to an address the policy refuses (loopback, private, metadata, …).
        case refusedAddress
        /// The host name did not resolve.
        case dnsFailure
        /// No connection could be made, or it broke before the body was complete.
        case connectionFailed
        /// The whole fetch, redirects included, took longer than the configured time cap.
        case timeout
        /// The server answered with a status other than 2xx (or a redirect without a usable `Location`).
        case httpStatus
        /// More redirects than allowed, or a redirect loop.
        case tooManyRedirects
        /// The body is larger than the byte cap.
        case tooLarge
        /// The task running the fetch was cancelled.
        case cancelled
    }

    /// What went wrong.
    public var code: Code
    /// One human sentence saying why, e.g. "the image URL resolves to 10.0.0.5, a private address, which is refused".
    public var message: String

    /// The HTTP status of a `.httpStatus` failure.
    public var status: Int?

    /// An error with a code and a message.
    public init(code: Code, message: String, status: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
    }

    /// "code: message".
    public var description: String { "\(code.rawValue): \(message)" }

    /// The validation problem this failure is for the request field `field` (e.g. `image`): `tooLarge` is
    /// `IMAGE_FILE_EXCEEDS_MAX_SIZE`, an unsupported scheme is `INVALID_IMAGE_FORMAT` (as the contract says),
    /// everything else is `IMAGE_FETCH_FAILED`.
    public func validationError(field: String) -> ValidationError {
        let kind: ValidationError.Kind =
            switch code {
            case .tooLarge: .imageFileTooLarge
            case .unsupportedScheme: .invalidImageFormat
            default: .imageFetchFailed
            }
        return ValidationError(kind, field: field, message)
    }
}
