import Foundation

/// Signs and verifies expiring download links: HMAC-SHA256 over the blob key and the expiry time.
public struct URLSigner: Sendable {
    /// Why a signed link was refused.
    public enum Verdict: Sendable, Equatable {
        case valid
        case expired
        case badSignature
    }

    /// The secret's HMAC key, padded blocks already hashed (a poll signs a URL).
    private let mac: SHA256.HMACKey

    /// `secret` should be at least 32 random bytes, kept with the service's data.
    public init(secret: [UInt8]) {
        precondition(secret.count >= 16, "URL signing secret too short")
        self.mac = SHA256.HMACKey(secret)
    }

    /// Hex signature of `key` valid until `expires` (unix seconds): HMAC-SHA256 of "key\nexpires".
    public func signature(key: String, expires: Int64) -> String {
        var message = Array(key.utf8)
        message.append(0x0A)
        message += String(expires).utf8
        return mac.authenticate(message).hexString
    }

    /// The query string `expires=…&sig=…` for `key`, valid for `ttl` seconds from `now`.
    public func query(key: String, ttl: Int, now: Date) -> String {
        let expires = Int64(now.timeIntervalSince1970.rounded(.down)) + Int64(ttl)
        return "expires=\(expires)&sig=\(signature(key: key, expires: expires))"
    }

    /// Checks a presented signature: the signature first (so tampering is reported as such), then the expiry.
    public func verify(key: String, expires: Int64, signature presented: String, now: Date) -> Verdict {
        let expected = Array(signature(key: key, expires: expires).utf8)
        guard constantTimeEquals(expected, Array(presented.lowercased().utf8)) else { return .badSignature }
        return Int64(now.timeIntervalSince1970) < expires ? .valid : .expired
    }
}
