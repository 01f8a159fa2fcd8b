import Foundation

/// A tenant's webhook signing secret in the Standard Webhooks form: `whsec_` followed by the base64 of the key bytes.
public struct WebhookSecret: Sendable, Equatable, CustomStringConvertible {
    /// The secret as it is shown to the tenant and stored: `whsec_<base64>`.
    public let text: String
    /// The HMAC key: the base64-decoded part after `whsec_`.
    public let key: [UInt8]

    public static let prefix = "whsec_"

    /// Parses `whsec_<base64>` (at least 16 key bytes); `nil` for anything else.
    public init?(_ text: String) {
        guard text.hasPrefix(Self.prefix), let bytes = Data(base64Encoded: String(text.dropFirst(Self.prefix.count))), bytes.count >= 16
        else { return nil }
        self.text = text
        self.key = [UInt8](bytes)
    }

    /// A new secret of 32 random bytes.
    public static func generate() -> WebhookSecret {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return WebhookSecret(Self.prefix + Data(bytes).base64EncodedString())!
    }

    /// Never the secret itself: a value printed by accident shows only its kind.
    public var description: String { "whsec_…" }
}

/// Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`): HMAC-SHA256 over
/// `"<id>.<timestamp>.<body>"`, base64, prefixed `v1,`; several signatures (a rotation) are separated by spaces.
public enum WebhookSignature {
    /// `v1,<base64 HMAC-SHA256>` of one delivery under one secret.
    public static func sign(id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret) -> String {
        let message = Array("\(id).\(timestamp).".utf8) + body
        return "v1," + Data(SHA256.hmac(key: secret.key, message: message)).base64EncodedString()
    }

    /// The `webhook-signature` header: one signature per secret, space-separated (the newest first).
    public static func header(id: String, timestamp: Int64, body: [UInt8], secrets: [WebhookSecret]) -> String {
        secrets.map { sign(id: id, timestamp: timestamp, body: body, secret: $0) }.joined(separator: " ")
    }

    /// Whether any signature in `header` is this delivery's under `secret` (compared in constant time).
    public static func verify(header: String, id: String, timestamp: Int64, body: [UInt8], secret: WebhookSecret) -> Bool {
        let expected = Array(sign(id: id, timestamp: timestamp, body: body, secret: secret).utf8)
        return header.split(separator: " ").contains { constantTimeEquals(Array($0.utf8), expected) }
    }
}
