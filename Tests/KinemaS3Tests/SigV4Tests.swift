import Foundation
import KinemaCore
import KinemaS3
import Testing

/// SigV4 against AWS's published test suite (`Vectors/aws4_testsuite`, from botocore's source distribution; see its
/// README): for each request, the canonical request, the string to sign and the Authorization header, exactly.
@Suite struct SigV4Tests {
    static let suite = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors/aws4_testsuite")
    static let credentials = S3Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    /// The token the suite's get-vanilla-with-session-token vector signs (its .creq shows it).
    static let sessionToken = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"

    static var vectors: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: suite.path)) ?? []).filter {
            !$0.contains(".") && !["LICENSE", "NOTICE"].contains($0)
        }.sorted()
    }

    /// A `.req` file: request line, header lines (`Name:value`), a blank line, the body.
    static func parse(_ text: String) throws -> (method: String, path: String, query: [(String, String)], headers: [(String, String)], body: String) {
        let (head, body): (Substring, String) = {
            if let split = text.range(of: "\n\n") { return (text[..<split.lowerBound], String(text[split.upperBound...])) }
            return (Substring(text), "")
        }()
        let lines = head.split(separator: "\n", omittingEmptySubsequences: false)
        let requestLine = lines[0].split(separator: " ")
        let target = String(requestLine[1])
        let (path, queryText) = target.firstIndex(of: "?").map { (String(target[..<$0]), String(target[target.index(after: $0)...])) } ?? (target, "")
        let query: [(String, String)] =
            queryText.isEmpty
            ? []
            : queryText.split(separator: "&").map { item in
                let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(pair[0]), pair.count > 1 ? String(pair[1]) : "")
            }
        let headers = lines.dropFirst().filter { !$0.isEmpty }.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        return (String(requestLine[0]), path, query, headers, body)
    }

    static func read(_ name: String, _ ext: String) throws -> String {
        try String(contentsOf: suite.appendingPathComponent("\(name)/\(name).\(ext)"), encoding: .utf8)
    }

    @Test func theSuiteIsThere() {
        #expect(Self.vectors.count >= 20, "\(Self.vectors)")
    }

    @Test(arguments: vectors)
    func matchesTheVector(_ name: String) throws {
        let request = try Self.parse(try Self.read(name, "req"))
        var headers = request.headers
        var credentials = Self.credentials
        if name == "get-vanilla-with-session-token" {
            credentials.sessionToken = Self.sessionToken
            headers.append(("X-Amz-Security-Token", Self.sessionToken))
        }
        let date = try #require(SigV4Signer.parseAmzDate(headers.first { $0.0.lowercased() == "x-amz-date" }?.1 ?? ""))
        let signer = SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
        let signed = SigV4Signer.Request(
            method: request.method, path: request.path.removingPercentEncoding ?? request.path,
            query: request.query.map { ($0.0.removingPercentEncoding ?? $0.0, $0.1.removingPercentEncoding ?? $0.1) }, headers: headers,
            payloadHash: SigV4Signer.hex(SHA256.hash(Array(request.body.utf8))))
        let canonical = SigV4Signer.canonicalRequest(signed).text
        #expect(canonical == (try Self.read(name, "creq")), "\(name) canonical request")
        let stringToSign = signer.stringToSign(canonicalRequest: canonical, date: date)
        #expect(stringToSign == (try Self.read(name, "sts")), "\(name) string to sign")
        #expect(signer.authorization(for: signed, date: date) == (try Self.read(name, "authz")), "\(name) authorization")
    }

    /// AWS's example of a presigned GET ("Authenticating Requests: Using Query Parameters", S3 API reference).
    @Test func presignsTheDocumentedExample() throws {
        let signer = SigV4Signer(
            credentials: S3Credentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1")
        let date = try #require(SigV4Signer.parseAmzDate("20130524T000000Z"))
        let query = signer.presignedQuery(method: "GET", host: "examplebucket.s3.amazonaws.com", path: "/test.txt", expires: 86400, date: date)
        #expect(query.last?.0 == "X-Amz-Signature")
        #expect(query.last?.1 == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test func credentialsNeverShowTheSecret() {
        let credentials = S3Credentials(accessKeyID: "AKID", secretAccessKey: "very-secret", sessionToken: "token-secret")
        #expect(!"\(credentials)".contains("very-secret") && !"\(credentials)".contains("token-secret"))
        #expect(S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a"]) == nil)
        #expect(
            S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "c"])?.sessionToken == "c")
    }

    @Test func locationsParse() {
        #expect(S3Configuration.location("s3://my-bucket")! == ("my-bucket", ""))
        #expect(S3Configuration.location("s3://my-bucket/a/b/")! == ("my-bucket", "a/b"))
        #expect(S3Configuration.location("s3://My_Bucket/x") == nil)
        #expect(S3Configuration.location("s3://ab") == nil)
        #expect(S3Configuration.location("s3://bucket/../x") == nil)
        #expect(S3Configuration.location("https://bucket") == nil)
    }
}
