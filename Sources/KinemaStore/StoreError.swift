import Foundation

/// Errors of the task store.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A task with this id already exists.
        case duplicateTask
        /// A credential with this id or hash already exists.
        case duplicateCredential
        /// The record breaks a rule of the store (e.g. `maxAttempts < 1`); nothing was written.
        case invalidRecord
        /// The database cannot be reached, opened, or is busy beyond its timeout.
        case unavailable
        /// The stored data is unreadable or breaks the store's invariants.
        case corrupt
        /// The schema could not be brought up to date (or was written by a newer version).
        case migrationFailed
        /// The tenant already has `NewTask.tenantActiveLimit` queued or running tasks; nothing was written.
        case quotaExceeded
    }

    /// What went wrong, for callers to branch on.
    public var code: Code
    /// What went wrong, for people.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
