import Foundation

/// The kinds of secret Kinema issues. Each has its own prefix, so neither is ever accepted where the other belongs:
/// an API key is refused on the worker routes and a worker token on the public `/v3` routes.
public enum CredentialKind: String, Sendable, CaseIterable, Codable {
    /// A client's key for the public API (acts for a tenant).
    case apiKey = "api_key"
    /// A remote worker's token for the worker protocol (named after the machine it was made for).
    case workerToken = "worker_token"

    /// Every secret of this kind starts with this, so it is recognisable in logs and secret scanners.
    public var prefix: String {
        switch self {
        case .apiKey: "kin_"
        case .workerToken: "kwt_"
        }
    }

    /// What people call it ("API key").
    public var noun: String {
        switch self {
        case .apiKey: "API key"
        case .workerToken: "worker token"
        }
    }
}

/// Credential secrets of every kind: generation, hashing for storage, and the shape check that precedes any lookup.
public enum Credential {
    /// A new secret: the kind's prefix + 43 base64url characters (256 random bits from the system CSPRNG).
    public static func generate(_ kind: CredentialKind) -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return kind.prefix + base64URL(bytes)
    }

    /// The stored form of a secret: lowercase hex SHA-256.
    public static func hash(_ secret: String) -> String {
        SHA256.hash(Array(secret.utf8)).hexString
    }

    /// Whether `secret` could be a credential of `kind` at all (cheap check before touching the store).
    public static func isWellFormed(_ secret: String, as kind: CredentialKind) -> Bool {
        guard secret.hasPrefix(kind.prefix), secret.utf8.count == kind.prefix.utf8.count + 43 else { return false }
        return secret.utf8.dropFirst(kind.prefix.utf8.count).allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
        }
    }

    /// The part of a secret that is safe to show in listings (its prefix and 6 characters).
    public static func displayPrefix(_ secret: String) -> String {
        String(secret.prefix(4 + 6))
    }

    /// Unpadded base64url.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
