/// Errors of the worker module that are not render failures (those are `EngineError`): talking to a server.
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for callers to branch on.
    public enum Code: String, Sendable {
        /// The server refused the worker token (missing, unknown or revoked).
        case unauthorized
        /// The server answered with an unexpected status; `message` carries its reason and message.
        case unexpectedResponse
        /// The server's answer could not be read.
        case invalidResponse
        /// A local file (the result to upload) could not be read.
        case io
    }

    /// What went wrong, for callers to branch on.
    public var code: Code
    /// What went wrong and what to check, for people.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
