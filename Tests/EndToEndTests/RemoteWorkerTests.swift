import AsyncHTTPClient
import Foundation
import KinemaAPI
import NIOCore
import NIOHTTP1
import Testing
import NIOFoundationEssentialsCompat

/// The remote worker protocol (`/internal/v1/worker/…`) through the real binaries: a `kinema worker --server`
/// process rendering for an API-only node, and the protocol's refusals and fencing spoken as raw HTTP.
@Suite struct RemoteWorkerTests {
    static let base = "/internal/v1/worker"

    // MARK: The real worker

    @Test func remoteWorkerRendersASubmittedTask() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server, name: "gpu-box-1")
        let worker = try await RemoteWorkerProcess.start([
            "--server", server.baseURL, "--worker-token", token, "--worker-id", "box1", "--claim-wait", "5",
        ])
        defer { worker.kill() }

        let png = try await Fixtures.image(width: 480, height: 320, format: "png")
        let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "slow push in", "duration": 3])
        #expect(r.status == 200)
        let id = try #require(r.json["task_id"] as? String)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        let task = try #require(done["task"] as? [String: Any])
        #expect(task["status"] as? String == "TASK_STATUS_SUCCEED", "\(done) worker log: \(worker.log)")
        let videos = try #require(done["videos"] as? [[String: Any]])
        #expect(videos.count == 1)

        let url = try #require(videos.first?["video_url"] as? String)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("remote-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: file) }
        try await HTTP.get(url).body.write(to: file)
        let video = try #require(try await Tools.probe(file).first { $0["codec_type"] as? String == "video" })
        #expect(video["codec_name"] as? String == "h264")
        #expect(video["nb_read_frames"] as? String == "72")
        // The attempt ran under this token's namespace of lease owners.
        let attempts = try await Self.attemptsOwners(server, taskID: id)
        #expect(attempts.count == 1 && attempts.allSatisfy { $0.hasPrefix("remote/") && $0.hasSuffix("/box1/w0") }, "\(attempts)")

        let status = await worker.terminate()
        #expect(status == 0, "worker log: \(worker.log)")
        await server.terminate()
    }

    /// SIGTERM with no grace: the worker stops its render, releases the lease (the attempt is not counted) and exits
    /// cleanly; the task is queued again for another worker.
    @Test func aTerminatedWorkerReleasesWhatItIsRendering() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let worker = try await RemoteWorkerProcess.start([
            "--server", server.baseURL, "--worker-token", token, "--worker-id", "leaver", "--claim-wait", "5", "--shutdown-grace", "0",
        ])
        defer { worker.kill() }
        let png = try await Fixtures.image(width: 1280, height: 720, format: "png").base64EncodedString()
        let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "slow push in", "duration": 15])
        let id = try #require(r.json["task_id"] as? String)
        do {
            try await Self.waitForStatus(server, key: key, id: id, "TASK_STATUS_PROCESSING")
        } catch {
            Issue.record("\(error)\nworker log: \(worker.log.suffix(3000))")
            return
        }
        #expect(await worker.terminate() == 0, "worker log: \(worker.log)")
        let after = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((after.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_QUEUED", "\(after.text) worker log: \(worker.log)")
        let db = server.dataDir.appendingPathComponent("kinema.sqlite").path
        let attempt = try await Tools.run("sqlite3", ["-readonly", db, "SELECT attempt FROM tasks WHERE lower(id) = lower('\(id)')"])
        #expect(attempt.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "the release counted an attempt: \(attempt.output)")
        let outcomes = try await Tools.run("sqlite3", ["-readonly", db, "SELECT outcome FROM task_attempts WHERE lower(task_id) = lower('\(id)')"])
        #expect(outcomes.output.trimmingCharacters(in: .whitespacesAndNewlines) == "released", "\(outcomes.output)")
        await server.terminate()
    }

    /// A worker that hangs up in the middle of a long-poll leaves no poll behind: a task submitted afterwards waits for
    /// a live worker, un-claimed and with no attempt spent, instead of being claimed for nobody until its lease expires.
    @Test func aClaimWhoseWorkerHungUpClaimsNothing() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let port = try #require(UInt16(server.baseURL.split(separator: ":").last ?? ""))
        let body = #"{"worker_id":"gone","wait_seconds":30}"#
        let connection = try await RawConnection.open(port: port)
        let head = "POST \(Self.base)/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
        #expect(await connection.send(head + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body))
        try await Task.sleep(for: .milliseconds(500))
        shutdown(connection.fd, Int32(SHUT_RDWR))
        try await Task.sleep(for: .milliseconds(500))

        // A poll left waiting would be woken by this submit and claim the task at once.
        let id = try await Self.submit(server, key: key)
        try await Task.sleep(for: .seconds(2))
        let r = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((r.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_QUEUED", "\(r.text)")
        #expect(try await Self.attemptsOwners(server, taskID: id).isEmpty)
        let lease = try await Self.claim(server, token: token, worker: "live", leaseSeconds: 30)
        #expect(lease.attempt == 1)
        await server.terminate()
    }

    /// A task claimed under a stopping worker's id whose answer it never read (here: claimed by hand under its id,
    /// for an engine it does not run) is given back un-counted as the worker leaves, not left until lease expiry.
    @Test func aStoppingWorkerGivesBackAClaimItNeverRan() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--engine", "motion", "--engine", "diffusers"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let worker = try await RemoteWorkerProcess.start([
            "--server", server.baseURL, "--worker-token", token, "--worker-id", "leaver", "--claim-wait", "5",
        ])
        defer { worker.kill() }
        // A rendered task proves the worker's start (and its orphan sweep) is behind it.
        let first = try await Self.submit(server, key: key)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: first)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "worker log: \(worker.log)")

        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let r = try await HTTP.submit(
            server.baseURL, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3, "extra": ["engine": "diffusers"]])
        let id = try #require(r.json["task_id"] as? String)
        let claim = try await Self.post(
            server, "/claim", token: token, json: ["worker_id": "leaver/w0", "engine": "diffusers", "lease_seconds": 600, "wait_seconds": 5])
        #expect(claim.status == 200, "\(claim.text)")

        #expect(await worker.terminate() == 0, "worker log: \(worker.log)")
        #expect(worker.log.contains("released tasks claimed as this worker stopped"), "worker log: \(worker.log)")
        let after = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((after.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_QUEUED", "\(after.text)")
        let db = server.dataDir.appendingPathComponent("kinema.sqlite").path
        let rows = try await Tools.run(
            "sqlite3",
            ["-readonly", db, "SELECT t.attempt, a.outcome FROM tasks t JOIN task_attempts a ON a.task_id = t.id WHERE lower(t.id) = lower('\(id)')"])
        #expect(rows.output.trimmingCharacters(in: .whitespacesAndNewlines) == "0|released", "\(rows.output)")
        await server.terminate()
    }

    @Test func aRestartedWorkerRequeuesWhatItsKilledPredecessorHeld() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // A long lease, so only the restarted worker's orphan sweep (not expiry) can bring the task back in time.
        try await server.start(["--lease-seconds", "600"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let args = ["--server", server.baseURL, "--worker-token", token, "--worker-id", "box", "--claim-wait", "5", "--lease-seconds", "600"]
        let first = try await RemoteWorkerProcess.start(args)
        defer { first.kill() }
        // A render of several seconds: a short one could start and finish between two polls of a starved test
        // process (seen once in CI), and the test would wait for a PROCESSING it never saw.
        let png = try await Fixtures.image(width: 1280, height: 720, format: "png")
        let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "pan right", "duration": 15])
        let id = try #require(r.json["task_id"] as? String)
        try await Self.waitForStatus(server, key: key, id: id, "TASK_STATUS_PROCESSING")
        first.kill()
        await ServerProcess.waitForExit(first.process, timeout: .seconds(30))

        let second = try await RemoteWorkerProcess.start(args)
        defer { second.kill() }
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done) \(second.log)")
        #expect((done["videos"] as? [Any])?.count == 1)
        let owners = try await Self.attemptsOwners(server, taskID: id)
        #expect(owners.count == 2, "\(owners)")
        let stored = server.storedResults(of: id)
        #expect(stored.count == 1, "\(stored)")
        #expect(await second.terminate() == 0)
        await server.terminate()
    }

    // MARK: Authentication

    @Test func workerRoutesAcceptOnlyWorkerTokensAndWorkerTokensOnlyThere() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server, name: "box")
        let claim = ["worker_id": "w", "wait_seconds": 0] as [String: Any]

        let missing = try await Self.post(server, "/claim", token: nil, json: claim)
        #expect(missing.status == 401)
        #expect(missing.json["reason"] as? String == "MISSING_WORKER_TOKEN")
        Self.expectErrorShape(missing)

        let wrong = try await Self.post(server, "/claim", token: "kwt_" + String(repeating: "A", count: 43), json: claim)
        #expect(wrong.status == 403)
        #expect(wrong.json["reason"] as? String == "INVALID_WORKER_TOKEN")
        Self.expectErrorShape(wrong)

        let apiKey = try await Self.post(server, "/claim", token: key, json: claim)
        #expect(apiKey.status == 403)
        #expect(apiKey.json["reason"] as? String == "INVALID_WORKER_TOKEN")

        let ok = try await Self.post(server, "/claim", token: token, json: claim)
        #expect(ok.status == 204)

        // Every listed worker route exists and wants a worker token.
        for route in Routes.workerRoutes {
            let path = route.path.replacingOccurrences(of: "{task_id}", with: UUID().uuidString.lowercased()).replacingOccurrences(
                of: "{name}", with: "image")
            let r = try await HTTP.request(
                HTTPMethod(rawValue: route.method.uppercased()), server.baseURL + path, headers: [("Authorization", "Bearer \(key)")],
                body: Data("{}".utf8))
            #expect(r.status == 403 && r.json["reason"] as? String == "INVALID_WORKER_TOKEN", "\(route): \(r.status) \(r.text)")
        }

        // A worker token is no API key.
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let submit = try await HTTP.submit(server.baseURL, key: token, json: ["image": png, "prompt": "zoom in"])
        #expect(submit.status == 403)
        #expect(submit.json["reason"] as? String == "INVALID_API_KEY")

        // A revoked token is refused at once.
        let list = try await ServerProcess.cli(["worker-token", "list", "--data-dir", server.dataDir.path])
        #expect(list.status == 0 && list.stdout.contains("box") && list.stdout.contains(String(token.prefix(10))), "\(list.stdout)")
        let revoke = try await ServerProcess.cli(["worker-token", "revoke", String(token.prefix(10)), "--data-dir", server.dataDir.path])
        #expect(revoke.status == 0, "\(revoke.stdout)")
        let revoked = try await Self.post(server, "/claim", token: token, json: claim)
        #expect(revoked.status == 403)
        // The real worker with a revoked token stops at once and says why.
        let worker = try await Tools.run(
            ServerProcess.binary.path, ["worker", "--server", server.baseURL, "--worker-token", token, "--log-level", "error"], direct: true)
        #expect(worker.status != 0)
        #expect(worker.output.contains("INVALID_WORKER_TOKEN"), "\(worker.output)")
        await server.terminate()
    }

    // MARK: Claim

    @Test func claimWaitsThenAnswers204OrWakesOnSubmit() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // The claim's fallback poll is slower than the test's whole wait: only the submit's wake-up can deliver.
        try await server.start(["--claim-poll-seconds", "120"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)

        let empty = try await Self.post(server, "/claim", token: token, json: ["worker_id": "w", "wait_seconds": 1])
        #expect(empty.status == 204)
        #expect(empty.body.isEmpty)

        let tooLong = try await Self.post(server, "/claim", token: token, json: ["worker_id": "w", "wait_seconds": 31])
        #expect(tooLong.status == 400)
        #expect((tooLong.json["metadata"] as? [String: String])?["field"] == "wait_seconds")

        // A waiting claim gets a task submitted while it waits.
        async let waiting = Self.post(server, "/claim", token: token, json: ["worker_id": "w", "engine": "motion", "wait_seconds": 30])
        try await Task.sleep(for: .milliseconds(300))
        let png = try await Fixtures.image(width: 400, height: 300, format: "png")
        let submitted = try await HTTP.submit(
            server.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "pan left", "duration": 3, "seed": 42])
        let submittedAt = ContinuousClock.now
        let id = try #require(submitted.json["task_id"] as? String)
        let claimed = try await waiting
        // Woken by the submit, not found by a poll (none comes within 120 s); the bound allows a starved machine.
        #expect(ContinuousClock.now - submittedAt < .seconds(10))
        #expect(claimed.status == 200, "\(claimed.text)")
        let task = try #require(claimed.json["task"] as? [String: Any])
        #expect(task["task_id"] as? String == id)
        let request = try #require(task["request"] as? [String: Any])
        #expect(request["prompt"] as? String == "pan left")
        #expect(request["duration"] as? Int == 3)
        #expect(request["seed"] as? Int == 42)
        #expect(request["frame_count"] as? Int == 72)
        #expect(request["negative_prompt"] is NSNull)
        let lease = try #require(claimed.json["lease"] as? [String: Any])
        #expect(lease["attempt"] as? Int == 1)
        #expect(lease["task_id"] as? String == id)

        // The input downloads with the lease, byte for byte; without it, no.
        let inputs = try #require(claimed.json["inputs"] as? [String: Any])
        #expect(inputs["end_image"] is NSNull)
        let imageURL = try #require((inputs["image"] as? [String: Any])?["url"] as? String)
        let image = try await HTTP.get(server.baseURL + imageURL, key: token)
        #expect(image.status == 200)
        #expect(image.body == png)
        #expect(image.headers.first(name: "content-type") == "image/png")
        let noLease = try await HTTP.get(server.baseURL + "\(Self.base)/tasks/\(id)/inputs/image", key: token)
        #expect(noLease.status == 400)
        let otherLease = try await HTTP.get(server.baseURL + "\(Self.base)/tasks/\(id)/inputs/image?lease_id=\(UUID().uuidString)", key: token)
        #expect(otherLease.status == 409)

        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((result.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING")
        await server.terminate()
    }

    // MARK: Leases and fencing

    @Test func lostLeaseAnswers409AndAZombieCannotCompleteTheRescuedTask() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--lease-seconds", "2", "--rescue-seconds", "1"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let id = try await Self.submit(server, key: key)

        // A lease long enough that a starved test process cannot lose it before its first heartbeat; that heartbeat
        // then shortens it to 2 s, and no more come.
        let zombie = try await Self.claim(server, token: token, worker: "zombie", leaseSeconds: 60)
        let shortened = try await Self.post(
            server, "/tasks/\(id)/heartbeat", token: token,
            json: [
                "lease_id": zombie.leaseID, "progress_percent": 10, "eta_seconds": 5, "lease_seconds": 2,
            ])
        #expect(shortened.status == 200, "\(shortened.text)")
        // No more heartbeats: the rescuer puts the task back once the 2 s lease ran out.
        try await Self.waitForStatus(server, key: key, id: id, "TASK_STATUS_QUEUED")
        let lost = try await Self.heartbeat(server, token: token, id: id, lease: zombie)
        #expect(lost.status == 409)
        #expect(lost.json["reason"] as? String == "LEASE_LOST")
        Self.expectErrorShape(lost)

        let live = try await Self.claim(server, token: token, worker: "live", leaseSeconds: 60)
        #expect(live.attempt == 2)
        let mp4 = try await Self.makeMP4(seconds: 1)
        let liveUpload = try await Self.upload(server, token: token, id: id, lease: live.leaseID, body: mp4)
        #expect(liveUpload.status == 200, "\(liveUpload.text)")
        #expect(liveUpload.json["status"] as? String == "TASK_STATUS_SUCCEED")

        // The zombie's late result, a repeated completion and a late failure change nothing.
        let other = try await Self.makeMP4(seconds: 2)
        let late = try await Self.upload(server, token: token, id: id, lease: zombie.leaseID, body: other)
        #expect(late.status == 409)
        #expect(late.json["reason"] as? String == "LEASE_LOST")
        #expect(try await Self.upload(server, token: token, id: id, lease: live.leaseID, body: other).status == 409)
        #expect(
            try await Self.post(server, "/tasks/\(id)/fail", token: token, json: ["lease_id": zombie.leaseID, "reason": "late", "retryable": false])
                .status == 409)

        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")
        let videos = try #require(done["videos"] as? [[String: Any]])
        #expect(videos.count == 1)
        let url = try #require(videos.first?["video_url"] as? String)
        #expect(try await HTTP.get(url).body == mp4)
        let stored = server.storedResults(of: id)
        #expect(stored.count == 1, "\(stored)")
        await server.terminate()
    }

    @Test func failAndReleaseFollowTheLeaseRules() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--max-attempts", "3"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let id = try await Self.submit(server, key: key)

        // Release: back to the queue, attempt not counted.
        let first = try await Self.claim(server, token: token, worker: "w", leaseSeconds: 60)
        let released = try await Self.post(server, "/tasks/\(id)/release", token: token, json: ["lease_id": first.leaseID])
        #expect(released.status == 200)
        #expect(released.json["status"] as? String == "TASK_STATUS_QUEUED")
        // Retryable failure: back to the queue, attempt counted.
        let second = try await Self.claim(server, token: token, worker: "w", leaseSeconds: 60)
        #expect(second.attempt == 1)
        let retry = try await Self.post(
            server, "/tasks/\(id)/fail", token: token, json: ["lease_id": second.leaseID, "reason": "GPU busy", "retryable": true])
        #expect(retry.status == 200)
        #expect(retry.json["status"] as? String == "TASK_STATUS_QUEUED")
        // Final failure: FAILED with the worker's reason for the caller to see.
        let third = try await Self.claim(server, token: token, worker: "w", leaseSeconds: 60)
        #expect(third.attempt == 2)
        let reason = "CUDA out of memory: the model needs 24 GB"
        let failed = try await Self.post(
            server, "/tasks/\(id)/fail", token: token, json: ["lease_id": third.leaseID, "reason": reason, "retryable": false])
        #expect(failed.status == 200)
        #expect(failed.json["status"] as? String == "TASK_STATUS_FAILED")
        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        let task = try #require(result.json["task"] as? [String: Any])
        #expect(task["status"] as? String == "TASK_STATUS_FAILED")
        #expect(task["reason"] as? String == reason)
        #expect((result.json["videos"] as? [Any])?.isEmpty == true)

        let again = try await Self.post(
            server, "/tasks/\(id)/fail", token: token, json: ["lease_id": third.leaseID, "reason": reason, "retryable": false])
        #expect(again.status == 409)
        let noReason = try await Self.post(
            server, "/tasks/\(id)/fail", token: token, json: ["lease_id": third.leaseID, "reason": " ", "retryable": false])
        #expect(noReason.status == 400)
        #expect((noReason.json["metadata"] as? [String: String])?["field"] == "reason")
        await server.terminate()
    }

    @Test func anotherTokensWorkerCannotTouchTheLease() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let mine = try await Self.createToken(server, name: "mine")
        let theirs = try await Self.createToken(server, name: "theirs")
        let id = try await Self.submit(server, key: key)
        let lease = try await Self.claim(server, token: mine, worker: "w", leaseSeconds: 60)
        #expect(try await Self.heartbeat(server, token: theirs, id: id, lease: lease).status == 409)
        #expect(try await Self.post(server, "/tasks/\(id)/release", token: theirs, json: ["lease_id": lease.leaseID]).status == 409)
        // The same worker id under another token is another worker: its orphan sweep leaves this task alone.
        let sweep = try await Self.post(server, "/orphans", token: theirs, json: ["worker_id": "w"])
        #expect(sweep.status == 200)
        #expect((sweep.json["requeued"] as? [String])?.isEmpty == true)
        #expect(try await Self.heartbeat(server, token: mine, id: id, lease: lease).status == 200)
        // The owner's own sweep (a restarted worker) requeues it.
        let own = try await Self.post(server, "/orphans", token: mine, json: ["worker_id": "w"])
        #expect((own.json["requeued"] as? [String]) == [id])
        await server.terminate()
    }

    // MARK: Result upload

    @Test func uploadsAreCappedAndMustBeMP4() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--max-result-bytes", "1000000"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let id = try await Self.submit(server, key: key)
        let lease = try await Self.claim(server, token: token, worker: "w", leaseSeconds: 60)

        // Over the cap, announced by Content-Length and streamed without one (chunked).
        var big = try await Self.makeMP4(seconds: 1).prefix(12)
        big.append(Data(repeating: 0x42, count: 1_200_000))
        let announced = try await Self.upload(server, token: token, id: id, lease: lease.leaseID, body: big)
        #expect(announced.status == 413)
        #expect(announced.json["reason"] as? String == "RESULT_TOO_LARGE")
        Self.expectErrorShape(announced)
        let streamed = try await Self.upload(server, token: token, id: id, lease: lease.leaseID, body: big, chunked: true)
        #expect(streamed.status == 413)

        let notMP4 = try await Self.upload(
            server, token: token, id: id, lease: lease.leaseID, body: try await Fixtures.image(width: 320, height: 320, format: "png"))
        #expect(notMP4.status == 400)
        #expect(notMP4.json["reason"] as? String == "INVALID_RESULT")
        let empty = try await Self.upload(server, token: token, id: id, lease: lease.leaseID, body: Data())
        #expect(empty.status == 400)

        // Refused uploads leave the lease intact and store nothing; a good one then completes the task.
        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((result.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING")
        #expect(server.storedResults(of: id).isEmpty)
        let good = try await Self.upload(server, token: token, id: id, lease: lease.leaseID, body: try await Self.makeMP4(seconds: 1))
        #expect(good.status == 200, "\(good.text)")
        await server.terminate()
    }

    @Test func aTrickledUploadIsCutOffAndTheLeaseKeepsItsTask() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--upload-timeout", "2"], workers: 0)
        let key = try #require(server.devKey)
        let token = try await Self.createToken(server)
        let id = try await Self.submit(server, key: key)
        let lease = try await Self.claim(server, token: token, worker: "w", leaseSeconds: 120)
        let mp4 = try await Self.makeMP4(seconds: 1)

        // A real MP4 sent 256 bytes every 300 ms: never idle, never done in 2 s.
        var request = HTTPClientRequest(url: server.baseURL + Self.base + "/tasks/\(id)/result?lease_id=\(lease.leaseID)")
        request.method = .PUT
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "video/mp4")
        let trickle = AsyncStream<ByteBuffer> { continuation in
            let task = Task {
                for offset in stride(from: 0, to: mp4.count, by: 256) {
                    if Task.isCancelled { break }
                    continuation.yield(ByteBuffer(bytes: mp4[offset..<min(offset + 256, mp4.count)]))
                    try? await Task.sleep(for: .milliseconds(300))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
        request.body = .stream(trickle, length: .unknown)
        let started = ContinuousClock.now
        var status: Int?
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            status = Int(response.status.code)
        } catch {
            // The server may close the connection while the client is still sending: also a cut-off.
        }
        #expect(status == nil || status == 408, "\(String(describing: status))")
        #expect(ContinuousClock.now - started < .seconds(55), "the upload was not cut off")

        // Nothing was stored, the lease still holds the task, and a proper upload completes it.
        #expect(server.storedResults(of: id).isEmpty)
        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((result.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING")
        let good = try await Self.upload(server, token: token, id: id, lease: lease.leaseID, body: mp4)
        #expect(good.status == 200, "\(good.text)")
        await server.terminate()
    }

    // MARK: Helpers

    struct Lease {
        var leaseID: String
        var attempt: Int
    }

    /// `kinema worker-token create`; the secret is the last line.
    static func createToken(_ server: ServerProcess, name: String = "test") async throws -> String {
        let r = try await ServerProcess.cli(["worker-token", "create", "--name", name, "--data-dir", server.dataDir.path])
        guard r.status == 0, let last = r.stdout.split(separator: "\n").last.map(String.init), last.hasPrefix("kwt_"), last.count == 47 else {
            throw TestFailure("worker-token create failed: \(r.stdout)")
        }
        return last
    }

    static func submit(_ server: ServerProcess, key: String) async throws -> String {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3])
        guard r.status == 200, let id = r.json["task_id"] as? String else { throw TestFailure("submit failed: \(r.text)") }
        return id
    }

    static func post(_ server: ServerProcess, _ path: String, token: String?, json: [String: Any]) async throws -> HTTPResult {
        var headers = [("Content-Type", "application/json")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        return try await HTTP.request(.POST, server.baseURL + base + path, headers: headers, body: try JSONSerialization.data(withJSONObject: json))
    }

    static func claim(_ server: ServerProcess, token: String, worker: String, leaseSeconds: Int) async throws -> Lease {
        let r = try await post(server, "/claim", token: token, json: ["worker_id": worker, "lease_seconds": leaseSeconds, "wait_seconds": 5])
        guard r.status == 200, let lease = r.json["lease"] as? [String: Any], let id = lease["lease_id"] as? String,
            let attempt = lease["attempt"] as? Int
        else {
            throw TestFailure("claim failed: \(r.status) \(r.text)")
        }
        return Lease(leaseID: id, attempt: attempt)
    }

    /// An API-only node (no workers of its own), its dev key, a worker token, and one submitted task claimed under
    /// that token by `worker` for 60 s: where most protocol tests start. The caller removes the server's data.
    struct ClaimedTask {
        let server: ServerProcess
        let key: String
        let token: String
        let id: String
        let lease: Lease

        var parts: (ServerProcess, String, String, String, Lease) { (server, key, token, id, lease) }
    }

    static func claimedTask(_ options: [String] = [], worker: String = "gpu-1", logLevel: String = "warning") async throws -> ClaimedTask {
        let server = try ServerProcess()
        do {
            try await server.start(options, workers: 0, logLevel: logLevel)
            let key = try #require(server.devKey)
            let token = try await createToken(server)
            let id = try await submit(server, key: key)
            let lease = try await claim(server, token: token, worker: worker, leaseSeconds: 60)
            return ClaimedTask(server: server, key: key, token: token, id: id, lease: lease)
        } catch {
            await server.terminate()
            server.removeData()
            throw error
        }
    }

    static func heartbeat(_ server: ServerProcess, token: String, id: String, lease: Lease) async throws -> HTTPResult {
        try await post(server, "/tasks/\(id)/heartbeat", token: token, json: ["lease_id": lease.leaseID, "progress_percent": 10, "eta_seconds": 5])
    }

    static func upload(
        _ server: ServerProcess, token: String, id: String, lease: String, body: Data, chunked: Bool = false
    ) async throws -> HTTPResult {
        var request = HTTPClientRequest(url: server.baseURL + base + "/tasks/\(id)/result?lease_id=\(lease)")
        request.method = .PUT
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        request.headers.add(name: "Content-Type", value: "video/mp4")
        if chunked {
            // Several chunks with no Content-Length: only the streaming cap can stop it.
            let chunks = stride(from: 0, to: body.count, by: 64 * 1024).map { ByteBuffer(bytes: body[$0..<min($0 + 64 * 1024, body.count)]) }
            let stream = AsyncStream<ByteBuffer> { continuation in
                for chunk in chunks { continuation.yield(chunk) }
                continuation.finish()
            }
            request.body = .stream(stream, length: .unknown)
        } else {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 1024 * 1024)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: Data(buffer: buffer))
    }

    static func waitForStatus(_ server: ServerProcess, key: String, id: String, _ status: String) async throws {
        let deadline = ContinuousClock.now + .seconds(90)
        var last = "no answer"
        while ContinuousClock.now < deadline {
            let r = try await HTTP.result(server.baseURL, key: key, id: id)
            let seen = (r.json["task"] as? [String: Any])?["status"] as? String
            if seen == status { return }
            last = "\(r.status) \(r.text.prefix(600))"
            if let seen, ["TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"].contains(seen) {
                throw TestFailure("task \(id) ended before it was seen in \(status): \(last)")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("task \(id) never reached \(status) within 90 s; last answer: \(last)")
    }

    /// A small real MP4 made by the ffmpeg CLI.
    static func makeMP4(seconds: Int) async throws -> Data {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("upload-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: url) }
        let r = try await Tools.run(
            "ffmpeg",
            ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24", "-t", String(seconds), "-pix_fmt", "yuv420p", "-y", url.path])
        guard r.status == 0 else { throw TestFailure("ffmpeg failed: \(r.output)") }
        return try Data(contentsOf: url)
    }

    /// The lease owners of a task's attempts, read from the server's SQLite file with the sqlite3 CLI.
    static func attemptsOwners(_ server: ServerProcess, taskID: String) async throws -> [String] {
        let db = server.dataDir.appendingPathComponent("kinema.sqlite").path
        let r = try await Tools.run("sqlite3", ["-readonly", db, "SELECT worker_id FROM task_attempts WHERE lower(task_id) = lower('\(taskID)')"])
        guard r.status == 0 else { throw TestFailure("sqlite3 failed: \(r.output)") }
        return r.output.split(separator: "\n").map(String.init)
    }

    static func expectErrorShape(_ r: HTTPResult, sourceLocation: SourceLocation = #_sourceLocation) {
        let json = r.json
        #expect(json["code"] as? Int == r.status, sourceLocation: sourceLocation)
        #expect((json["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        #expect(json["metadata"] is [String: Any], sourceLocation: sourceLocation)
    }
}

/// A `kinema worker` process; its output is kept for failure messages. Nothing here blocks the cooperative pool.
final class RemoteWorkerProcess: @unchecked Sendable {
    // SAFETY: used by one test, sequentially; `output` is itself thread-safe.
    let process: Process
    let output = OutputBuffer()

    private init(process: Process) {
        self.process = process
    }

    /// Starts `kinema worker ARGS` and waits (bounded) for its start line.
    static func start(_ args: [String], environment: [String: String] = [:]) async throws -> RemoteWorkerProcess {
        let p = Process()
        p.executableURL = ServerProcess.binary
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        p.arguments = ["worker", "--log-level", "info", "--log-format", "text"] + args
        let worker = RemoteWorkerProcess(process: p)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        worker.output.drain(out.fileHandleForReading)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, p.isRunning {
            if worker.log.contains("pulling tasks from") { return worker }
            try await Task.sleep(for: .milliseconds(20))
        }
        worker.kill()
        throw TestFailure("kinema worker did not start: \(worker.log)")
    }

    var log: String { output.text }

    /// SIGTERM and wait (bounded) for a graceful exit; `nil` when it had to be killed.
    func terminate(timeout: Duration = .seconds(60)) async -> Int32? {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGTERM) }
        await ServerProcess.waitForExit(process, timeout: timeout)
        if process.isRunning {
            kill()
            return nil
        }
        return process.terminationStatus
    }

    /// SIGKILL, for cleanup on any path (the kernel reaps it; nothing waits here).
    func kill() {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }
}
