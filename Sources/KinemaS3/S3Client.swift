import AsyncHTTPClient
import Foundation
import KinemaCore
import NIOCore
import NIOHTTP1

/// Where and how to reach one bucket: `s3://BUCKET/PREFIX` plus the endpoint, region, addressing style and credentials.
public struct S3Configuration: Sendable {
    public var bucket: String
    /// Prepended to every key (`prefix/inputs/…`); empty for the bucket's root.
    public var prefix: String
    /// `https://s3.<region>.amazonaws.com` when `nil`.
    public var endpoint: String?
    public var region: String
    /// `ENDPOINT/BUCKET/KEY` (MinIO, Ceph, moto) instead of `BUCKET.ENDPOINT/KEY`.
    public var pathStyle: Bool
    public var credentials: S3Credentials
    /// Time for one request, start to last byte (a part upload included).
    public var requestTimeout: Duration = .seconds(120)
    /// Attempts per request on 5xx, `SlowDown`, throttling and connection errors (the first included).
    public var maxAttempts: Int = 5
    /// First delay between attempts, doubling, with ±20 % jitter.
    public var backoff: Duration = .milliseconds(200)
    /// Files above this size are uploaded in parts of `partSize` (S3 needs parts ≥ 5 MiB but the last).
    public var multipartThreshold: Int = 16 * 1024 * 1024
    public var partSize: Int = 8 * 1024 * 1024

    public init(
        bucket: String, prefix: String = "", endpoint: String? = nil, region: String, pathStyle: Bool = false, credentials: S3Credentials
    ) {
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint = endpoint
        self.region = region
        self.pathStyle = pathStyle
        self.credentials = credentials
    }

    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX` (the prefix without leading or trailing slashes); `nil` otherwise.
    public static func location(_ text: String) -> (bucket: String, prefix: String)? {
        guard text.hasPrefix("s3://") else { return nil }
        let rest = text.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bucket = parts.first, Self.isValidBucket(String(bucket)) else { return nil }
        let prefix = parts.count > 1 ? parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "/")) : ""
        guard prefix.isEmpty || prefix.split(separator: "/").allSatisfy({ Self.isSafeSegment($0) }) else { return nil }
        return (String(bucket), prefix)
    }

    /// S3's bucket naming rules: 3–63 of `a-z0-9.-`, starting and ending with a letter or digit.
    static func isValidBucket(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) }
        return alnum(bytes.first!) && alnum(bytes.last!) && bytes.allSatisfy { alnum($0) || $0 == 0x2E || $0 == 0x2D }
    }

    static func isSafeSegment(_ segment: Substring) -> Bool {
        !segment.isEmpty && segment != "." && segment != ".."
            && segment.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
            }
    }
}

/// What S3 answered when it refused, or why no answer came.
public struct S3Error: Error, Sendable, CustomStringConvertible {
    /// The HTTP status, `nil` when nothing was answered (connection refused, timeout).
    public var status: Int?
    /// S3's error code (`NoSuchKey`, `SignatureDoesNotMatch`, `SlowDown`…), or a word of ours (`Unreachable`).
    public var code: String
    public var message: String
    /// How many times the request was sent before this error was given up on (1: not retried).
    public var attempts: Int = 1

    /// Whether S3 could not be reached or was failing (5xx, throttled): a later attempt may succeed.
    public var isUnavailable: Bool { status == nil || status! >= 500 || status == 429 || code == "SlowDown" }

    public var description: String { "S3 \(status.map(String.init) ?? "unreachable") \(code): \(message)" }
}

/// A small S3 client on AsyncHTTPClient: the object operations Kinema needs (PUT, multipart upload, GET with a
/// range, HEAD, DELETE, presigned URLs), signed with SigV4, retried with backoff on failures that may pass.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let signer: SigV4Signer
    let http: HTTPClient
    /// scheme://host[:port], the Host header's value, and the path before the key.
    let base: (origin: String, host: String, pathPrefix: String)

    /// One HTTP client per process for every bucket: never shut down (it lives as long as the process).
    static let sharedHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.timeout.connect = .seconds(10)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public init(_ configuration: S3Configuration) throws {
        self.configuration = configuration
        signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
        http = Self.sharedHTTP
        let endpoint = configuration.endpoint ?? "https://s3.\(configuration.region).amazonaws.com"
        guard let parts = URLComponents(string: endpoint), let scheme = parts.scheme, scheme == "http" || scheme == "https",
            let host = parts.host, !host.isEmpty, parts.path.isEmpty || parts.path == "/", parts.query == nil
        else {
            throw S3Error(status: nil, code: "InvalidEndpoint", message: "the S3 endpoint must be http(s)://HOST[:PORT], not \(endpoint)")
        }
        let hostName = configuration.pathStyle ? host : "\(configuration.bucket).\(host)"
        let shownHost = hostName.contains(":") ? "[\(hostName)]" : hostName
        let hostHeader = parts.port.map { "\(shownHost):\($0)" } ?? shownHost
        base = ("\(scheme)://\(hostHeader)", hostHeader, configuration.pathStyle ? "/\(configuration.bucket)" : "")
    }

    /// The object's path on the wire: the bucket (path style), the prefix, the key.
    func objectPath(_ key: String) -> String {
        let full = configuration.prefix.isEmpty ? key : "\(configuration.prefix)/\(key)"
        return "\(base.pathPrefix)/\(full)"
    }

    // MARK: Requests

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Signs and sends one request, retrying what may pass; a 4xx other than throttling is thrown at once as S3 said
    /// it. `accept`: the statuses that are answers (404 for HEAD and GET of a missing key).
    func send(
        _ method: HTTPMethod, path: String, query: [(String, String)] = [], headers extra: [(String, String)] = [], body: ByteBuffer? = nil,
        accept: Set<Int> = [], timeout: Duration? = nil
    ) async throws -> Answer {
        var attempt = 0
        var delay = configuration.backoff
        while true {
            attempt += 1
            do {
                let response = try await http.execute(
                    sign(method, path: path, query: query, headers: extra, body: body), deadline: deadline(timeout ?? configuration.requestTimeout))
                let status = Int(response.status.code)
                var collected = ByteBuffer()
                for try await var chunk in response.body {
                    guard collected.readableBytes + chunk.readableBytes <= 64 * 1024 * 1024 else {
                        throw S3Error(status: status, code: "AnswerTooLarge", message: "the answer is larger than 64 MiB; use a ranged read")
                    }
                    collected.writeBuffer(&chunk)
                }
                if (200..<300).contains(status) || accept.contains(status) {
                    return Answer(status: status, headers: response.headers, body: collected)
                }
                var error = Self.error(status: status, body: collected, method: method)
                error.attempts = attempt
                guard error.isUnavailable, attempt < configuration.maxAttempts else { throw error }
            } catch var error as S3Error {
                error.attempts = attempt
                guard error.isUnavailable, attempt < configuration.maxAttempts else { throw error }
            } catch {
                try Task.checkCancellation()
                var failure = S3Error(status: nil, code: "Unreachable", message: "\(base.origin): \(Self.describe(error))")
                failure.attempts = attempt
                guard attempt < configuration.maxAttempts else { throw failure }
            }
            try await Task.sleep(for: jittered(delay))
            delay *= 2
        }
    }

    /// A signed request: `x-amz-date`, the payload's SHA-256 (S3 checks it), the session token when there is one.
    func sign(
        _ method: HTTPMethod, path: String, query: [(String, String)], headers extra: [(String, String)], body: ByteBuffer?
    ) throws
        -> HTTPClientRequest
    {
        let now = Date()
        let payloadHash: String
        if let checksum = extra.first(where: { $0.0 == "x-amz-checksum-sha256" }), let digest = Data(base64Encoded: checksum.1), digest.count == 32 {
            // The caller hashed this body for the checksum header already: one SHA-256 pass, not two.
            payloadHash = SigV4Signer.hex([UInt8](digest))
        } else {
            payloadHash = body.map { buffer in buffer.withUnsafeReadableBytes { SigV4Signer.hex(SHA256.hash($0)) } } ?? SigV4Signer.emptyPayloadHash
        }
        var headers: [(String, String)] = [("host", base.host), ("x-amz-date", SigV4Signer.amzDate(now)), ("x-amz-content-sha256", payloadHash)]
        if let token = configuration.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        headers += extra
        let authorization = signer.authorization(
            for: .init(method: method.rawValue, path: path, query: query, headers: headers, payloadHash: payloadHash), date: now)
        let queryText = query.map { "\(SigV4Signer.encode($0.0, keepSlash: false))=\(SigV4Signer.encode($0.1, keepSlash: false))" }
            .joined(separator: "&")
        var request = HTTPClientRequest(url: base.origin + SigV4Signer.encode(path, keepSlash: true) + (queryText.isEmpty ? "" : "?" + queryText))
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Authorization", value: authorization)
        if let body {
            request.body = .bytes(body)
        } else if method == .PUT || method == .POST {
            request.headers.add(name: "Content-Length", value: "0")
        }
        return request
    }

    func deadline(_ timeout: Duration) -> NIODeadline {
        .now() + .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    func jittered(_ delay: Duration) -> Duration {
        delay * Double.random(in: 0.8...1.2)
    }

    static func error(status: Int, body: ByteBuffer, method: HTTPMethod) -> S3Error {
        let text = String(buffer: body)
        let code = XMLText.first("Code", in: text) ?? (status == 404 ? "NoSuchKey" : "HTTP\(status)")
        let message = XMLText.first("Message", in: text) ?? "\(method.rawValue) answered \(status)"
        return S3Error(status: status, code: code, message: message)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .connectTimeout { return "the connection timed out" }
            if error == .deadlineExceeded || error == .readTimeout { return "no answer within the time limit" }
        }
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        return "\(error)"
    }

    // MARK: Objects

    /// Stores `data` under `key` in one PUT, with its SHA-256 as a checksum S3 verifies.
    public func put(_ data: Data, key: String, contentType: String? = nil) async throws {
        var headers = [("x-amz-checksum-sha256", Data(SHA256.hash(data)).base64EncodedString())]
        if let contentType { headers.append(("content-type", contentType)) }
        _ = try await send(.PUT, path: objectPath(key), headers: headers, body: ByteBuffer(bytes: data))
    }

    /// Stores `data` under `key` only if nothing is there (`If-None-Match: *`): `false` when something was.
    public func putIfAbsent(_ data: Data, key: String) async throws -> Bool {
        let answer = try await send(
            .PUT, path: objectPath(key), headers: [("if-none-match", "*")], body: ByteBuffer(bytes: data), accept: [412])
        return answer.status != 412
    }

    /// Stores the file under `key`: one PUT up to `multipartThreshold`, else a multipart upload of `partSize` parts
    /// read one at a time (aborted on failure, so no parts are left behind).
    public func putFile(at url: URL, key: String, contentType: String? = nil) async throws {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        if size <= configuration.multipartThreshold {
            try await put(try handle.readToEnd() ?? Data(), key: key, contentType: contentType)
            return
        }
        var upload = try await startMultipart(key: key, contentType: contentType)
        do {
            var number = 1
            while let part = try handle.read(upToCount: configuration.partSize), !part.isEmpty {
                try await upload.add(part, number: number)
                number += 1
            }
            try await upload.complete()
        } catch {
            await upload.abort()
            throw error
        }
    }

    /// The object's bytes, or `nil` when there is none.
    public func get(_ key: String) async throws -> Data? {
        let answer = try await send(.GET, path: objectPath(key), accept: [404])
        if answer.status == 404 { return nil }
        return Data(answer.body.readableBytesView)
    }

    /// The object's size, or `nil` when there is none.
    public func size(of key: String) async throws -> Int64? {
        let answer = try await send(.HEAD, path: objectPath(key), accept: [404])
        if answer.status == 404 { return nil }
        return answer.headers.first(name: "Content-Length").flatMap { Int64($0) }
    }

    /// Deletes the object (S3 answers 204 whether it existed or not).
    public func delete(_ key: String) async throws {
        _ = try await send(.DELETE, path: objectPath(key), accept: [404])
    }

    /// The bytes of `range` (or all), streamed as they arrive; `nil` when there is no object. Retried until the
    /// answer starts; a failure mid-body ends the stream with the error.
    public func stream(_ key: String, range: ClosedRange<Int64>? = nil) async throws -> AsyncThrowingStream<Data, any Error>? {
        var attempt = 0
        var delay = configuration.backoff
        let path = objectPath(key)
        let headers = range.map { [("range", "bytes=\($0.lowerBound)-\($0.upperBound)")] } ?? []
        while true {
            attempt += 1
            let response: HTTPClientResponse
            do {
                response = try await http.execute(sign(.GET, path: path, query: [], headers: headers, body: nil), deadline: deadline(.seconds(3600)))
            } catch {
                try Task.checkCancellation()
                guard attempt < configuration.maxAttempts else {
                    throw S3Error(status: nil, code: "Unreachable", message: "\(base.origin): \(Self.describe(error))")
                }
                try await Task.sleep(for: jittered(delay))
                delay *= 2
                continue
            }
            let status = Int(response.status.code)
            if status == 404 { return nil }
            if status == 200 || status == 206 {
                let body = response.body
                return AsyncThrowingStream { continuation in
                    let task = Task {
                        do {
                            for try await chunk in body { continuation.yield(Data(chunk.readableBytesView)) }
                            continuation.finish()
                        } catch {
                            continuation.finish(throwing: error)
                        }
                    }
                    continuation.onTermination = { _ in task.cancel() }
                }
            }
            var collected = ByteBuffer()
            for try await var chunk in response.body where collected.readableBytes < 65536 { collected.writeBuffer(&chunk) }
            let error = Self.error(status: status, body: collected, method: .GET)
            guard error.isUnavailable, attempt < configuration.maxAttempts else { throw error }
            try await Task.sleep(for: jittered(delay))
            delay *= 2
        }
    }

    /// A presigned URL for `method` on `key`, valid for `expires` seconds: anyone holding it may do that one thing.
    public func presignedURL(_ method: HTTPMethod = .GET, key: String, expires: Int, now: Date = Date()) -> String {
        let path = objectPath(key)
        let query = signer.presignedQuery(method: method.rawValue, host: base.host, path: path, expires: expires, date: now)
        let text = query.map { "\(SigV4Signer.encode($0.0, keepSlash: false))=\(SigV4Signer.encode($0.1, keepSlash: false))" }
            .joined(separator: "&")
        return base.origin + SigV4Signer.encode(path, keepSlash: true) + "?" + text
    }

    /// Creates the bucket (tests and first set-up); an existing one of ours is fine.
    public func createBucket() async throws {
        let answer = try await send(.PUT, path: configuration.pathStyle ? base.pathPrefix : "/", accept: [409])
        if answer.status == 409 {
            let code = XMLText.first("Code", in: String(buffer: answer.body))
            guard code == "BucketAlreadyOwnedByYou" else {
                throw S3Error(status: 409, code: code ?? "Conflict", message: "the bucket \(configuration.bucket) belongs to someone else")
            }
        }
    }

    // MARK: Multipart

    /// An upload in parts: `add` each part in order, then `complete`; `abort` removes what was sent.
    public struct MultipartUpload: Sendable {
        let client: S3Client
        let path: String
        public let uploadID: String
        var parts: [(number: Int, etag: String)] = []

        public mutating func add(_ data: Data, number: Int) async throws {
            let answer = try await client.send(
                .PUT, path: path, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                headers: [("x-amz-checksum-sha256", Data(SHA256.hash(data)).base64EncodedString())], body: ByteBuffer(bytes: data))
            guard let etag = answer.headers.first(name: "ETag") else {
                throw S3Error(status: answer.status, code: "NoETag", message: "part \(number) was answered without an ETag")
            }
            parts.append((number, etag))
        }

        public func complete() async throws {
            let list = parts.map { "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(XMLText.escape($0.etag))</ETag></Part>" }.joined()
            let body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\(list)</CompleteMultipartUpload>"
            let answer = try await client.send(.POST, path: path, query: [("uploadId", uploadID)], body: ByteBuffer(string: body))
            // S3 may answer 200 with an error document when the completion failed after it started.
            let text = String(buffer: answer.body)
            if text.contains("<Error>") {
                throw S3Error(
                    status: answer.status, code: XMLText.first("Code", in: text) ?? "InternalError",
                    message: XMLText.first("Message", in: text) ?? "completing the upload failed")
            }
        }

        public func abort() async {
            _ = try? await client.send(.DELETE, path: path, query: [("uploadId", uploadID)], accept: [404])
        }
    }

    public func startMultipart(key: String, contentType: String? = nil) async throws -> MultipartUpload {
        let path = objectPath(key)
        let answer = try await send(.POST, path: path, query: [("uploads", "")], headers: contentType.map { [("content-type", $0)] } ?? [])
        guard let id = XMLText.first("UploadId", in: String(buffer: answer.body)) else {
            throw S3Error(status: answer.status, code: "NoUploadId", message: "CreateMultipartUpload answered without an UploadId")
        }
        return MultipartUpload(client: self, path: path, uploadID: id)
    }
}

/// The little XML S3 answers with: the text of the first element named so, entities decoded.
enum XMLText {
    static func first(_ tag: String, in text: String) -> String? {
        guard let open = text.range(of: "<\(tag)>"), let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex) else {
            return nil
        }
        return unescape(String(text[open.upperBound..<close.lowerBound]))
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
