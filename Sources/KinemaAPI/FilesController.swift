import Foundation
import Hummingbird
import KinemaCore
import KinemaStore

/// `GET /files/<key>?expires=&sig=`: signed, expiring downloads with single-range support so players can seek.
struct FilesController: Sendable {
    let blobs: any BlobStore
    let signer: URLSigner
    let fileIO = FileIO()

    /// By the key's extension: results are MP4s; inputs (signed for upstream providers that fetch them) are images.
    static func contentType(_ key: String) -> String {
        if key.hasSuffix(".mp4") { return "video/mp4" }
        if key.hasSuffix(".png") { return "image/png" }
        if key.hasSuffix(".jpg") { return "image/jpeg" }
        return "application/octet-stream"
    }

    func get(_ request: Request, context: some RequestContext, headOnly: Bool) async throws -> Response {
        let key = context.parameters.getCatchAll().joined(separator: "/")
        let query = request.uri.queryParameters
        guard let expires = query.get("expires").flatMap({ Int64($0) }), let sig = query.get("sig"), !sig.isEmpty else {
            throw APIError(
                .forbidden, "INVALID_SIGNATURE",
                "This download link is missing its expires or sig parameter; request a fresh link from the task result.")
        }
        switch signer.verify(key: key, expires: expires, signature: sig, now: Date()) {
        case .badSignature:
            throw APIError(
                .forbidden, "INVALID_SIGNATURE", "This download link's signature does not match; request a fresh link from the task result.")
        case .expired:
            throw APIError(.forbidden, "URL_EXPIRED", "This download link has expired; poll the task result again for a fresh link.")
        case .valid:
            break
        }
        let size: Int64?
        do {
            size = try await blobs.size(of: key)
        } catch let error as BlobError where error.code == .unavailable {
            throw APIError(.serviceUnavailable, "SERVICE_UNAVAILABLE", "The file store is unreachable; retry shortly.", retryAfter: 5)
        }
        guard let size else {
            // A valid link to a result whose file is gone: retention deleted it (`--result-retention`).
            if key.hasPrefix(BlobKeys.resultsFolder + "/") {
                throw APIError(
                    .notFound, "RESULT_EXPIRED",
                    "This video was deleted after the server's retention period (--result-retention); it cannot be downloaded any more.")
            }
            throw APIError(.notFound, "FILE_NOT_FOUND", "The file behind this link no longer exists.")
        }
        // Local files are served from disk; others (object storage) are streamed from the store as they arrive.
        let url = blobs.localURL(for: key)
        let etag = Self.entityTag(key: key, size: size, modified: url.map(Self.modificationTime) ?? 0)
        var headers: HTTPFields = [
            .contentType: Self.contentType(key),
            .acceptRanges: "bytes",
            .eTag: etag,
            .cacheControl: "private, max-age=\(max(0, expires - Int64(Date().timeIntervalSince1970)))",
        ]
        var range: ClosedRange<Int>? = nil
        // RFC 9110 13.1.5: a Range is honoured only while If-Range (when sent) still names this representation,
        // by strong comparison with its entity tag; a date or another tag means "send it all" (200).
        if let header = request.headers[.range], Self.ifRangeHolds(request.headers[.ifRange], etag: etag) {
            switch ByteRange.parse(header, size: Int(size)) {
            case .none:
                break
            case .unsatisfiable:
                throw APIError(
                    .rangeNotSatisfiable, "RANGE_NOT_SATISFIABLE",
                    "The requested byte range starts beyond the end of the file (\(size) bytes); ask for a range within it, or for the whole file without Range.",
                    metadata: ["field": "Range"], extraHeaders: [.contentRange: "bytes */\(size)"]
                )
            case .range(let r):
                range = r
            }
        }
        if let range {
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
            headers[.contentLength] = String(range.count)
            if headOnly { return Response(status: .partialContent, headers: headers) }
            let body = try await self.body(key: key, url: url, range: range, context: context)
            BlobMetrics.served(Int64(range.count), key: key)
            return Response(status: .partialContent, headers: headers, body: body)
        }
        headers[.contentLength] = String(size)
        if headOnly { return Response(status: .ok, headers: headers) }
        let body = try await self.body(key: key, url: url, range: nil, context: context)
        BlobMetrics.served(size, key: key)
        return Response(status: .ok, headers: headers, body: body)
    }

    /// The bytes to send: from the local file, or streamed from the store (a failure mid-body ends the connection,
    /// which the client sees as a short download against Content-Length).
    func body(key: String, url: URL?, range: ClosedRange<Int>?, context: some RequestContext) async throws -> ResponseBody {
        if let url {
            if let range { return try await fileIO.loadFile(path: url.path, range: range, context: context) }
            return try await fileIO.loadFile(path: url.path, context: context)
        }
        let stream: AsyncThrowingStream<Data, any Error>?
        do {
            stream = try await blobs.stream(key, range: range.map { Int64($0.lowerBound)...Int64($0.upperBound) })
        } catch let error as BlobError where error.code == .unavailable {
            throw APIError(.serviceUnavailable, "SERVICE_UNAVAILABLE", "The file store is unreachable; retry shortly.", retryAfter: 5)
        }
        guard let stream else { throw APIError(.notFound, "FILE_NOT_FOUND", "The file behind this link no longer exists.") }
        return ResponseBody { writer in
            for try await chunk in stream { try await writer.write(ByteBuffer(bytes: chunk)) }
            try await writer.finish(nil)
        }
    }
}

extension FilesController {
    /// A strong entity tag for the file: results are written once under their key, so key, size and modification
    /// time identify the bytes (a file replaced under the same key gets a new tag).
    static func entityTag(key: String, size: Int64, modified: Int64) -> String {
        "\"" + SHA256.hash(Array("\(key)\n\(size)\n\(modified)".utf8)).hexString.prefix(32) + "\""
    }

    /// Whether a Range request may be answered partially: no If-Range, or one that matches `etag` exactly (a weak
    /// tag or a date never does).
    static func ifRangeHolds(_ ifRange: String?, etag: String) -> Bool {
        guard let ifRange else { return true }
        return ifRange.trimmingASCIIWhitespace() == etag
    }

    /// The file's modification time in nanoseconds since 1970 (0 when it cannot be read).
    static func modificationTime(_ url: URL) -> Int64 {
        guard let date = (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date else { return 0 }
        return Int64((date.timeIntervalSince1970 * 1_000_000_000).rounded())
    }
}

/// A parsed `Range: bytes=…` header (one range; several ranges are served as the whole file).
enum ByteRange: Equatable {
    case none
    case unsatisfiable
    case range(ClosedRange<Int>)

    static func parse(_ header: String, size: Int) -> ByteRange {
        let h = header.trimmingCharacters(in: .whitespaces)
        guard h.lowercased().hasPrefix("bytes="), !h.contains(",") else { return .none }
        let spec = h.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .none }
        let a = parts[0].trimmingCharacters(in: .whitespaces), b = parts[1].trimmingCharacters(in: .whitespaces)
        if a.isEmpty {
            guard let suffix = Int(b), suffix >= 0 else { return .none }
            if suffix == 0 { return .unsatisfiable }
            if size == 0 { return .unsatisfiable }
            return .range(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int(a), start >= 0 else { return .none }
        if start >= size { return .unsatisfiable }
        if b.isEmpty { return .range(start...(size - 1)) }
        guard let end = Int(b), end >= start else { return .none }
        return .range(start...min(end, size - 1))
    }
}
