import Foundation

/// Worker token secrets (remote workers' credentials): generation, hashing for storage, and the shape check.
///
/// Distinct from API keys by prefix, so neither kind of secret is ever accepted where the other belongs:
/// an API key is refused on the worker routes and a worker token on the public `/v3` routes.
public enum WorkerToken {
    /// Every worker token starts with this (API keys start with `kin_`).
    public static let prefix = "kwt_"

    /// A new secret: `kwt_` + 43 base64url characters (256 random bits from the system CSPRNG).
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return prefix + APIKey.base64URL(bytes)
    }

    /// The stored form of a secret: lowercase hex SHA-256.
    public static func hash(_ secret: String) -> String {
        SHA256.hash(Array(secret.utf8)).hexString
    }

    /// Whether `secret` could be a worker token at all (cheap check before touching the store).
    public static func isWellFormed(_ secret: String) -> Bool {
        guard secret.hasPrefix(prefix), secret.utf8.count == prefix.utf8.count + 43 else { return false }
        return secret.utf8.dropFirst(prefix.utf8.count).allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
        }
    }

    /// The part of a token that is safe to show in listings.
    public static func displayPrefix(_ secret: String) -> String {
        String(secret.prefix(prefix.count + 6))
    }
}
