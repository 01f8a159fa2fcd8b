import Foundation
import Testing

/// Scale-out mode through the real binaries: two API nodes and a database worker around one throwaway PostgreSQL.
@Suite(.serialized) struct SharedDatabase {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/test-postgres")

    @Test func twoAPINodesAndADatabaseWorkerShareTasksBlobsAndLinks() async throws {
        let pgDir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-pg-\(UUID().uuidString)")
        let started = try await Tools.run("bash", [Self.script.path, "start", pgDir.path, "--owner-pid", String(getpid())])
        #expect(started.status == 0, "\(started.output)")
        let url = try #require(started.output.split(separator: "\n").last(where: { $0.hasPrefix("postgres://") }).map(String.init))
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-shared-\(UUID().uuidString)")
        let blobs = shared.appendingPathComponent("blobs").path
        let node1 = try ServerProcess(), node2 = try ServerProcess()
        let worker = Process()
        defer {
            send(SIGKILL, to: worker)
            node1.removeData()
            node2.removeData()
            try? FileManager.default.removeItem(at: shared)
        }

        try await node1.start(["--database", url, "--blob-dir", blobs], workers: 0)
        try await node2.start(["--database", url, "--blob-dir", blobs], workers: 0)
        let key = try #require(node1.devKey)
        #expect(node2.devKey == nil) // one dev key per database, shown by the first node only

        worker.executableURL = ServerProcess.binary
        worker.arguments = ["worker", "--database", url, "--blob-dir", blobs, "--log-level", "warning"]
        worker.standardOutput = FileHandle.nullDevice
        worker.standardError = FileHandle.nullDevice
        try worker.run()

        let png = try await Fixtures.image(width: 640, height: 360, format: "png")
        let submit = try await HTTP.submit(node1.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "pan right", "duration": 3])
        #expect(submit.status == 200, "\(submit.text)")
        let id = try #require(submit.json["task_id"] as? String)

        // Polled on the other node: API nodes are stateless.
        let done = try await HTTP.waitForTerminal(node2.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        let link = try #require((done["videos"] as? [[String: Any]])?.first?["video_url"] as? String)
        let viaNode2 = try await HTTP.get(link)
        #expect(viaNode2.status == 200)
        // The link signed by node 2 verifies on node 1: the signing secret is shared through the blob directory.
        let viaNode1 = try await HTTP.get(link.replacingOccurrences(of: node2.baseURL, with: node1.baseURL))
        #expect(viaNode1.status == 200)
        #expect(viaNode1.body == viaNode2.body)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("shared-\(id).mp4")
        try viaNode1.body.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let video = try #require(try await Tools.probe(file).first { $0["codec_type"] as? String == "video" })
        #expect(video["nb_read_frames"] as? String == "72")

        send(SIGKILL, to: worker)
        await node1.terminate()
        await node2.terminate()
        let stopped = try await Tools.run("bash", [Self.script.path, "stop", pgDir.path])
        #expect(stopped.status == 0, "\(stopped.output)")
    }
}
