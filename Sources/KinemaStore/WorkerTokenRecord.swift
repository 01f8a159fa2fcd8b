import Foundation

/// A remote worker's token as stored: only the SHA-256 of the secret, never the secret.
public struct WorkerTokenRecord: Sendable, Equatable {
    /// Stable identifier shown to operators.
    public var id: String
    /// What the operator called it (e.g. the GPU box it was made for).
    public var name: String
    /// Lowercase hex SHA-256 of the full secret.
    public var hash: String
    /// The first characters of the secret, safe to show in listings.
    public var prefix: String
    /// When the token was created.
    public var createdAt: Date
    /// When the token was revoked; `nil` while valid.
    public var revokedAt: Date?

    /// Creates a token record.
    public init(id: String, name: String, hash: String, prefix: String, createdAt: Date, revokedAt: Date?) {
        self.id = id
        self.name = name
        self.hash = hash
        self.prefix = prefix
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}
