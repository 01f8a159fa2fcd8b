import Foundation
import KinemaStore
import NIOHTTP1

/// Blobs as objects in an S3-compatible bucket (`--blob-store s3://BUCKET/PREFIX`): no shared filesystem needed.
/// Keys are the same as the local store's; S3 failures that may pass (unreachable, 5xx, throttling) are retried by the
/// client and then reported as `BlobError.unavailable`, which a submit answers with 503 and `Retry-After`.
public struct S3BlobStore: BlobStore {
    public let client: S3Client

    public init(client: S3Client) {
        self.client = client
    }

    public func put(_ data: Data, key: String) async throws {
        try Self.checked(key)
        try await Self.mapped("store \(key)") { try await client.put(data, key: key, contentType: Self.contentType(key)) }
        BlobMetrics.written(Int64(data.count), key: key)
    }

    /// Uploads the file (in parts above the client's threshold), then removes it, as the local store's move does.
    public func putFile(at url: URL, key: String) async throws {
        try Self.checked(key)
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.int64Value ?? 0
        try await Self.mapped("store \(key)") { try await client.putFile(at: url, key: key, contentType: Self.contentType(key)) }
        try? FileManager.default.removeItem(at: url)
        BlobMetrics.written(size, key: key)
    }

    public func get(_ key: String) async throws -> Data {
        try Self.checked(key)
        guard let data = try await Self.mapped("read \(key)", { try await client.get(key) }) else {
            throw BlobError(.notFound, "blob \(key) not found")
        }
        return data
    }

    public func localURL(for key: String) -> URL? { nil }

    public func stream(_ key: String, range: ClosedRange<Int64>?) async throws -> AsyncThrowingStream<Data, any Error>? {
        try Self.checked(key)
        return try await Self.mapped("read \(key)") { try await client.stream(key, range: range) }
    }

    public func size(of key: String) async throws -> Int64? {
        try Self.checked(key)
        return try await Self.mapped("look up \(key)") { try await client.size(of: key) }
    }

    public func delete(_ key: String) async throws {
        try Self.checked(key)
        try await Self.mapped("delete \(key)") { try await client.delete(key) }
    }

    public func presignedURL(for key: String, method: String, expires: Int) -> String? {
        guard LocalBlobStore.isValidKey(key) else { return nil }
        return client.presignedURL(HTTPMethod(rawValue: method), key: key, expires: expires)
    }

    static func checked(_ key: String) throws {
        guard LocalBlobStore.isValidKey(key) else { throw BlobError(.invalidKey, "invalid blob key \(key)") }
    }

    static func contentType(_ key: String) -> String {
        if key.hasSuffix(".mp4") { return "video/mp4" }
        if key.hasSuffix(".png") { return "image/png" }
        if key.hasSuffix(".jpg") { return "image/jpeg" }
        return "application/octet-stream"
    }

    /// S3's answers in the blob store's words: unreachable or failing → `.unavailable`; anything else → `.io`.
    static func mapped<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as S3Error {
            throw BlobError(error.isUnavailable ? .unavailable : .io, "could not \(what): \(error)")
        }
    }
}
