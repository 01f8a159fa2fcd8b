import Foundation
import NIOHTTP1
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

        // Streamed from the other node: it sees the worker's progress through the shared database, to the end.
        let stream = try await TaskEventsTests.read(node2.baseURL + "/v3/async/task-events?task_id=\(id)", key: key)
        #expect(stream.ended)
        let progress = stream.events.compactMap { ($0["task"] as? [String: Any])?["progress_percent"] as? Int }
        #expect(progress == progress.sorted())
        #expect((stream.events.last?["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")

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

    @Test func aCancelOnOneNodeStopsARenderOnAnotherAndAnIdempotencyKeyHoldsAcrossNodes() async throws {
        let pgDir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-pg-\(UUID().uuidString)")
        let started = try await Tools.run("bash", [Self.script.path, "start", pgDir.path, "--owner-pid", String(getpid())])
        #expect(started.status == 0, "\(started.output)")
        let url = try #require(started.output.split(separator: "\n").last(where: { $0.hasPrefix("postgres://") }).map(String.init))
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-shared-\(UUID().uuidString)")
        let blobs = shared.appendingPathComponent("blobs")
        let renderer = try ServerProcess(), api = try ServerProcess()
        defer {
            renderer.removeData()
            api.removeData()
            try? FileManager.default.removeItem(at: shared)
        }
        try await renderer.start(["--database", url, "--blob-dir", blobs.path], workers: 1, logLevel: "info")
        try await api.start(["--database", url, "--blob-dir", blobs.path], workers: 0)
        let key = try #require(renderer.devKey)

        // A render on the first node, canceled through the second: the renderer learns it at its next heartbeat and
        // stops (its log says so; a render that ignored it would end with "completion refused"). A render can win the
        // race against the heartbeat on a fast machine, so up to three tasks are tried; one must be stopped.
        let big = try await Fixtures.image(width: 1280, height: 720, format: "png").base64EncodedString()
        var stopped: String?
        for attempt in 1...3 where stopped == nil {
            let id = try #require(
                try await HTTP.submit(
                    renderer.baseURL, key: key, json: ["image": big, "prompt": "slow push in, rain", "duration": 15, "sound": true]
                )
                .json["task_id"] as? String)
            let deadline = ContinuousClock.now + .seconds(60)
            while renderer.log.components(separatedBy: "render started").count <= attempt, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let canceled = try await HTTP.request(
                .POST, api.baseURL + "/v3/async/task-cancel", headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")],
                body: try JSONSerialization.data(withJSONObject: ["task_id": id]))
            #expect(canceled.status == 200)
            guard (canceled.json["task"] as? [String: Any])?["reason"] as? String == "canceled" else { continue }
            // How the render ended, as the renderer logged it.
            func ending() -> String? {
                renderer.log.split(separator: "\n").first { line in
                    line.contains(id.uppercased())
                        && ["canceled during render", "completion refused", "render succeeded"].contains { line.contains($0) }
                }.map(String.init)
            }
            let answered = ContinuousClock.now
            let until = answered + .seconds(30)
            while ending() == nil, ContinuousClock.now < until { try await Task.sleep(for: .milliseconds(20)) }
            if ending()?.contains("canceled during render") == true {
                stopped = id
                // The bound is 2 s plus one heartbeat interval (2 s here), counted from the cancel's answer to
                // the stop the renderer logs; twice that leaves room for a machine starved by the whole suite.
                let took = ContinuousClock.now - answered
                #expect(took < .seconds(8), "the render on the other node stopped \(took) after the cancel")
            }
        }
        let id = try #require(stopped, "no render was stopped by a cancel sent to the other node: \(renderer.log)")
        #expect(ServerProcess.storedResults(of: id, blobs: blobs).isEmpty)

        // One Idempotency-Key, 20 concurrent submits spread over both nodes: one task.
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let body = try JSONSerialization.data(withJSONObject: ["image": png, "prompt": "pan"])
        let ids = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 0..<20 {
                let node = i % 2 == 0 ? renderer : api
                group.addTask {
                    let r = try await HTTP.request(
                        .POST, node.baseURL + "/v3/async/kling-v3.0-std-i2v",
                        headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json"), ("Idempotency-Key", "across-nodes")],
                        body: body)
                    return r.status == 200 ? r.json["task_id"] as? String : nil
                }
            }
            var all: [String?] = []
            for try await id in group { all.append(id) }
            return all
        }
        #expect(ids.allSatisfy { $0 != nil })
        #expect(Set(ids.compactMap { $0 }).count == 1)

        await renderer.terminate()
        await api.terminate()
        let stoppedDB = try await Tools.run("bash", [Self.script.path, "stop", pgDir.path])
        #expect(stoppedDB.status == 0, "\(stoppedDB.output)")
    }

    @Test func twoNodesDeliverEachWebhookOnceAndSignWithTheSharedSecret() async throws {
        let pg = try await ThrowawayPostgres.start()
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-shared-\(UUID().uuidString)")
        let blobs = shared.appendingPathComponent("blobs").path
        let node1 = try ServerProcess(), node2 = try ServerProcess()
        let receiver = try await WebhookReceiver()
        defer {
            node1.removeData()
            node2.removeData()
            try? FileManager.default.removeItem(at: shared)
        }
        let options = ["--database", pg.url, "--blob-dir", blobs, "--allow-fetch-from", "127.0.0.1/32"]
        try await node1.start(options, workers: 0)
        try await node2.start(options, workers: 0)
        let key = try #require(node1.devKey)
        let made = try await ServerProcess.cli(["webhooks", "secret", "--database", pg.url])
        let secret = try #require(made.stdout.split(separator: "\n").last.map(String.init))

        // 20 tasks with webhooks, submitted and canceled through either node: both nodes' dispatchers compete for the
        // events, and each event reaches the receiver once.
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        var ids: [String] = []
        for i in 0..<20 {
            let node = i % 2 == 0 ? node1 : node2
            let r = try await HTTP.submit(
                node.baseURL, key: key, json: ["image": png, "prompt": "pan", "extra": ["webhook": ["url": receiver.url("/\(i)")]]])
            let id = try #require(r.json["task_id"] as? String, "\(r.text)")
            _ = try await CancelTests.cancel(i % 3 == 0 ? node1 : node2, key: key, id: id)
            ids.append(id)
        }
        let arrived = try await receiver.waitFor(20)
        try await Task.sleep(for: .seconds(2))
        #expect(receiver.received.count == 20, "\(receiver.received.map(\.uri))")
        #expect(Set(arrived.compactMap { $0.header("webhook-id") }) == Set(ids.map(WebhookTests.hex)))
        #expect(arrived.allSatisfy { WebhookReceiver.verifies($0, with: secret) })
        let rows = try await pg.query("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered' AND attempts = 1")
        #expect(rows.first?.first == "20", "\(rows)")
        await node1.terminate()
        await node2.terminate()
        await receiver.stop()
        await pg.stop()
    }
}
