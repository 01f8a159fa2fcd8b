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
        let deadline = ContinuousClock.now + .seconds(30)
        while !started.log.contains("listening for task notifications"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(started.log.contains("listening for task notifications"), "worker log: \(started.log)")

        let png = try await Fixtures.image(width: 320, height: 320, format: "png")
        let submitted = ContinuousClock.now
        let r = try await HTTP.submit(node.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "static", "duration": 3])
        #expect(r.status == 200, "\(r.text)")
        let id = try #require(r.json["task_id"] as? String)

        // Half the poll interval: a pick-up within it can only come from the wake-up, not from the poll.
        var picked = false
        while !picked, ContinuousClock.now - submitted < .seconds(15) {
            let rows = try await pg.query("SELECT attempt FROM tasks WHERE id = '\(id)'")
            picked = (Int(rows.first?.first ?? "") ?? 0) >= 1
            if !picked { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(picked, "the task was not claimed within 15 s although the worker polls only every 30 s: LISTEN/NOTIFY did not wake it; worker log: \(started.log)")
        let owners = try await pg.query("SELECT worker_id FROM task_attempts WHERE task_id = '\(id)'")
        #expect(owners.map { $0.first ?? "" } == ["wake/w0"])

        let done = try await HTTP.waitForTerminal(node.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")

        #expect(await started.terminate() == 0, "worker log: \(started.log)")
        await node.terminate()
        await pg.stop()
    }
}
