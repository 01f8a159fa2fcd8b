/// A render failure, saying whether another attempt could succeed.
///
/// Engines throw it (or the worker wraps other errors in it): bad input is not retryable, a transient
/// resource problem is.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    /// The reason shown to the caller in `task.reason`.
    public var message: String
    /// Whether the worker should put the task back for another attempt.
    public var retryable: Bool

    public init(_ message: String, retryable: Bool) {
        self.message = message
        self.retryable = retryable
    }

    public var description: String { message }
}

/// The engine cannot run the task now but nothing is wrong with the task (an upstream provider refusing the account,
/// before anything was submitted): the worker hands the task back without counting the attempt.
public struct EnginePostponed: Error, Sendable, CustomStringConvertible {
    /// Why, for the log.
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
