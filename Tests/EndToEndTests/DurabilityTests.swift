import Foundation
import Testing
import NIOHTTP1

/// Crashes and restarts: what was accepted is never lost, and finishes exactly once.
@Suite(.serialized) struct Durability {
    @Test func killedServerFinishesQueuedAndRunningTasksAfterRestart() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // A lease far longer than the test waits: only the restart's own requeue of its orphans (at once, by its
        // stable node id) can finish the task that was running at the kill; the lease rescuer would take 10 minutes.
        let options = ["--lease-seconds", "600"]
        try await server.start(options, workers: 1)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        var ids: [String] = []
        for i in 0..<4 {
            let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "pan right, shot \(i)", "duration": 5])
            #expect(r.status == 200)
            ids.append(try #require(r.json["task_id"] as? String))
        }
        // Wait (bounded) until one task is running, then kill -9 mid-render.
        let deadline = ContinuousClock.now + .seconds(90)
        var sawProcessing = false
        while ContinuousClock.now < deadline, !sawProcessing {
            for id in ids {
                let r = try await HTTP.result(server.baseURL, key: key, id: id)
                if (r.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING" { sawProcessing = true }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(sawProcessing)
        await server.kill9()

        // Same data dir, new process: the orphaned task is requeued at once (stable node id) and all finish.
        try await server.start(options, workers: 1)
        #expect(server.devKey == nil) // the dev key is shown only on the first start
        for id in ids {
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(240))
            let task = try #require(done["task"] as? [String: Any])
            #expect(task["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect((done["videos"] as? [Any])?.count == 1)
        }
        // Exactly one result per task on disk: a killed attempt left no second result behind.
        for id in ids {
            let files = server.storedResults(of: id)
            #expect(files.filter { $0.hasSuffix(".mp4") }.count == 1, "\(id): \(files)")
        }
        await server.terminate()
    }

    /// Submits `count` tasks and waits (bounded) until the first is rendering.
    static func submitAndWaitForARender(_ server: ServerProcess, key: String, count: Int, duration: Int) async throws -> [String] {
        let png = try await Fixtures.image(width: 1280, height: 720, format: "png").base64EncodedString()
        var ids: [String] = []
        for _ in 0..<count {
            let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "zoom out", "duration": duration])
            ids.append(try #require(r.json["task_id"] as? String))
        }
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            let r = try await HTTP.result(server.baseURL, key: key, id: ids[0])
            if (r.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING" { return ids }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("the first task never started rendering")
    }

    /// A task's row as the server's SQLite file holds it: status and attempt.
    static func row(_ server: ServerProcess, _ id: String) async throws -> (status: String, attempt: Int) {
        let db = server.dataDir.appendingPathComponent("kinema.sqlite").path
        let r = try await Tools.run("sqlite3", ["-readonly", db, "SELECT status, attempt FROM tasks WHERE lower(id) = lower('\(id)')"])
        let parts = r.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|")
        guard r.status == 0, parts.count == 2, let attempt = Int(parts[1]) else { throw TestFailure("sqlite3: \(r.output)") }
        return (String(parts[0]), attempt)
    }

    @Test func sigtermDrainsRefusingNewWorkWhileTheRunningRenderFinishes() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--shutdown-grace", "120"], workers: 1)
        let key = try #require(server.devKey)
        let token = try await RemoteWorkerTests.createToken(server)
        let ids = try await Self.submitAndWaitForARender(server, key: key, count: 2, duration: 15)
        let base = server.baseURL
        let process = try #require(server.process)
        send(SIGTERM, to: process)
        // While the render runs out: not ready (first), then submits refused with the contract's 503, and remote
        // workers get no new task from this node (503 on claim, so they go to another node). Claims are tried only
        // once draining is visible: one sent before the signal was handled would rightly get the queued task.
        var sawNotReady = false, sawRefusedSubmit = false, sawRefusedClaim = false
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !sawNotReady, process.isRunning {
            if let r = try? await HTTP.get(base + "/readyz"), r.status == 503 { sawNotReady = true }
            try await Task.sleep(for: .milliseconds(20))
        }
        if sawNotReady, process.isRunning {
            if let r = try? await HTTP.submit(base, key: key, json: ["image": "AAAA", "prompt": "x"]), r.status == 503 {
                #expect(r.json["reason"] as? String == "SERVICE_UNAVAILABLE")
                #expect(r.headers.first(name: "Retry-After") != nil)
                sawRefusedSubmit = true
            }
            if let r = try? await RemoteWorkerTests.post(server, "/claim", token: token, json: ["worker_id": "w", "wait_seconds": 0]), r.status == 503
            {
                #expect(r.headers.first(name: "Retry-After") != nil)
                sawRefusedClaim = true
            }
        }
        #expect(sawNotReady)
        #expect(sawRefusedSubmit)
        #expect(sawRefusedClaim)
        await ServerProcess.waitForExit(process, timeout: .seconds(150))
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        // The render in flight finished within the grace; the queued one was never started.
        #expect(try await Self.row(server, ids[0]).status == "succeeded")
        #expect(try await Self.row(server, ids[1]) == ("queued", 0))
        try await server.start(workers: 1)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: ids[1])
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        await server.terminate()
    }

    @Test func aRenderStillRunningWhenTheGraceEndsIsReleasedWithoutCountingAnAttempt() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--shutdown-grace", "1"], workers: 1)
        let key = try #require(server.devKey)
        let ids = try await Self.submitAndWaitForARender(server, key: key, count: 1, duration: 15)
        let started = ContinuousClock.now
        let status = await server.terminate()
        #expect(status == 0)
        // A 15 s 720p clip takes several seconds; the 1 s grace ended it long before.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(try await Self.row(server, ids[0]) == ("queued", 0))
        try await server.start(workers: 1)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: ids[0])
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        await server.terminate()
    }
}

/// Image URLs are fetched at submit time through the safe fetcher.
@Suite(.serialized) struct URLInputs {
    /// A loopback static file server (Python's http.server on a port it picked itself), stopped by the test.
    func withFileServer(_ files: [String: Data], _ body: (String) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, data) in files { try data.write(to: dir.appendingPathComponent(name)) }
        let server = try await FileServer.start(directory: dir)
        defer { server.stop() }
        try await body("http://127.0.0.1:\(server.port)")
    }

    @Test func loopbackURLIsRefusedByDefaultAndFetchedWhenAllowed() async throws {
        let png = try await Fixtures.image(width: 640, height: 360, format: "png")
        try await withFileServer(["cat.png": png, "notes.txt": Data("hello".utf8)]) { files in
            let closed = try ServerProcess()
            defer { closed.removeData() }
            try await closed.start(workers: 0)
            let refused = try await HTTP.submit(closed.baseURL, key: try #require(closed.devKey), json: ["image": files + "/cat.png", "prompt": "a"])
            #expect(refused.status == 400)
            #expect(refused.json["reason"] as? String == "IMAGE_FETCH_FAILED")
            #expect((refused.json["message"] as? String ?? "").contains("127.0.0.1"))
            await closed.terminate()

            let open = try ServerProcess()
            defer { open.removeData() }
            try await open.start(["--allow-fetch-from", "127.0.0.1/32"], workers: 1)
            let key = try #require(open.devKey)
            let notImage = try await HTTP.submit(open.baseURL, key: key, json: ["image": files + "/notes.txt", "prompt": "a"])
            #expect(notImage.json["reason"] as? String == "INVALID_IMAGE_FORMAT")
            let missing = try await HTTP.submit(open.baseURL, key: key, json: ["image": files + "/missing.png", "prompt": "a"])
            #expect(missing.json["reason"] as? String == "IMAGE_FETCH_FAILED")
            let ok = try await HTTP.submit(open.baseURL, key: key, json: ["image": files + "/cat.png", "prompt": "zoom in", "duration": 3])
            #expect(ok.status == 200, "\(ok.text)")
            let id = try #require(ok.json["task_id"] as? String)
            // The input was stored at submit: the task no longer depends on the URL.
            #expect(open.storedInputs() == ["\(id.prefix(2))/\(id).png"])
            let done = try await HTTP.waitForTerminal(open.baseURL, key: key, id: id)
            #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            await open.terminate()
        }
    }
}
