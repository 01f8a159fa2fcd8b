import Foundation
import Testing

/// Crashes and restarts: what was accepted is never lost, and finishes exactly once.
@Suite(.serialized) struct Durability {
    @Test func killedServerFinishesQueuedAndRunningTasksAfterRestart() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 1)
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
        try await server.start(workers: 1)
        #expect(server.devKey == nil) // the dev key is shown only on the first start
        for id in ids {
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
            let task = try #require(done["task"] as? [String: Any])
            #expect(task["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect((done["videos"] as? [Any])?.count == 1)
        }
        // Exactly one result per task on disk: a killed attempt left no second result behind.
        let results = server.dataDir.appendingPathComponent("blobs/results")
        for id in ids {
            let files = try FileManager.default.contentsOfDirectory(atPath: results.appendingPathComponent(id).path)
            #expect(files.filter { $0.hasSuffix(".mp4") }.count == 1, "\(id): \(files)")
        }
        await server.terminate()
    }

    @Test func sigtermLetsTheRunningRenderFinishAndRestartDoesTheRest() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--shutdown-grace", "60"], workers: 1)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        var ids: [String] = []
        for _ in 0..<2 {
            let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "zoom out", "duration": 3])
            ids.append(try #require(r.json["task_id"] as? String))
        }
        let status = await server.terminate()
        #expect(status == 0)
        try await server.start(workers: 1)
        for id in ids {
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
            #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        }
        await server.terminate()
    }
}

/// Image URLs are fetched at submit time through the safe fetcher.
@Suite(.serialized) struct URLInputs {
    /// A loopback static file server (Python's http.server), stopped by the test.
    func withFileServer(_ files: [String: Data], _ body: (String) async throws -> Void) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, data) in files { try data.write(to: dir.appendingPathComponent(name)) }
        let port = Int.random(in: 20000...40000)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // SIGKILL: a child of the test runner inherits its blocked signal mask, so SIGTERM would be ignored.
        defer { kill(p.processIdentifier, SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let r = try? await HTTP.get(base + "/"), r.status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await body(base)
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
            let stored = try FileManager.default.contentsOfDirectory(atPath: open.dataDir.appendingPathComponent("blobs/inputs/\(id)").path)
            #expect(stored == ["image.png"])
            let done = try await HTTP.waitForTerminal(open.baseURL, key: key, id: id)
            #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            await open.terminate()
        }
    }
}
