import Foundation
import KinemaCore

#if canImport(Glibc)
import Glibc
#endif

/// AWS credentials: from the standard environment variables, never logged (`description` hides the secret).
public struct S3Credentials: Sendable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set, `AWS_SESSION_TOKEN`; `nil` without the first two.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> S3Credentials? {
        guard let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            return nil
        }
        let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
    }

    public var description: String { "S3Credentials(\(accessKeyID), secret hidden\(sessionToken == nil ? "" : ", session token hidden"))" }
}

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`): the canonical request, the string to sign, the signing key, and
/// either an `Authorization` header or a presigned URL's query. Paths and query values are given decoded and encoded
/// here once (RFC 3986 unreserved characters stay), as S3 expects; checked against AWS's published test suite.
public struct SigV4Signer: Sendable {
    public var credentials: S3Credentials
    public var region: String
    public var service: String

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// What is signed: headers as sent (names in any case), the path and query decoded.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        /// Lowercase hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
        public var payloadHash: String

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    public static let emptyPayloadHash = hex(SHA256.hash([UInt8]()))

    /// The canonical request and its signed-header list (`host;x-amz-date`).
    public static func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        let path = request.path.isEmpty ? "/" : encode(request.path, keepSlash: true)
        var pairs: [(name: String, value: String)] = []
        for (name, value) in request.query { pairs.append((encode(name, keepSlash: false), encode(value, keepSlash: false))) }
        pairs.sort { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        let query = pairs.map { pair in pair.name + "=" + pair.value }.joined(separator: "&")
        // Header values: trimmed, runs of spaces made one; repeated names joined with commas in the order sent.
        var byName: [String: [String]] = [:]
        var order: [String] = []
        for (name, value) in request.headers {
            let lower = name.lowercased()
            if byName[lower] == nil { order.append(lower) }
            byName[lower, default: []].append(collapseSpaces(value))
        }
        let names = order.sorted()
        let headerLines = names.map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
        let signed = names.joined(separator: ";")
        return ([request.method, path, query, headerLines, signed, request.payloadHash].joined(separator: "\n"), signed)
    }

    /// `20150830/us-east-1/service/aws4_request`
    public func scope(date: Date) -> String {
        "\(Self.dateStamp(date))/\(region)/\(service)/aws4_request"
    }

    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        ["AWS4-HMAC-SHA256", Self.amzDate(date), scope(date: date), Self.hex(SHA256.hash(Array(canonicalRequest.utf8)))]
            .joined(separator: "\n")
    }

    func signingKey(date: Date) -> [UInt8] {
        var key = SHA256.hmac(key: Array("AWS4\(credentials.secretAccessKey)".utf8), message: Array(Self.dateStamp(date).utf8))
        for part in [region, service, "aws4_request"] { key = SHA256.hmac(key: key, message: Array(part.utf8)) }
        return key
    }

    public func signature(stringToSign: String, date: Date) -> String {
        Self.hex(SHA256.hmac(key: signingKey(date: date), message: Array(stringToSign.utf8)))
    }

    /// The `Authorization` header for `request`, whose headers must already hold `x-amz-date` (and the session token,
    /// when there is one) and `host`.
    public func authorization(for request: Request, date: Date) -> String {
        let (canonical, signed) = Self.canonicalRequest(request)
        let signature = signature(stringToSign: stringToSign(canonicalRequest: canonical, date: date), date: date)
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(date: date)), SignedHeaders=\(signed), Signature=\(signature)"
    }

    /// The query of a presigned URL for `method` on `path` at `host` (the only signed header), valid `expires` seconds
    /// from `date` (S3 allows up to 7 days).
    public func presignedQuery(
        method: String, host: String, path: String, query: [(String, String)] = [], expires: Int, date: Date
    ) -> [(
        String, String
    )] {
        var items =
            query + [
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope(date: date))"),
                ("X-Amz-Date", Self.amzDate(date)), ("X-Amz-Expires", String(expires)), ("X-Amz-SignedHeaders", "host"),
            ]
        if let token = credentials.sessionToken { items.append(("X-Amz-Security-Token", token)) }
        let request = Request(method: method, path: path, query: items, headers: [("host", host)], payloadHash: Self.unsignedPayload)
        let (canonical, _) = Self.canonicalRequest(request)
        items.append(("X-Amz-Signature", signature(stringToSign: stringToSign(canonicalRequest: canonical, date: date), date: date)))
        return items
    }

    // MARK: Encoding and time

    /// RFC 3986 percent-encoding of everything but `A-Za-z0-9-._~` (and `/` in paths), upper-case hex.
    public static func encode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    static func collapseSpaces(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(character)
                lastWasSpace = false
            }
        }
        return out
    }

    /// `20150830T123600Z`
    public static func amzDate(_ date: Date) -> String {
        let t = utc(date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", t.year, t.month, t.day, t.hour, t.minute, t.second)
    }

    /// `20150830`
    static func dateStamp(_ date: Date) -> String {
        let t = utc(date)
        return String(format: "%04d%02d%02d", t.year, t.month, t.day)
    }

    /// Parses `20150830T123600Z`.
    public static func parseAmzDate(_ text: String) -> Date? {
        let digits = text.utf8.filter { $0 != UInt8(ascii: "T") && $0 != UInt8(ascii: "Z") }
        guard text.utf8.count == 16, digits.count == 14, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let n = digits.map { Int($0 - 0x30) }
        func number(_ from: Int, _ count: Int) -> Int32 { Int32(n[from..<(from + count)].reduce(0) { $0 * 10 + $1 }) }
        var t = tm()
        t.tm_year = number(0, 4) - 1900
        t.tm_mon = number(4, 2) - 1
        t.tm_mday = number(6, 2)
        t.tm_hour = number(8, 2)
        t.tm_min = number(10, 2)
        t.tm_sec = number(12, 2)
        return Date(timeIntervalSince1970: TimeInterval(timegm(&t)))
    }

    static func utc(_ date: Date) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var t = tm()
        gmtime_r(&seconds, &t)
        return (Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday), Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec))
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
