import Foundation
import NIOHTTP1
import Testing

/// `Idempotency-Key` (ext) on submits through the real server: the same body answers the same task, another body 409,
/// bad keys 400, and concurrent submits with one key make one task.
@Suite struct IdempotencyTests {
    static func submit(_ server: ServerProcess, key: String, idempotency: String?, body: Data) async throws -> HTTPResult {
        var headers = [("Content-Type", "application/json"), ("Authorization", "Bearer \(key)")]
        if let idempotency { headers.append(("Idempotency-Key", idempotency)) }
        return try await HTTP.request(.POST, server.baseURL + "/v3/async/kling-v3.0-std-i2v", headers: headers, body: body)
    }

    static func inputs(_ server: ServerProcess) -> Int {
        server.storedInputs().count
    }

    /// A server without workers (tasks stay queued), its dev key, a PNG in base64 and a submit body with it.
    static func start() async throws -> (server: ServerProcess, key: String, png: String, body: Data) {
        let server = try ServerProcess()
        try await server.start(workers: 0)
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        return (server, try #require(server.devKey), png, try JSONSerialization.data(withJSONObject: ["image": png, "prompt": "pan left"]))
    }

    @Test func theSameKeyAndBodyAnswerTheSameTaskAndCreateNothing() async throws {
        let (server, key, png, body) = try await Self.start()
        defer { server.removeData() }

        let first = try await Self.submit(server, key: key, idempotency: "order-4711", body: body)
        #expect(first.status == 200, "\(first.text)")
        let id = try #require(first.json["task_id"] as? String)
        let again = try await Self.submit(server, key: key, idempotency: "order-4711", body: body)
        #expect(again.status == 200)
        #expect(again.json["task_id"] as? String == id)
        #expect(Self.inputs(server) == 1)

        // The same key with another body: 409, nothing stored.
        let other = try JSONSerialization.data(withJSONObject: ["image": png, "prompt": "pan right"])
        let reused = try await Self.submit(server, key: key, idempotency: "order-4711", body: other)
        #expect(reused.status == 409, "\(reused.text)")
        #expect(reused.json["reason"] as? String == "IDEMPOTENCY_KEY_REUSED")
        #expect((reused.json["metadata"] as? [String: String])?["field"] == "Idempotency-Key")
        #expect(Self.inputs(server) == 1)

        // Another tenant's same key is its own.
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", "other", "--data-dir", server.dataDir.path])
        let otherKey = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        let theirs = try await Self.submit(server, key: otherKey, idempotency: "order-4711", body: body)
        #expect(theirs.status == 200)
        #expect(theirs.json["task_id"] as? String != id)

        // Bad keys: 400 naming the header, nothing stored. No key: a new task each time, as before.
        for bad in ["", String(repeating: "k", count: 256), "tab\there", "é"] {
            let r = try await Self.submit(server, key: key, idempotency: bad, body: body)
            #expect(r.status == 400, "\(bad.debugDescription): \(r.text)")
            #expect((r.json["metadata"] as? [String: String])?["field"] == "Idempotency-Key")
        }
        let plain1 = try await Self.submit(server, key: key, idempotency: nil, body: body)
        let plain2 = try await Self.submit(server, key: key, idempotency: nil, body: body)
        #expect(plain1.json["task_id"] as? String != plain2.json["task_id"] as? String)
        #expect(Self.inputs(server) == 4)
        await server.terminate()
    }

    @Test func twentyConcurrentSubmitsWithOneKeyMakeOneTask() async throws {
        let (server, key, _, body) = try await Self.start()
        defer { server.removeData() }
        let answers = try await withThrowingTaskGroup(of: HTTPResult.self) { group in
            for _ in 0..<20 { group.addTask { try await Self.submit(server, key: key, idempotency: "burst-1", body: body) } }
            var all: [HTTPResult] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.map(\.status))")
        #expect(Set(answers.compactMap { $0.json["task_id"] as? String }).count == 1)
        #expect(Self.inputs(server) == 1)
        await server.terminate()
    }
}
