import Foundation
import Testing

/// What a remote worker sends is bounded and cannot forge log lines.
@Suite struct WorkerInputBounds {
    typealias R = RemoteWorkerTests

    @Test func aFailureReasonWithLineBreaksCannotForgeALogLine() async throws {
        let (server, key, token, id, lease) = try await R.claimedTask(["--max-attempts", "1"], worker: "w", logLevel: "info").parts
        defer { server.removeData() }
        let reason = "model crashed\r\nX-Forged: yes\nerror : kinema : forged line\u{1b}[2J"
        let failed = try await R.post(
            server, "/tasks/\(id)/fail", token: token, json: ["lease_id": lease.leaseID, "reason": reason, "retryable": false])
        #expect(failed.status == 200, "\(failed.text)")
        // The reason reaches the client unchanged (it is JSON there) …
        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((result.json["task"] as? [String: Any])?["reason"] as? String == reason)
        // … but in the log it is one escaped value on the failure's own line.
        let deadline = ContinuousClock.now + .seconds(30)
        while !server.log.contains("failed a task"), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let lines = server.log.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
        #expect(
            lines.contains { $0.contains("failed a task") && $0.contains(#"model crashed\r\nX-Forged: yes\nerror : kinema : forged line\u{1b}[2J"#) },
            "\(server.log)")
        #expect(!lines.contains { $0.hasPrefix("X-Forged") || $0.hasPrefix("error : kinema : forged") }, "\(server.log)")
        #expect(!server.log.contains("\u{1b}"))
        await server.terminate()
    }

    @Test func heartbeatNumbersAreBoundedOnInput() async throws {
        let (server, key, token, id, lease) = try await R.claimedTask(worker: "w").parts
        defer { server.removeData() }
        func beat(_ progress: Any, _ eta: Any) async throws -> HTTPResult {
            try await R.post(
                server, "/tasks/\(id)/heartbeat", token: token, json: ["lease_id": lease.leaseID, "progress_percent": progress, "eta_seconds": eta])
        }
        for (progress, eta, field) in [
            (50, 1_000_000_000_000_000_000, "eta_seconds"), (50, 86_401, "eta_seconds"), (50, -1, "eta_seconds"),
            (101, 5, "progress_percent"), (-1, 5, "progress_percent"),
        ] as [(Int, Int, String)] {
            let r = try await beat(progress, eta)
            #expect(r.status == 400, "\(progress) \(eta): \(r.text)")
            #expect((r.json["metadata"] as? [String: String])?["field"] == field, "\(r.text)")
        }
        // Nothing of the refused heartbeats reached the task.
        let before = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect(((before.json["task"] as? [String: Any])?["eta"] as? Int ?? .max) <= 86_400, "\(before.text)")
        // The largest allowed ETA is shown as sent.
        #expect(try await beat(40, 86_400).status == 200)
        let after = try await HTTP.result(server.baseURL, key: key, id: id)
        let task = try #require(after.json["task"] as? [String: Any])
        #expect(task["eta"] as? Int == 86_400)
        #expect(task["progress_percent"] as? Int == 40)
        await server.terminate()
    }
}
