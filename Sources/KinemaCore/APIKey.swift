import Foundation

/// API key secrets: generation, hashing for storage, and the shape check that precedes any lookup.
public enum APIKey {
    /// Every key starts with this, so a key is recognisable in logs and secret scanners.
    public static let prefix = "kin_"

    /// A new secret: `kin_` + 43 base64url characters (256 random bits from the system CSPRNG).
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return prefix + base64URL(bytes)
    }

    /// The stored form of a secret: lowercase hex SHA-256.
    public static func hash(_ secret: String) -> String {
        SHA256.hash(Array(secret.utf8)).hexString
    }

    /// Whether `secret` could be a key at all (cheap check before touching the store).
    public static func isWellFormed(_ secret: String) -> Bool {
        guard secret.hasPrefix(prefix), secret.utf8.count == prefix.utf8.count + 43 else { return false }
        return secret.utf8.dropFirst(prefix.utf8.count).allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
        }
    }

    /// The part of a key that is safe to show in listings.
    public static func displayPrefix(_ secret: String) -> String {
        String(secret.prefix(prefix.count + 6))
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
