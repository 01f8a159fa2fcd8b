import Foundation
import KinemaCore

/// A credential as stored (API key or worker token): only the SHA-256 of the secret, never the secret.
public struct CredentialRecord: Sendable, Equatable {
    /// What it opens: the public API (an API key) or the worker protocol (a worker token).
    public var kind: CredentialKind
    /// Stable identifier shown to operators.
    public var id: String
    /// Whom it belongs to: the tenant an API key acts for; the name of a worker token (e.g. the GPU box it was made for).
    public var owner: String
    /// Lowercase hex SHA-256 of the full secret.
    public var hash: String
    /// The first characters of the secret, safe to show in listings.
    public var prefix: String
    /// When it was created.
    public var createdAt: Date
    /// When it was revoked; `nil` while valid.
    public var revokedAt: Date?
    /// API keys: the engine this key's tasks go to when a request names none (`kinema keys create --engine`);
    /// `nil`: the node's default.
    public var defaultEngine: String?

    /// Creates a record.
    public init(
        kind: CredentialKind, id: String, owner: String, hash: String, prefix: String, createdAt: Date, revokedAt: Date? = nil,
        defaultEngine: String? = nil
    ) {
        self.kind = kind
        self.id = id
        self.owner = owner
        self.hash = hash
        self.prefix = prefix
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.defaultEngine = defaultEngine
    }

    /// A new record for `secret`, as `kinema keys create` and `kinema worker-tokens create` make them.
    public static func new(
        _ kind: CredentialKind, secret: String, owner: String, defaultEngine: String? = nil, now: Date = Date()
    ) -> CredentialRecord {
        CredentialRecord(
            kind: kind, id: UUID().uuidString.lowercased(),
            owner: owner, hash: Credential.hash(secret), prefix: Credential.displayPrefix(secret), createdAt: now,
            defaultEngine: defaultEngine
        )
    }
}
