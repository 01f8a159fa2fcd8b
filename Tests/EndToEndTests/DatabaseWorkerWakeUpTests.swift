import Foundation
import Testing

/// `kinema worker --database` idles on PostgreSQL's LISTEN/NOTIFY: a task submitted on an API node wakes it,
/// long before its poll would have looked again.
@Suite(.serialized) struct DatabaseWorkerWakeUpTests {
    @Test func anIdleDatabaseWorkerIsWokenByASubmitOnAnotherNode() async throws {
        let pg = try await ThrowawayPostgres.start()
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-wake-\(UUID().uuidString)")
        let blobs = shared.appendingPathComponent("blobs").path
        let node = try ServerProcess()
        var worker: RemoteWorkerProcess?
        defer {
            worker?.kill()
            node.removeData()
            try? FileManager.default.removeItem(at: shared)
        }
        try await node.start(["--database", pg.url, "--blob-dir", blobs], workers: 0)
        let key = try #require(node.devKey)

        // A 30 s poll: within the wait below, only a notification can bring the task to this worker.
        let started = try await RemoteWorkerProcess.start([
            "--database", pg.url, "--blob-dir", blobs, "--worker-id", "wake", "--poll-seconds", "30",
        ])
        worker = started
        // The worker found the queue empty and its store now listens: from here on a NOTIFY reaches it.
        let deadline = ContinuousClock.now + .seconds(60)
        while !started.log.contains("listening for task notifications"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(started.log.contains("listening for task notifications"), "worker log: \(started.log)")

        let png = try await Fixtures.image(width: 320, height: 320, format: "png")
        let r = try await HTTP.submit(node.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "static", "duration": 3])
        #expect(r.status == 200, "\(r.text)")
        let id = try #require(r.json["task_id"] as? String)

        // Wait (generously: this test process may be starved by others) until the task was claimed, then judge
        // by the database's own timestamps, written by the node and the worker: half the poll interval from
        // creation to claim can only come from the wake-up, not from the poll.
        var claimDelay: Int?
        let patience = ContinuousClock.now + .seconds(90)
        while claimDelay == nil, ContinuousClock.now < patience {
            let rows = try await pg.query(
                "SELECT a.started_at - t.created_at FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.id = '\(id)' ORDER BY a.started_at LIMIT 1"
            )
            claimDelay = rows.first?.first.flatMap { Int($0) }
            if claimDelay == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let delay = try #require(claimDelay, "the task was never claimed; worker log: \(started.log)")
        #expect(
            delay < 15_000,
            "the task was claimed \(delay) ms after it was created although the worker polls only every 30 s: LISTEN/NOTIFY did not wake it; worker log: \(started.log)"
        )
        let owners = try await pg.query("SELECT worker_id FROM task_attempts WHERE task_id = '\(id)'")
        #expect(owners.map { $0.first ?? "" } == ["wake/w0"])

        let done = try await HTTP.waitForTerminal(node.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")

        #expect(await started.terminate() == 0, "worker log: \(started.log)")
        await node.terminate()
        await pg.stop()
    }
}
