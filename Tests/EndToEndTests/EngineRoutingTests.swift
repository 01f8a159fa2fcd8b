import Foundation
import Testing

/// Engine routing through the real server: `--engine`, `extra.engine`, `extra.engine` in results, and remote claims
/// that name their engines and capabilities.
@Suite struct EngineRouting {
    typealias R = RemoteWorkerTests

    @Test func tasksGoOnlyToWorkersOfTheirEngineThatHonourWhatTheyNeed() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--engine", "motion", "--engine", "diffusers"], workers: 1)
        let key = try #require(server.devKey)
        let token = try await R.createToken(server)
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        func submit(_ json: [String: Any]) async throws -> HTTPResult {
            try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "duration": 3].merging(json) { _, new in new })
        }

        // An engine the operator did not enable, or no engine name at all: 400 naming extra.engine, nothing stored.
        for bad in ["fal", "", 7] as [Any] {
            let r = try await submit(["prompt": "pan left", "extra": ["engine": bad]])
            #expect(r.status == 400, "\(r.text)")
            #expect(r.json["reason"] as? String == "INVALID_REQUEST_BODY")
            #expect((r.json["metadata"] as? [String: String])?["field"] == "extra.engine", "\(r.text)")
        }
        // No engine asked: the first enabled one, rendered by the in-process motion worker.
        let plain = try #require(try await submit(["prompt": "pan left"]).json["task_id"] as? String)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: plain)
        #expect((done["extra"] as? [String: Any])?["engine"] as? String == "motion")
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")

        // A diffusers task with sound: the motion worker never takes it, nor a diffusers worker without sound.
        let gpu = try #require(
            try await submit(["prompt": "a fox runs", "sound": true, "extra": ["engine": "diffusers"]]).json["task_id"] as? String)
        let queued = try await HTTP.result(server.baseURL, key: key, id: gpu)
        #expect((queued.json["extra"] as? [String: Any])?["engine"] as? String == "diffusers")
        // No diffusers worker has been seen: the ETA says nothing will run it (the longest ETA there is).
        #expect((queued.json["task"] as? [String: Any])?["eta"] as? Int == 86_400, "\(queued.text)")
        let silent = try await R.post(
            server, "/claim", token: token, json: ["worker_id": "ti2v", "engine": "diffusers", "capabilities": [String](), "wait_seconds": 1])
        #expect(silent.status == 204, "\(silent.text)")
        // A diffusers worker is live now, but it cannot make sound: still nobody for this task.
        let stillUnserved = try await HTTP.result(server.baseURL, key: key, id: gpu)
        #expect((stillUnserved.json["task"] as? [String: Any])?["eta"] as? Int == 86_400, "\(stillUnserved.text)")
        let motionWorker = try await R.post(server, "/claim", token: token, json: ["worker_id": "m", "engines": ["motion"], "wait_seconds": 1])
        #expect(motionWorker.status == 204, "\(motionWorker.text)")
        let withSound = try await R.post(
            server, "/claim", token: token,
            json: [
                "worker_id": "wan", "engines": ["diffusers"], "capabilities": ["sound", "multi_prompt", "future_feature"], "model": "Wan2.2-TI2V-5B",
                "wait_seconds": 1,
            ])
        #expect(withSound.status == 200, "\(withSound.text)")
        #expect((withSound.json["task"] as? [String: Any])?["task_id"] as? String == gpu)
        let still = try await HTTP.result(server.baseURL, key: key, id: gpu)
        #expect((still.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_PROCESSING")
        // The next such task has a live worker that can run it: an ordinary estimate.
        let next = try #require(
            try await submit(["prompt": "a fox turns", "sound": true, "extra": ["engine": "diffusers"]]).json["task_id"] as? String)
        let nextETA = (try await HTTP.result(server.baseURL, key: key, id: next).json["task"] as? [String: Any])?["eta"] as? Int
        #expect((nextETA ?? .max) < 86_400, "\(String(describing: nextETA))")

        // Malformed claims name their field.
        for (body, field) in [
            (["worker_id": "w", "engine": "a b"], "engine"), (["worker_id": "w", "engines": ["ok", "no/pe"]], "engines[1]"),
            (["worker_id": "w", "engine": "motion", "engines": ["motion"]], "engines"), (["worker_id": "w", "engines": [String]()], "engines"),
        ] as [([String: Any], String)] {
            let r = try await R.post(server, "/claim", token: token, json: body)
            #expect(r.status == 400, "\(body): \(r.text)")
            #expect((r.json["metadata"] as? [String: String])?["field"] == field, "\(body): \(r.text)")
        }
        // A key whose default engine is diffusers: its tasks go there without asking; extra.engine still wins.
        let created = try await ServerProcess.cli([
            "keys", "create", "--tenant", "studio", "--engine", "diffusers", "--data-dir", server.dataDir.path,
        ])
        let studioKey = try #require(created.stdout.split(separator: "\n").last.map(String.init), "\(created.stdout)")
        let viaKey = try await HTTP.submit(server.baseURL, key: studioKey, json: ["image": png, "prompt": "a fox runs", "duration": 3])
        let viaKeyID = try #require(viaKey.json["task_id"] as? String, "\(viaKey.text)")
        #expect(
            (try await HTTP.result(server.baseURL, key: studioKey, id: viaKeyID).json["extra"] as? [String: Any])?["engine"] as? String == "diffusers"
        )
        let asked = try await HTTP.submit(
            server.baseURL, key: studioKey, json: ["image": png, "prompt": "pan left", "duration": 3, "extra": ["engine": "motion"]])
        let askedID = try #require(asked.json["task_id"] as? String, "\(asked.text)")
        #expect(
            (try await HTTP.result(server.baseURL, key: studioKey, id: askedID).json["extra"] as? [String: Any])?["engine"] as? String == "motion")
        let listed = try await ServerProcess.cli(["keys", "list", "--data-dir", server.dataDir.path])
        #expect(listed.stdout.contains("studio") && listed.stdout.contains("\tdiffusers"), "\(listed.stdout)")
        let unknown = try await ServerProcess.cli(["keys", "create", "--engine", "sora", "--data-dir", server.dataDir.path])
        #expect(unknown.status != 0)

        // An unknown engine at start is refused with the list of known ones.
        let refused = try await ServerProcess.cli(["serve", "--data-dir", server.dataDir.path, "--engine", "sora"])
        #expect(refused.status != 0)
        #expect(refused.stdout.contains("diffusers"), "\(refused.stdout)")
        await server.terminate()
    }
}
