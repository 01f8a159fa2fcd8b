import Foundation
import KinemaAPIModels

/// What went wrong, with the server's own words when it answered: its `reason`, `message` and `metadata` (for a
/// validation error, `metadata["field"]` names the request field).
public struct KinemaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server answered with the contract's error body (or another non-2xx answer).
        case api(status: Int)
        /// No answer: the server could not be reached, or the connection broke.
        case unreachable
        /// `wait` ran out of time.
        case timedOut
        /// The task finished without a video (`download` of a failed task).
        case taskFailed
        /// The request could not be built (an unreadable image file).
        case invalidRequest
        /// An answer this client cannot read.
        case invalidAnswer
    }

    public var kind: Kind
    /// The contract's UPPER_SNAKE reason, e.g. `INVALID_REQUEST_BODY`, `TASK_NOT_FOUND`, `INVALID_API_KEY`.
    public var reason: String
    public var message: String
    public var metadata: [String: String]

    public init(_ kind: Kind, reason: String, message: String, metadata: [String: String] = [:]) {
        self.kind = kind
        self.reason = reason
        self.message = message
        self.metadata = metadata
    }

    /// The request field a validation error names, if any.
    public var field: String? { metadata["field"] }
    /// The HTTP status, for errors the server answered.
    public var status: Int? {
        if case .api(let status) = kind { return status }
        return nil
    }

    public var description: String {
        var text = "\(reason): \(message)"
        if let field { text += " (field \(field))" }
        return text
    }
}
