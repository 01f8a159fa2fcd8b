import Foundation
import NIOHTTP1
import Testing

/// `POST /v3/async/task-cancel` (ext) through the real server: queued, running in process, running on a remote worker,
/// running at a hosted provider (fal is told), finished, another tenant's, and bad bodies.
@Suite struct CancelTests {
    typealias R = RemoteWorkerTests

    static func cancel(_ server: ServerProcess, key: String?, body: Data) async throws -> HTTPResult {
        var headers = [("Content-Type", "application/json")]
        if let key { headers.append(("Authorization", "Bearer \(key)")) }
        return try await HTTP.request(.POST, server.baseURL + "/v3/async/task-cancel", headers: headers, body: body)
    }

    static func cancel(_ server: ServerProcess, key: String, id: String) async throws -> HTTPResult {
        try await cancel(server, key: key, body: try JSONSerialization.data(withJSONObject: ["task_id": id]))
    }

    static func task(_ r: HTTPResult) -> [String: Any] { r.json["task"] as? [String: Any] ?? [:] }

    @Test func aQueuedTaskIsCanceledAtOnceAndAFinishedOneIsReturnedUnchanged() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let id = try #require(try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "pan"]).json["task_id"] as? String)

        let canceled = try await Self.cancel(server, key: key, id: id)
        #expect(canceled.status == 200, "\(canceled.text)")
        #expect(Self.task(canceled)["status"] as? String == "TASK_STATUS_FAILED")
        #expect(Self.task(canceled)["reason"] as? String == "canceled")
        #expect(Self.task(canceled)["task_id"] as? String == id)
        #expect((canceled.json["videos"] as? [Any])?.isEmpty == true)
        let polled = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect(Self.task(polled)["status"] as? String == "TASK_STATUS_FAILED")
        #expect(Self.task(polled)["reason"] as? String == "canceled")
        // Again: the same body, nothing changes.
        let again = try await Self.cancel(server, key: key, id: id)
        #expect(again.status == 200)
        #expect(Self.task(again)["reason"] as? String == "canceled")

        // Another tenant's task, an unknown one, and bad bodies.
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", "other", "--data-dir", server.dataDir.path])
        let otherKey = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        let mine = try #require(try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "pan"]).json["task_id"] as? String)
        let foreign = try await Self.cancel(server, key: otherKey, id: mine)
        #expect(foreign.status == 404)
        #expect(foreign.json["reason"] as? String == "TASK_NOT_FOUND")
        #expect(Self.task(try await HTTP.result(server.baseURL, key: key, id: mine))["status"] as? String == "TASK_STATUS_QUEUED")
        #expect(try await Self.cancel(server, key: key, id: UUID().uuidString.lowercased()).status == 404)
        for body in ["", "[]", "{\"task_id\": 5}", "{\"task_id\": \"nope\"}", "{}"] {
            let r = try await Self.cancel(server, key: key, body: Data(body.utf8))
            #expect(r.status == 400, "\(body): \(r.text)")
            #expect((r.json["metadata"] as? [String: String])?["field"] == "task_id", "\(body): \(r.text)")
        }
        #expect(try await Self.cancel(server, key: nil, body: Data("{}".utf8)).status == 400)
        #expect(try await Self.cancel(server, key: key, body: Data(repeating: 0x20, count: 5000)).status == 413)
        await server.terminate()
    }

    @Test func aRunningRenderStopsAndStoresNothing() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 1, logLevel: "info")
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 1280, height: 720, format: "png").base64EncodedString()
        // A 15 s render takes about 2 s on an idle machine; under a loaded suite the cancel can arrive after it ended
        // (the finished task is then returned unchanged, as documented). Up to four tasks, one at a time, until a
        // cancel lands while its render runs; the stand-in provider test below holds a render open deterministically.
        var stoppedOne = false
        for round in 1...4 where !stoppedOne {
            let id = try #require(
                try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "slow push in", "duration": 15])
                    .json["task_id"] as? String)
            let deadline = ContinuousClock.now + .seconds(60)
            while server.log.components(separatedBy: "render started").count <= round, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            let canceled = try await Self.cancel(server, key: key, id: id)
            #expect(canceled.status == 200, "\(canceled.text)")
            if Self.task(canceled)["status"] as? String == "TASK_STATUS_SUCCEED" {
                // Outran: wait for nothing more, try a fresh task.
                continue
            }
            #expect(Self.task(canceled)["reason"] as? String == "canceled", "\(canceled.text)")
            let progress = Self.task(canceled)["progress_percent"] as? Int
            // The cancel reached the node that renders: the render stops at once (not at its next heartbeat, which
            // would log without "stopped at once"); no result is stored, and the task stays canceled.
            let stopped = ContinuousClock.now + .seconds(30)
            while !server.log.contains("task canceled during render"), ContinuousClock.now < stopped {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(server.log.contains("task canceled during render; stopped at once"), "\(server.log)")
            let after = Self.task(try await HTTP.result(server.baseURL, key: key, id: id))
            #expect(after["status"] as? String == "TASK_STATUS_FAILED")
            #expect(after["progress_percent"] as? Int == progress)
            #expect(server.storedResults(of: id).isEmpty)
            stoppedOne = true
        }
        #expect(stoppedOne, "every render finished before its cancel arrived: \(server.log)")
        await server.terminate()
    }

    /// Canceling a task that already succeeded changes nothing: 200 with its body (status, result and all), and the
    /// video stays downloadable.
    @Test func aFinishedTaskIsAnsweredUnchanged() async throws {
        let (server, key, token, id, lease) = try await R.claimedTask().parts
        defer { server.removeData() }
        let mp4 = try await R.makeMP4(seconds: 1)
        #expect(try await R.upload(server, token: token, id: id, lease: lease.leaseID, body: mp4).status == 200)
        let before = try await HTTP.result(server.baseURL, key: key, id: id)
        let answer = try await Self.cancel(server, key: key, id: id)
        #expect(answer.status == 200, "\(answer.text)")
        #expect(Self.task(answer)["status"] as? String == "TASK_STATUS_SUCCEED")
        #expect(Self.task(answer)["reason"] as? String == "")
        let after = try await HTTP.result(server.baseURL, key: key, id: id)
        // Unchanged but for the freshly signed link.
        for body in [answer, after] {
            #expect(NSDictionary(dictionary: Self.task(body)) == NSDictionary(dictionary: Self.task(before)))
            #expect(
                NSDictionary(dictionary: body.json["extra"] as? [String: Any] ?? [:])
                    == NSDictionary(dictionary: before.json["extra"] as? [String: Any] ?? [:]))
        }
        let link = try #require((answer.json["videos"] as? [[String: Any]])?.first?["video_url"] as? String)
        #expect(try await HTTP.get(link).body == mp4)
        await server.terminate()
    }

    @Test func aRemoteWorkerLearnsItFromItsNextHeartbeat() async throws {
        let (server, key, token, id, lease) = try await R.claimedTask().parts
        defer { server.removeData() }
        #expect(try await R.heartbeat(server, token: token, id: id, lease: lease).status == 200)
        _ = try await Self.cancel(server, key: key, id: id)
        let refused = try await R.heartbeat(server, token: token, id: id, lease: lease)
        #expect(refused.status == 409, "\(refused.text)")
        #expect(refused.json["reason"] as? String == "LEASE_LOST", "\(refused.text)")
        // A real MP4 (so only the lease can refuse it): 409 LEASE_LOST, and nothing is stored.
        let upload = try await R.upload(server, token: token, id: id, lease: lease.leaseID, body: try await R.makeMP4(seconds: 1))
        #expect(upload.status == 409, "\(upload.text)")
        #expect(upload.json["reason"] as? String == "LEASE_LOST", "\(upload.text)")
        #expect(server.storedResults(of: id).isEmpty)
        #expect(Self.task(try await HTTP.result(server.baseURL, key: key, id: id))["reason"] as? String == "canceled")
        await server.terminate()
    }

    @Test func aTaskRunningAtFalIsCanceledThere() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await UpstreamGatewayTests.withGateway(.fal, logLevel: "info", steer: { $0.steer { $0.holdNewTasks = true } }) { standIn, server, key in
            let id = try await UpstreamGatewayTests.submit(server, key, ["image": png, "prompt": "drift"])
            let deadline = ContinuousClock.now + .seconds(30)
            while standIn.polls.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            _ = try await Self.cancel(server, key: key, id: id)
            let upstreamID = try #require(standIn.tasks.first?.id)
            let told = ContinuousClock.now + .seconds(30)
            while !standIn.requests.contains(where: { $0.method == "PUT" }), ContinuousClock.now < told {
                try await Task.sleep(for: .milliseconds(20))
            }
            // fal's own cancel URL, as it returned it.
            #expect(standIn.requests.filter { $0.method == "PUT" }.map(\.uri) == ["/elsewhere/requests/\(upstreamID)/cancel"])
            #expect(Self.task(try await HTTP.result(server.baseURL, key: key, id: id))["reason"] as? String == "canceled")
            // The provider held the task open, so the cancel surely arrived during the render: it stopped at once.
            let logged = ContinuousClock.now + .seconds(10)
            while !server.log.contains("task canceled during render"), ContinuousClock.now < logged {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(server.log.contains("task canceled during render; stopped at once"), "\(server.log)")
        }
    }
}
