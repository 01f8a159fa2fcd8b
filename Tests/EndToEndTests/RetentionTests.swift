import Foundation
import NIOHTTP1
import Testing

/// Retention through the real server: inputs go once a task ends, results once past `--result-retention`, and
/// nothing else is ever deleted early (checked at random moments over many tasks); a deleted result's task stays
/// SUCCEED with no video, and its old link answers 404 RESULT_EXPIRED. `kinema blobs gc` runs the same sweep.
@Suite(.serialized) struct RetentionTests {
    /// What the API says about one task: its status and when it ended (0 while running).
    static func state(_ server: ServerProcess, key: String, id: String) async throws -> (status: String, endedMs: Int64, videos: Int) {
        let body = try await HTTP.result(server.baseURL, key: key, id: id).json
        let status = (body["task"] as? [String: Any])?["status"] as? String ?? ""
        let debug = ((body["extra"] as? [String: Any])?["debug_info"] as? [String: Any]) ?? [:]
        return (status, Int64(debug["complete_time_ms"] as? String ?? "0") ?? 0, (body["videos"] as? [Any])?.count ?? 0)
    }

    @Test func inputsGoAtTheEndResultsAfterRetentionAndNothingElseEver() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        let retention: Int64 = 20_000
        try await server.start(["--result-retention", "20s"], workers: 1, environment: ["KINEMA_RETENTION_SWEEP_SECONDS": "0.25"])
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 300, height: 300, format: "png").base64EncodedString()
        var generator = SystemRandomNumberGenerator()

        // The first task's link, read the moment it succeeds (polled closely, well inside the retention).
        let first = try #require(
            try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "slow push in", "duration": 3]).json["task_id"]
                as? String)
        var firstURL: String?
        let firstDeadline = ContinuousClock.now + .seconds(120)
        while firstURL == nil, ContinuousClock.now < firstDeadline {
            let body = try await HTTP.result(server.baseURL, key: key, id: first).json
            firstURL = ((body["videos"] as? [[String: Any]])?.first)?["video_url"] as? String
            if firstURL == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let url = try #require(firstURL)

        // 11 more, submitted at random moments; some canceled while queued. At random moments each blob must be
        // present or absent as the policy says: never deleted early (strict), gone eventually (a generous lag, since
        // the whole suite may be starving this machine).
        var ids = [first]
        var lastSubmit = ContinuousClock.now
        var checks = 0
        var allEndedAt: Int64?
        let giveUp = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < giveUp {
            if ids.count < 12, ContinuousClock.now - lastSubmit > .milliseconds(Int.random(in: 200...1500, using: &generator)) {
                let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "slow push in", "duration": 3])
                let id = try #require(r.json["task_id"] as? String, "\(r.text)")
                ids.append(id)
                lastSubmit = ContinuousClock.now
                if ids.count % 3 == 0, Bool.random(using: &generator) {
                    _ = try await HTTP.request(
                        .POST, server.baseURL + "/v3/async/task-cancel",
                        headers: [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")],
                        body: Data(#"{"task_id":"\#(id)"}"#.utf8))
                }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...400, using: &generator)))
            // Inputs are listed before the API is read (a task the API calls running after the listing was running at
            // the listing, so its input must be in it); a result is listed after (a success the API reported before
            // the listing must have its file in it unless retention passed).
            let inputs = Set(server.storedInputs().map { String($0.split(separator: "/").last?.split(separator: ".").first ?? "") })
            var ended: [Int64] = []
            for id in ids {
                let (status, endedMs, videos) = try await Self.state(server, key: key, id: id)
                let results = server.storedResults(of: id)
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let terminal = ["TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"].contains(status)
                if terminal { ended.append(endedMs) }
                if !terminal {
                    #expect(inputs.contains(id), "\(id): an input was deleted while the task was \(status)")
                } else if now - endedMs > 15_000 {
                    #expect(!inputs.contains(id), "\(id): inputs kept \(now - endedMs) ms after the end")
                }
                guard status == "TASK_STATUS_SUCCEED" else { continue }
                // The result's age when it was listed is at most `now - endedMs`.
                let age = now - endedMs
                if age < retention - 500 {
                    #expect(results.count == 1 && videos == 1, "\(id): result gone \(age) ms after the end (retention \(retention) ms)")
                } else if age > retention + 15_000 {
                    #expect(results.isEmpty && videos == 0, "\(id): result kept \(age) ms after the end")
                }
            }
            checks += 1
            if ids.count == 12, ended.count == 12 {
                allEndedAt = allEndedAt ?? ended.max()
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                if let last = allEndedAt, now - last > retention + 16_000 { break }
            }
        }
        #expect(checks >= 10 && ids.count == 12, "\(checks) checks of \(ids.count) tasks")
        #expect(allEndedAt != nil, "not every task ended in time")

        // Past retention: the first task is still SUCCEED, with no video; its old link answers RESULT_EXPIRED.
        let (status, _, videos) = try await Self.state(server, key: key, id: first)
        #expect(status == "TASK_STATUS_SUCCEED" && videos == 0)
        let expired = try await HTTP.get(url)
        #expect(expired.status == 404 && expired.json["reason"] as? String == "RESULT_EXPIRED", "\(expired.text)")
        await server.terminate()
    }

    @Test func blobsGCListsThenDeletes() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // The server itself keeps everything here; the command does the work.
        try await server.start(["--result-retention", "0", "--keep-inputs"], workers: 1)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 300, height: 300, format: "png").base64EncodedString()
        let id = try #require(
            try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3]).json["task_id"] as? String)
        _ = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.storedInputs().count == 1 && server.storedResults(of: id).count == 1, "kept while the server keeps them")
        await server.terminate()

        let dir = server.dataDir.path
        // Past the one-second retention given below.
        try await Task.sleep(for: .milliseconds(1500))
        let dry = try await ServerProcess.cli(["blobs", "gc", "--data-dir", dir, "--result-retention", "1s", "--dry-run"])
        #expect(
            dry.status == 0 && dry.stdout.contains("would delete inputs of task \(id)") && dry.stdout.contains("would delete result of task \(id)"),
            "\(dry.stdout)")
        #expect(server.storedInputs().count == 1 && server.storedResults(of: id).count == 1, "a dry run deletes nothing")
        let run = try await ServerProcess.cli(["blobs", "gc", "--data-dir", dir, "--result-retention", "1s"])
        #expect(run.status == 0 && run.stdout.contains("2 sets of blobs were deleted"), "\(run.stdout)")
        #expect(server.storedInputs().isEmpty && server.storedResults(of: id).isEmpty)
        let again = try await ServerProcess.cli(["blobs", "gc", "--data-dir", dir, "--result-retention", "1s", "--dry-run"])
        #expect(again.stdout.contains("0 sets of blobs would be deleted"), "\(again.stdout)")
    }
}
