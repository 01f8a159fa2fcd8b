import Foundation
import KinemaCore
import KinemaStore

/// The embedded node's data directory: SQLite database, blobs, signing secret, node id and an exclusive lock.
public struct DataDirectory: Sendable {
    public let url: URL

    /// Who may read what is stored here (the owner only, by default).
    public let access: FileAccess

    /// Opens (creating if needed) the directory with the mode `access` gives it (0700 by default).
    public init(_ url: URL, access: FileAccess = .owner) throws {
        self.url = url
        self.access = access
        try access.prepare(url)
    }

    /// The task store (created on first use).
    public func openStore() throws -> SQLiteTaskStore {
        try SQLiteTaskStore(path: url.appendingPathComponent("kinema.sqlite").path)
    }

    /// Inputs and results.
    public func openBlobs() throws -> LocalBlobStore {
        try LocalBlobStore(root: url.appendingPathComponent("blobs"), access: access)
    }

    /// Renders in progress (moved into the blob store when done).
    public var scratch: URL { url.appendingPathComponent("scratch") }

    /// The secret that signs result URLs: 32 random bytes made once, readable by the owner only.
    public func signingSecret() throws -> [UInt8] {
        try persistentRandom(name: "url-signing.key", bytes: 32)
    }

    /// A stable id for this node's workers, so a restart can requeue its own orphans at once.
    public func nodeID() throws -> String {
        "node-" + (try persistentRandom(name: "node-id", bytes: 8)).hexString
    }

    private func persistentRandom(name: String, bytes count: Int) throws -> [UInt8] {
        let file = url.appendingPathComponent(name)
        if let data = try? Data(contentsOf: file), data.count == count { return [UInt8](data) }
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // link(2) publishes the file only if none exists, so nodes starting at once on a shared
        // directory all end up with the same secret (the loser reads the winner's).
        let tmp = file.appendingPathExtension("tmp-\(UUID().uuidString)")
        defer { unlink(tmp.path) }
        guard FileManager.default.createFile(atPath: tmp.path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw StoreError(.corrupt, "could not write \(tmp.path)")
        }
        if link(tmp.path, file.path) == 0 { return bytes }
        guard errno == EEXIST, let data = try? Data(contentsOf: file), data.count == count else {
            throw StoreError(.corrupt, "could not create \(file.path) (errno \(errno))")
        }
        return [UInt8](data)
    }

    /// Takes the directory's exclusive lock for this process's lifetime: two servers on one SQLite data dir
    /// would each requeue the other's running tasks as orphans.
    public func lockExclusively() throws -> FileLock {
        try FileLock(path: url.appendingPathComponent("serve.lock").path)
    }
}
