import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Data at rest is private to the server's account whatever umask it was started with: every tenant's images and
/// videos, the database and its WAL, the secrets.
@Suite struct FileModes {
    /// Every path below `root` (itself included) with its permission bits.
    static func modes(below root: URL) throws -> [(path: String, mode: Int, isDirectory: Bool)] {
        var found: [(String, Int, Bool)] = []
        func visit(_ url: URL) throws {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            let isDirectory = attributes[.type] as? FileAttributeType == .typeDirectory
            found.append((url.path, (attributes[.posixPermissions] as? Int ?? -1) & 0o777, isDirectory))
            if isDirectory {
                for name in try FileManager.default.contentsOfDirectory(atPath: url.path) { try visit(url.appendingPathComponent(name)) }
            }
        }
        try visit(root)
        return found
    }

    @Test func dataAtRestIsOwnerOnlyUnderALooseUmask() async throws {
        // The usual umask 022 would make new files 0644 and folders 0755 (world-readable).
        let previous = umask(0o022)
        defer { umask(previous) }
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 1)
        let key = try #require(server.devKey)
        let image = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let submitted = try await HTTP.submit(server.baseURL, key: key, json: ["image": image, "prompt": "pan left", "duration": 3])
        let id = try #require(submitted.json["task_id"] as? String)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")

        let all = try Self.modes(below: server.dataDir)
        let names = Set(all.map { URL(fileURLWithPath: $0.path).lastPathComponent })
        // What must be there for the check to mean something: the WAL, an input and a result.
        for expected in ["kinema.sqlite", "kinema.sqlite-wal", "url-signing.key", "blobs", "inputs", "results"] {
            #expect(names.contains(expected), "\(expected) missing in \(names.sorted())")
        }
        #expect(all.contains { $0.path.hasSuffix(".mp4") }, "no result file in \(all.map(\.path))")
        for entry in all {
            #expect(entry.mode == (entry.isDirectory ? 0o700 : 0o600), "\(entry.path) is \(String(entry.mode, radix: 8))")
        }
        await server.terminate()
    }

    @Test func anExistingLooseDataDirectoryIsNarrowedAtStart() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        chmod(server.dataDir.path, 0o755)
        try await server.start(workers: 0)
        let mode = try FileManager.default.attributesOfItem(atPath: server.dataDir.path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o777 } == 0o700)
        await server.terminate()
    }
}
