import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Inputs and outputs by key. Keys are relative paths made of `[A-Za-z0-9._-]` segments separated by `/`.
///
/// A local directory (`LocalBlobStore`) or an S3-compatible bucket (`KinemaS3.S3BlobStore`); both pass the same
/// conformance suite.
public protocol BlobStore: Sendable {
    /// Stores `data` under `key` atomically (readers never see a partial blob).
    func put(_ data: Data, key: String) async throws
    /// Moves a finished local file into the store under `key` (atomic where the platform allows); the file is gone
    /// afterwards.
    func putFile(at url: URL, key: String) async throws
    /// The blob's bytes; throws `BlobError.notFound` when missing.
    func get(_ key: String) async throws -> Data
    /// A local file path for reading the blob (range requests), or `nil` when missing or not on this machine.
    func localURL(for key: String) -> URL?
    /// The bytes of `range` (or all) as they arrive, or `nil` when missing: for stores without local files.
    func stream(_ key: String, range: ClosedRange<Int64>?) async throws -> AsyncThrowingStream<Data, any Error>?
    /// Size in bytes, or `nil` when missing.
    func size(of key: String) async throws -> Int64?
    /// Removes the blob if present.
    func delete(_ key: String) async throws
    /// A URL that lets its holder GET (or PUT) `key` directly for `expires` seconds, where the store can make one.
    func presignedURL(for key: String, method: String, expires: Int) -> String?
}

extension BlobStore {
    public func presignedURL(for key: String, method: String, expires: Int) -> String? { nil }
}

/// Errors of the blob store.
public struct BlobError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notFound, invalidKey, io
        /// The filesystem is full (or the quota is used up): a retry may succeed once space is freed.
        case noSpace
        /// The store could not be reached or is failing (object storage down, throttling): a retry may succeed.
        case unavailable
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
    /// Opens (creating if needed) the blob folder; `access` sets its mode (0700 by default, see `FileAccess`).
    public init(root: URL, access: FileAccess = .owner) throws {
        self.root = root
        try access.prepare(root)
    }

    /// Whether `key` is safe to map onto a path: no empty, `.` or `..` segments, no odd characters.
    public static func isValidKey(_ key: String) -> Bool {
        guard !key.isEmpty, key.utf8.count <= 512 else { return false }
        return key.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { seg in
            !seg.isEmpty && seg != "." && seg != ".."
                && seg.utf8.allSatisfy { b in
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
                }
        }
    }

    private func path(_ key: String) throws -> URL {
        guard Self.isValidKey(key) else { throw BlobError(.invalidKey, "blob key '\(key)' is not a valid key") }
        return root.appendingPathComponent(key)
    }

    /// Writes a temporary file, flushes it to disk, renames it into place and flushes the directories, off
    /// Swift's cooperative pool: once this returns, the blob survives a crash or power loss (a task row that
    /// points at it is committed only afterwards).
    public func put(_ data: Data, key: String) async throws {
        let url = try path(key)
        try await Self.offload {
            do {
                try Self.makeDirectoryDurably(url.deletingLastPathComponent())
                let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).part")
                do {
                    try Self.writeAndSync(data, to: tmp)
                    try Self.check(rename(tmp.path, url.path), "renaming \(tmp.lastPathComponent) into place")
                } catch {
                    unlink(tmp.path)
                    throw error
                }
                try Self.syncDirectory(url.deletingLastPathComponent())
            } catch {
                throw Self.wrap(error, "could not write blob \(key)")
            }
        }
        BlobMetrics.written(Int64(data.count), key: key)
    }

    /// Flushes the file, then moves it in (rename within one filesystem, else copy + flush + rename), and
    /// flushes the directory: the blob is on disk before the caller records it.
    public func putFile(at source: URL, key: String) async throws {
        let url = try path(key)
        try await Self.offload {
            do {
                try Self.makeDirectoryDurably(url.deletingLastPathComponent())
                try Self.syncFile(source)
                if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
                if rename(source.path, url.path) != 0 {
                    // Another filesystem: copy, flush and rename; a partial copy (a full disk) is removed.
                    let tmp = url.appendingPathExtension("part")
                    try? FileManager.default.removeItem(at: tmp)
                    do {
                        try FileManager.default.copyItem(at: source, to: tmp)
                        try Self.syncFile(tmp)
                        try Self.check(rename(tmp.path, url.path), "renaming \(tmp.lastPathComponent) into place")
                    } catch {
                        try? FileManager.default.removeItem(at: tmp)
                        throw error
                    }
                    try? FileManager.default.removeItem(at: source)
                }
                try Self.syncDirectory(url.deletingLastPathComponent())
            } catch {
                throw Self.wrap(error, "could not store blob \(key)")
            }
        }
        BlobMetrics.written(size(of: key) ?? 0, key: key)
    }

    public func get(_ key: String) async throws -> Data {
        let url = try path(key)
        return try await Self.offload {
            guard FileManager.default.fileExists(atPath: url.path) else { throw BlobError(.notFound, "blob \(key) not found") }
            do { return try Data(contentsOf: url) } catch { throw BlobError(.io, "could not read blob \(key): \(error.localizedDescription)") }
        }
    }

    public func localURL(for key: String) -> URL? {
        guard let url = try? path(key), FileManager.default.fileExists(atPath: url.path) else { return nil }
        return url
    }

    /// The file's bytes in 1 MiB chunks, read off the cooperative pool (downloads use `localURL` instead).
    public func stream(_ key: String, range: ClosedRange<Int64>?) async throws -> AsyncThrowingStream<Data, any Error>? {
        guard let url = localURL(for: key) else { return nil }
        let handle = try FileHandle(forReadingFrom: url)
        let start = range?.lowerBound ?? 0
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? Int64.max
        try handle.seek(toOffset: UInt64(start))
        return AsyncThrowingStream { continuation in
            DispatchQueue.global().async {
                defer { try? handle.close() }
                var left = length
                do {
                    while left > 0, let chunk = try handle.read(upToCount: Int(min(left, 1 << 20))), !chunk.isEmpty {
                        continuation.yield(chunk)
                        left -= Int64(chunk.count)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
    }

    public func size(of key: String) -> Int64? {
        guard let url = try? path(key), let attrs = try? FileManager.default.attributesOfItem(atPath: url.path) else { return nil }
        return (attrs[.size] as? NSNumber)?.int64Value
    }

    /// Removes the blob. Its folder stays: folders are shared by many tasks (`BlobKeys`), and removing one while
    /// another task stores into it would fail that store.
    public func delete(_ key: String) async throws {
        let url = try path(key)
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
    }

    // MARK: Blocking file work

    /// Runs blocking file work on a Dispatch thread, so a slow disk never stalls Swift's cooperative pool.
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
        }
    }

    static func check(_ result: Int32, _ what: String) throws {
        if result != 0 { throw posixError("\(what) failed") }
    }

    /// The error for the failed call that set `errno`: `.noSpace` for a full disk or quota, else `.io`.
    static func posixError(_ what: String) -> BlobError {
        let code = errno
        return BlobError(code == ENOSPC || code == EDQUOT ? .noSpace : .io, "\(what): \(String(cString: strerror(code)))")
    }

    /// `error` with `context` in front, keeping a full disk recognisable (Foundation reports it as a CocoaError).
    static func wrap(_ error: any Error, _ context: String) -> BlobError {
        if let e = error as? BlobError { return BlobError(e.code == .noSpace ? .noSpace : .io, "\(context): \(e.message)") }
        if let e = error as? CocoaError, e.code == .fileWriteOutOfSpace { return BlobError(.noSpace, "\(context): the disk is full") }
        let ns = error as NSError
        let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError
        for e in [ns, underlying].compactMap({ $0 }) where e.domain == NSPOSIXErrorDomain && (e.code == Int(ENOSPC) || e.code == Int(EDQUOT)) {
            return BlobError(.noSpace, "\(context): the disk is full")
        }
        return BlobError(.io, "\(context): \(error.localizedDescription)")
    }

    static func writeAndSync(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError("creating \(url.lastPathComponent) failed") }
        defer { close(fd) }
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw posixError("writing \(url.lastPathComponent) failed")
                }
                offset += n
            }
        }
        try check(fsync(fd), "flushing \(url.lastPathComponent)")
    }

    static func syncFile(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BlobError(.io, "opening \(url.lastPathComponent) failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try check(fsync(fd), "flushing \(url.lastPathComponent)")
    }

    static func syncDirectory(_ url: URL) throws {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw BlobError(.io, "opening directory \(url.lastPathComponent) failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        try check(fsync(fd), "flushing directory \(url.lastPathComponent)")
    }

    /// Creates `directory` (and missing parents) so that its entry is on disk too.
    static func makeDirectoryDurably(_ directory: URL) throws {
        if FileManager.default.fileExists(atPath: directory.path) { return }
        let parent = directory.deletingLastPathComponent()
        try makeDirectoryDurably(parent)
        if mkdir(directory.path, 0o755) != 0, errno != EEXIST {
            throw posixError("creating directory \(directory.lastPathComponent) failed")
        }
        try syncDirectory(parent)
    }
}
