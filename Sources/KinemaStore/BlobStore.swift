import Foundation

/// Inputs and outputs by key. Keys are relative paths made of `[A-Za-z0-9._-]` segments separated by `/`.
///
/// Local directory today; the protocol leaves room for an S3-compatible store.
public protocol BlobStore: Sendable {
    /// Stores `data` under `key` atomically (readers never see a partial blob).
    func put(_ data: Data, key: String) async throws
    /// Moves a finished local file into the store under `key` (atomic where the platform allows).
    func putFile(at url: URL, key: String) async throws
    /// The blob's bytes; throws `BlobError.notFound` when missing.
    func get(_ key: String) async throws -> Data
    /// A local file path for reading the blob (range requests), or `nil` when missing.
    func localURL(for key: String) -> URL?
    /// Size in bytes, or `nil` when missing.
    func size(of key: String) -> Int64?
    /// Removes the blob if present.
    func delete(_ key: String) async throws
}

/// Errors of the blob store.
public struct BlobError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound, invalidKey, io
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Blobs as files under one directory (the data dir, or a shared filesystem in scale-out mode).
public struct LocalBlobStore: BlobStore {
    public let root: URL

    /// Creates the directory if needed.
    public init(root: URL) throws {
        self.root = root
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    /// Whether `key` is safe to map onto a path: no empty, `.` or `..` segments, no odd characters.
    public static func isValidKey(_ key: String) -> Bool {
        guard !key.isEmpty, key.utf8.count <= 512 else { return false }
        return key.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { seg in
            !seg.isEmpty && seg != "." && seg != ".." && seg.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
            }
        }
    }

    private func path(_ key: String) throws -> URL {
        guard Self.isValidKey(key) else { throw BlobError(.invalidKey, "blob key '\(key)' is not a valid key") }
        return root.appendingPathComponent(key)
    }

    public func put(_ data: Data, key: String) async throws {
        let url = try path(key)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        } catch {
            throw BlobError(.io, "could not write blob \(key): \(error.localizedDescription)")
        }
    }

    public func putFile(at source: URL, key: String) async throws {
        let url = try path(key)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            // rename(2) is atomic within one filesystem; fall back to copy for a render dir elsewhere.
            if rename(source.path, url.path) != 0 {
                let tmp = url.appendingPathExtension("part")
                try? FileManager.default.removeItem(at: tmp)
                try FileManager.default.copyItem(at: source, to: tmp)
                guard rename(tmp.path, url.path) == 0 else { throw BlobError(.io, "rename failed with errno \(errno)") }
                try? FileManager.default.removeItem(at: source)
            }
        } catch let e as BlobError {
            throw e
        } catch {
            throw BlobError(.io, "could not store blob \(key): \(error.localizedDescription)")
        }
    }

    public func get(_ key: String) async throws -> Data {
        let url = try path(key)
        guard FileManager.default.fileExists(atPath: url.path) else { throw BlobError(.notFound, "blob \(key) not found") }
        do { return try Data(contentsOf: url) } catch { throw BlobError(.io, "could not read blob \(key): \(error.localizedDescription)") }
    }

    public func localURL(for key: String) -> URL? {
        guard let url = try? path(key), FileManager.default.fileExists(atPath: url.path) else { return nil }
        return url
    }

    public func size(of key: String) -> Int64? {
        guard let url = try? path(key), let attrs = try? FileManager.default.attributesOfItem(atPath: url.path) else { return nil }
        return (attrs[.size] as? NSNumber)?.int64Value
    }

    public func delete(_ key: String) async throws {
        let url = try path(key)
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
    }
}
