import Foundation
import Testing

/// The scaled set-up through the real binaries, with crashes: one PostgreSQL, two API-only nodes, two database
/// workers and one remote worker; a database worker and an API node are killed with SIGKILL mid-run.
/// Every accepted task must still succeed exactly once, with one result, and no task may ever have been held
/// under two live leases at once.
@Suite(.serialized) struct ScaleOutKillTests {
    static let taskCount = 100
    /// Short leases and frequent rescues, so the killed worker's task comes back within seconds.
    static let leaseSeconds = "5"
    static let rescueSeconds = "1"

    /// One row of `task_attempts`.
    struct Attempt {
        var leaseID: String
        var workerID: String
        var startedAt: Int64
        var endedAt: Int64?
        var outcome: String
    }

    @Test func killedWorkerAndNodeLoseNoTaskAndRunNoneTwice() async throws {
        let pg = try await ThrowawayPostgres.start()
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-scale-\(UUID().uuidString)")
        let blobs = shared.appendingPathComponent("blobs")
        let nodeA = try ServerProcess(), nodeB = try ServerProcess()
        var workers: [RemoteWorkerProcess] = []
        defer {
            for w in workers { w.kill() }
            for node in [nodeA, nodeB] {
                if let p = node.process { send(SIGKILL, to: p) }
                node.removeData()
            }
            try? FileManager.default.removeItem(at: shared)
        }

        let nodeOptions = [
            "--database", pg.url, "--blob-dir", blobs.path, "--lease-seconds", Self.leaseSeconds, "--rescue-seconds", Self.rescueSeconds,
        ]
        try await nodeA.start(nodeOptions, workers: 0)
        try await nodeB.start(nodeOptions, workers: 0)
        let key = try #require(nodeA.devKey)
        let tokenRun = try await ServerProcess.cli(["worker-token", "create", "--name", "kill-test", "--database", pg.url])
        #expect(tokenRun.status == 0, "\(tokenRun.stdout)")
        let token = try #require(tokenRun.stdout.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) })

        // The smallest clips the contract allows: 3 s from a 300x300 image (720x720 output, 72 frames).
        let png = try await Fixtures.image(width: 300, height: 300, format: "png").base64EncodedString()
        var ids: [String] = []
        for i in 0..<Self.taskCount {
            let node = i.isMultiple(of: 2) ? nodeA : nodeB
            let r = try await HTTP.submit(node.baseURL, key: key, json: ["image": png, "prompt": "static shot", "duration": 3])
            #expect(r.status == 200, "submit \(i): \(r.text)")
            ids.append(try #require(r.json["task_id"] as? String))
        }

        func databaseWorker(_ id: String) async throws -> RemoteWorkerProcess {
            try await RemoteWorkerProcess.start([
                "--database", pg.url, "--blob-dir", blobs.path, "--worker-id", id,
                "--lease-seconds", Self.leaseSeconds, "--rescue-seconds", Self.rescueSeconds,
            ])
        }
        // The doomed worker starts alone, once every task is queued: it must be caught holding a task, and with
        // all four workers at once the 100 clips were done in about 25 s, which a starved test process (a fresh-clone
        // CI run) polled through without once seeing it busy. Alone, it has about 100 s of work ahead of it.
        let doomedWorker = try await databaseWorker("db1")
        workers.append(doomedWorker)

        // Mid-run: some tasks done and the doomed worker busy (it claims the next task the moment it finishes one).
        // It is frozen (SIGSTOP) before the check, so what it holds cannot change between the check and the kill;
        // caught between two tasks, it is let go and caught again.
        let doomedPID = doomedWorker.process.processIdentifier
        var rescued: String?
        let midRunDeadline = ContinuousClock.now + .seconds(120)
        while rescued == nil, ContinuousClock.now < midRunDeadline {
            let succeeded = try await Self.count(pg, "status = 'succeeded'")
            let doomedBusy = try await Self.count(pg, "status = 'processing' AND lease_owner LIKE 'db1/%'")
            if succeeded >= 5 && doomedBusy >= 1 {
                kill(doomedPID, SIGSTOP)
                // 'expired' too: should this process be starved past the 5 s lease, the rescuer may already have
                // taken the frozen worker's task back (db1 loses no lease before this point otherwise).
                let held = try await pg.query(
                    "SELECT task_id FROM task_attempts WHERE worker_id LIKE 'db1/%' AND outcome IN ('running', 'expired') ORDER BY started_at DESC LIMIT 1"
                )
                rescued = held.first?.first
                if rescued == nil { kill(doomedPID, SIGCONT) }
            }
            if rescued == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let rescuedTask = try #require(rescued, "the run never got going with the doomed worker holding a task; its log: \(doomedWorker.log)")
        // What the dead worker held stays leased to it until the lease expires and a rescuer takes it back.
        doomedWorker.kill()
        await ServerProcess.waitForExit(doomedWorker.process, timeout: .seconds(30))
        // The others start now; the dead worker's task waits for its lease to expire and a rescuer.
        workers.append(try await databaseWorker("db2"))
        // One remote worker talks to the node that survives, one to the node that is killed while it works for it.
        workers.append(
            try await RemoteWorkerProcess.start([
                "--server", nodeB.baseURL, "--worker-token", token, "--worker-id", "remote1",
                "--lease-seconds", Self.leaseSeconds, "--claim-wait", "5", "--scratch-dir", shared.appendingPathComponent("remote-scratch").path,
            ]))
        workers.append(
            try await RemoteWorkerProcess.start([
                "--server", nodeA.baseURL, "--worker-token", token, "--worker-id", "remote2",
                "--lease-seconds", Self.leaseSeconds, "--claim-wait", "5", "--scratch-dir", shared.appendingPathComponent("remote2-scratch").path,
            ]))

        // Node A dies with work in flight: the remote worker it serves holds a task (claimed, rendering or
        // uploading through A). Its heartbeats and upload then fail; the lease expires and another worker finishes it.
        var heldThroughA = 0
        let busyDeadline = ContinuousClock.now + .seconds(60)
        while heldThroughA == 0, ContinuousClock.now < busyDeadline {
            heldThroughA = try await Self.count(pg, "status = 'processing' AND lease_owner LIKE 'remote/%/remote2/%'")
            if heldThroughA == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(heldThroughA >= 1, "the worker served by node A never held a task; the kill proved nothing")
        await nodeA.kill9()

        // Bounded: every task must end; a FAILED one ends the wait early.
        let allDone = ContinuousClock.now + .seconds(300)
        var succeeded = 0, failed = 0
        while succeeded + failed < Self.taskCount, ContinuousClock.now < allDone {
            try await Task.sleep(for: .milliseconds(250))
            succeeded = try await Self.count(pg, "status = 'succeeded'")
            failed = try await Self.count(pg, "status NOT IN ('queued', 'processing', 'succeeded')")
        }
        #expect(succeeded == Self.taskCount && failed == 0, "succeeded \(succeeded), failed or canceled \(failed) of \(Self.taskCount)")

        // Through the surviving node's public API: each task SUCCEED with exactly one video.
        for id in ids {
            let r = try await HTTP.result(nodeB.baseURL, key: key, id: id)
            let task = r.json["task"] as? [String: Any]
            #expect(task?["status"] as? String == "TASK_STATUS_SUCCEED", "\(id): \(r.text)")
            #expect((r.json["videos"] as? [Any])?.count == 1, "\(id): \(r.text)")
        }

        // From the recorded attempts: one success per task, attempts strictly one after another.
        let resultKeys = Dictionary(uniqueKeysWithValues: try await pg.query("SELECT id, result_key FROM tasks").map { ($0[0], $0[1]) })
        var attemptsByTask: [String: [Attempt]] = [:]
        for row in try await pg.query(
            "SELECT task_id, lease_id, worker_id, started_at, ended_at, outcome FROM task_attempts ORDER BY started_at, seq")
        {
            attemptsByTask[row[0], default: []].append(
                Attempt(
                    leaseID: row[1], workerID: row[2], startedAt: Int64(row[3]) ?? -1, endedAt: Int64(row[4]), outcome: row[5]
                ))
        }
        for id in ids {
            let attempts = attemptsByTask[id] ?? []
            let successes = attempts.filter { $0.outcome == "succeeded" }
            #expect(successes.count == 1, "\(id): \(attempts)")
            // An attempt's lease is live from its claim until it ends; an expired one ends only when the rescuer
            // took it back, after its lease ran out. The next attempt may start only after that.
            for (earlier, later) in zip(attempts, attempts.dropFirst()) {
                let end = try #require(earlier.endedAt, "\(id): an attempt before the last one never ended: \(attempts)")
                #expect(end <= later.startedAt, "\(id): two leases overlapped: \(attempts)")
            }
            #expect(attempts.allSatisfy { $0.endedAt != nil }, "\(id): an attempt is still running: \(attempts)")
            guard let success = successes.first else { continue }

            // One result: the succeeded lease's file. Any other file can only be a killed worker's copy that was
            // stored in the instant before its completion could be recorded (its lease then expired).
            let succeeded = "\(id).\(success.leaseID).mp4"
            #expect(resultKeys[id] == "results/\(id.prefix(2))/\(succeeded)", "\(id): \(resultKeys[id] ?? "none") vs \(attempts)")
            let files = ServerProcess.storedResults(of: id, blobs: blobs)
            let expiredLeases = Set(attempts.filter { $0.outcome == "expired" }.map { "\(id).\($0.leaseID).mp4" })
            #expect(files.filter { $0 == succeeded }.count == 1, "\(id): \(files)")
            #expect(files.allSatisfy { $0 == succeeded || expiredLeases.contains($0) }, "\(id): \(files) vs \(attempts)")
            let data = try Data(contentsOf: blobs.appendingPathComponent("results/\(id.prefix(2))/\(succeeded)"))
            #expect(data.count > 8 && String(decoding: data[4..<8], as: UTF8.self) == "ftyp", "\(id): not an MP4")
        }

        // The killed worker's task was rescued by lease expiry and finished by someone else.
        let rescuedAttempts = attemptsByTask[rescuedTask] ?? []
        #expect(rescuedAttempts.contains { $0.workerID.hasPrefix("db1/") && $0.outcome == "expired" }, "\(rescuedAttempts)")
        #expect(rescuedAttempts.last.map { $0.outcome == "succeeded" && !$0.workerID.hasPrefix("db1/") } == true, "\(rescuedAttempts)")
        // Every kind of worker took part.
        let owners = Set(
            attemptsByTask.values.joined().filter { $0.outcome == "succeeded" }.map { String($0.workerID.split(separator: "/").first ?? "") })
        #expect(owners.contains("db2") && owners.contains("remote"), "\(owners)")
        let video = try #require(
            try await Tools.probe(blobs.appendingPathComponent(resultKeys[rescuedTask] ?? "")).first { $0["codec_type"] as? String == "video" })
        #expect(video["nb_read_frames"] as? String == "72")
        #expect(video["width"] as? Int == 720 && video["height"] as? Int == 720)

        for w in workers where w !== doomedWorker { w.kill() }
        await nodeB.terminate()
        await pg.stop()
    }

    static func count(_ pg: ThrowawayPostgres, _ condition: String) async throws -> Int {
        Int(try await pg.query("SELECT count(*) FROM tasks WHERE \(condition)").first?.first ?? "") ?? -1
    }
}
