import Foundation

/// An `Idempotency-Key` a submit carries: its tenant's key and the hash of the exact request body.
public struct IdempotencyClaim: Sendable, Equatable {
    public var key: String
    /// SHA-256 of the request body, in hex: the same key with another body is a different request.
    public var requestHash: String

    public init(key: String, requestHash: String) {
        self.key = key
        self.requestHash = requestHash
    }

    /// How long a key stands for its task (the contract's 24 h).
    public static let lifetime: TimeInterval = 24 * 3600
}

/// The submit a live idempotency key already stands for.
public struct IdempotentSubmit: Sendable, Equatable {
    public var taskID: UUID
    public var requestHash: String

    public init(taskID: UUID, requestHash: String) {
        self.taskID = taskID
        self.requestHash = requestHash
    }
}

/// `enqueue` found the task's idempotency key already taken (by an earlier or a concurrent submit): nothing was stored.
public struct IdempotencyConflict: Error, Sendable, Equatable {
    public var existing: IdempotentSubmit

    public init(existing: IdempotentSubmit) {
        self.existing = existing
    }
}
