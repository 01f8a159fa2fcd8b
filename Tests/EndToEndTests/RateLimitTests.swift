import Foundation
import Testing
import NIOHTTP1

/// Per-key request rates and per-tenant task caps through the real server: 429 `RATE_LIMIT_EXCEEDED` with
/// `Retry-After`, on one embedded node and across two API nodes sharing PostgreSQL.
@Suite struct RateLimits {
    static func expectRateLimited(_ r: HTTPResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == 429, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.json["code"] as? Int == 429, sourceLocation: sourceLocation)
        #expect(r.json["reason"] as? String == "RATE_LIMIT_EXCEEDED", "\(r.text)", sourceLocation: sourceLocation)
        #expect((r.json["message"] as? String)?.isEmpty == false, sourceLocation: sourceLocation)
        let retryAfter = r.headers.first(name: "Retry-After").flatMap(Int.init)
        #expect((retryAfter ?? 0) >= 1, "Retry-After: \(String(describing: r.headers.first(name: "Retry-After")))", sourceLocation: sourceLocation)
    }

    static func newKey(_ server: ServerProcess, tenant: String) async throws -> String {
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", tenant, "--data-dir", server.dataDir.path])
        #expect(created.status == 0, "\(created.stdout)")
        return try #require(created.stdout.split(separator: "\n").last.map(String.init))
    }

    @Test func aKeyOverItsRateGets429WithRetryAfterAndOthersAreUnaffected() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // One token every 200 s: the test does not depend on how fast a loaded machine sends its requests (with one every
        // 5 s, then 20 s, a test process starved that long between two requests saw a refill and a 400 instead of a 429).
        try await server.start(["--rate-limit-rps", "0.005", "--rate-limit-burst", "3"], workers: 0)
        let key = try #require(server.devKey)
        let other = try await Self.newKey(server, tenant: "other")
        let poll = "\(server.baseURL)/v3/async/task-result?task_id=\(UUID().uuidString.lowercased())"

        // The burst of 3 passes (the unknown task answers 404); then requests are refused before any work
        // (bounded: 10 requests; only a refill of a token every 200 s can let one more through).
        for _ in 0..<3 { #expect(try await HTTP.get(poll, key: key).status == 404) }
        var refused = try await HTTP.get(poll, key: key)
        for _ in 0..<7 where refused.status != 429 { refused = try await HTTP.get(poll, key: key) }
        Self.expectRateLimited(refused)
        // Submits count against the same key (refused at once, before the body is read).
        Self.expectRateLimited(try await HTTP.submit(server.baseURL, key: key, json: ["prompt": "x"]))
        // Another key has its own bucket; bad keys are refused as such, not rate limited.
        #expect(try await HTTP.get(poll, key: other).status == 404)
        #expect(try await HTTP.get(poll, key: "kin_" + String(repeating: "A", count: 43)).status == 403)

        #expect((Int(refused.headers.first(name: "Retry-After") ?? "") ?? 0) <= 200)
        await server.terminate()
    }

    @Test func retryAfterIsHonest() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // One token a second: after waiting Retry-After (a starved test waits longer, which only adds tokens), the key
        // is served again.
        try await server.start(["--rate-limit-rps", "1", "--rate-limit-burst", "1"], workers: 0)
        let key = try #require(server.devKey)
        let poll = "\(server.baseURL)/v3/async/task-result?task_id=\(UUID().uuidString.lowercased())"
        var refused = try await HTTP.get(poll, key: key)
        for _ in 0..<10 where refused.status != 429 { refused = try await HTTP.get(poll, key: key) }
        Self.expectRateLimited(refused)
        let wait = Int(refused.headers.first(name: "Retry-After") ?? "1") ?? 1
        #expect(wait <= 1)
        try await Task.sleep(for: .seconds(wait) + .milliseconds(100))
        #expect(try await HTTP.get(poll, key: key).status == 404)
        await server.terminate()
    }

    @Test func aTenantAtItsQueuedTaskCapGets429AndNothingIsStored() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--max-queued-tasks", "2"], workers: 0)
        let key = try #require(server.devKey)
        let other = try await Self.newKey(server, tenant: "other")
        let png = try await Fixtures.image(width: 320, height: 320, format: "png").base64EncodedString()
        let body: [String: Any] = ["image": png, "prompt": "slow push in", "duration": 3]

        for _ in 0..<2 { #expect(try await HTTP.submit(server.baseURL, key: key, json: body).status == 200) }
        Self.expectRateLimited(try await HTTP.submit(server.baseURL, key: key, json: body))
        // The refused submit left no inputs behind: two tasks, two input files.
        #expect(server.storedInputs().count == 2)
        // The cap is per tenant; polls are not capped.
        #expect(try await HTTP.submit(server.baseURL, key: other, json: body).status == 200)
        await server.terminate()
    }

    @Test func limitsHoldAcrossTwoAPINodesSharingPostgreSQL() async throws {
        let postgres = try await ThrowawayPostgres.start()
        let shared = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-shared-\(UUID().uuidString)")
        let blobs = shared.appendingPathComponent("blobs").path
        let node1 = try ServerProcess(), node2 = try ServerProcess()
        defer {
            node1.removeData()
            node2.removeData()
            try? FileManager.default.removeItem(at: shared)
        }
        // A rate so slow that no token comes back during the test: exactly the burst passes.
        let limits = [
            "--database", postgres.url, "--blob-dir", blobs, "--rate-limit-rps", "0.01", "--rate-limit-burst", "6",
            "--max-queued-tasks", "3",
        ]
        try await node1.start(limits, workers: 0)
        try await node2.start(limits, workers: 0)
        let key = try #require(node1.devKey)
        let poll = "/v3/async/task-result?task_id=\(UUID().uuidString.lowercased())"

        // Ten polls alternating between the nodes: the key's bucket is shared, so six pass in all.
        var statuses: [Int] = []
        for i in 0..<10 { statuses.append(try await HTTP.get((i % 2 == 0 ? node1 : node2).baseURL + poll, key: key).status) }
        #expect(statuses.filter { $0 == 404 }.count == 6, "\(statuses)")
        #expect(statuses.filter { $0 == 429 }.count == 4, "\(statuses)")

        // Six concurrent submits (within the fresh key's burst) of one tenant across both nodes: the cap of 3 holds.
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", "racer", "--database", postgres.url])
        let racer = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        let png = try await Fixtures.image(width: 320, height: 320, format: "png").base64EncodedString()
        let bases = [node1.baseURL, node2.baseURL]
        let codes = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<6 {
                group.addTask {
                    try await HTTP.submit(bases[i % 2], key: racer, json: ["image": png, "prompt": "pan left", "duration": 3]).status
                }
            }
            var all: [Int] = []
            for try await code in group { all.append(code) }
            return all
        }
        #expect(codes.filter { $0 == 200 }.count == 3, "\(codes)")
        #expect(codes.filter { $0 == 429 }.count == 3, "\(codes)")
        let stored = try await postgres.query("SELECT count(*) FROM tasks WHERE tenant = 'racer'")
        #expect(stored == [["3"]])

        await node1.terminate()
        await node2.terminate()
        await postgres.stop()
    }
}
