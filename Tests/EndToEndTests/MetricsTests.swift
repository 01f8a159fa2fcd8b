import Foundation
import NIOHTTP1
import Testing

/// `--metrics-port`: Prometheus metrics on their own listener, read with prometheus_client's parser (tools venv).
@Suite struct MetricsTests {
    static let python = Schemathesis.repositoryRoot.appendingPathComponent(".venv-tools/bin/python")

    /// The samples of a scrape, as `name{label="value",…}` (labels sorted) → value, parsed by prometheus_client.
    static func parse(_ text: String) async throws -> [String: Double] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-metrics-\(UUID().uuidString).txt")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let script = """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    out[f"{s.name}{{{labels}}}"] = s.value
            print(json.dumps(out))
            """
        let run = try await Tools.run(python.path, ["-c", script, file.path], direct: true)
        guard run.status == 0, let json = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Double] else {
            throw TestFailure("prometheus_client could not parse the scrape: \(run.output)\n\(text.prefix(3000))")
        }
        return json
    }

    /// The metrics listener's URL, from the server's log line that announces it.
    static func metricsURL(of server: ServerProcess) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let url = server.log.split(separator: "\n").first { $0.contains("metrics listening") }
                .flatMap { line in line.split(separator: " ").first { $0.hasPrefix("url=") }.map { String($0.dropFirst(4)) } }
            if let url { return url }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("no metrics listener in the log: \(server.log)")
    }

    @Test func countersEqualTheTrafficSentAndTheEndpointIsNotOnThePublicPort() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--metrics-port", "0"], workers: 1, logLevel: "notice")
        let key = try #require(server.devKey)
        let url = try await Self.metricsURL(of: server)
        #expect(url.hasPrefix("http://127.0.0.1:") && !url.hasPrefix(server.baseURL))

        // Known traffic: one task rendered to the end, two polls of unknown tasks, one health check.
        let pngData = try await Fixtures.image(width: 400, height: 300, format: "png")
        let png = pngData.base64EncodedString()
        let id = try #require(
            try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3]).json["task_id"] as? String)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")
        for _ in 0..<2 { #expect(try await HTTP.get(server.baseURL + "/v3/async/task-result?task_id=\(UUID())", key: key).status == 404) }
        #expect(try await HTTP.get(server.baseURL + "/healthz").status == 200)
        #expect(try await HTTP.get(server.baseURL + "/metrics").status == 404, "never on the public port")

        let scrape = try await HTTP.get(url)
        #expect(scrape.status == 200)
        #expect(scrape.headers.first(name: "Content-Type")?.hasPrefix("text/plain") == true)
        let samples = try await Self.parse(scrape.text)
        #expect(samples[#"kinema_tasks_submitted_total{engine="motion"}"#] == 1, "\(samples)")
        #expect(samples[#"kinema_http_requests_total{route="/v3/async/kling-v3.0-std-i2v",status="200"}"#] == 1)
        #expect(samples[#"kinema_http_requests_total{route="/v3/async/task-result",status="404"}"#] == 2)
        #expect(samples[#"kinema_http_requests_total{route="/healthz",status="200"}"#] == 1)
        #expect(samples[#"kinema_http_requests_total{route="other",status="404"}"#] == 1)
        #expect((samples[#"kinema_http_request_duration_seconds_count{route="/v3/async/task-result"}"#] ?? 0) >= 3)
        #expect(samples[#"kinema_renders_total{engine="motion",outcome="succeeded"}"#] == 1)
        #expect(samples[#"kinema_render_seconds_count{engine="motion"}"#] == 1)
        #expect(samples[#"kinema_render_seconds_per_video_second_count{engine="motion"}"#] == 1)
        #expect(samples[#"kinema_tasks{engine="motion",status="succeeded"}"#] == 1)
        #expect(samples[#"kinema_tasks{engine="motion",status="queued"}"#] == 0)
        // Blob bytes: the decoded upload and the stored MP4 written; the MP4 served once it is downloaded (below).
        let stored = try #require(ServerProcess.storedResults(of: id, blobs: server.dataDir.appendingPathComponent("blobs")).first)
        let resultSize = try #require(
            try FileManager.default.attributesOfItem(
                atPath: server.dataDir.appendingPathComponent("blobs/results/\(id.prefix(2))/\(stored)").path)[.size] as? Int)
        #expect(samples[#"kinema_blob_written_bytes_total{kind="inputs"}"#] == Double(pngData.count), "\(samples)")
        #expect(samples[#"kinema_blob_written_bytes_total{kind="results"}"#] == Double(resultSize))
        #expect(samples[#"kinema_blob_served_bytes_total{kind="results"}"#] == nil)
        let videoURL = try #require(((done["videos"] as? [[String: Any]])?.first)?["video_url"] as? String)
        #expect(try await HTTP.get(videoURL).body.count == resultSize)
        let after = try await Self.parse(try await HTTP.get(url).text)
        #expect(after[#"kinema_blob_served_bytes_total{kind="results"}"#] == Double(resultSize))

        // The Grafana dashboard asks only for series this node emits (webhooks, rescues and upstream calls once they
        // happen: their names are the ones the code records, the upstream ones checked in the test below).
        let dashboard = try String(contentsOf: Schemathesis.repositoryRoot.appendingPathComponent("docs/grafana-dashboard.json"), encoding: .utf8)
        let asked = Set(dashboard.matches(of: /kinema_[a-z_]+/).map { String($0.output) })
        let emitted = Set(samples.merging(after) { a, _ in a }.keys.map { String($0.prefix { $0 != "{" }) }).union([
            "kinema_webhook_deliveries_total", "kinema_lease_rescues_total", "kinema_upstream_calls_total",
            "kinema_upstream_call_duration_seconds_bucket",
        ])
        #expect(!asked.isEmpty && asked.isSubset(of: emitted), "\(asked.subtracting(emitted))")
        await server.terminate()
    }

    /// Upstream calls by provider, call and outcome, through the Novita stand-in.
    @Test func upstreamCallsAreCountedByProviderCallAndOutcome() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png")
        try await UpstreamGatewayTests.withGateway(.novita, ["--metrics-port", "0"], logLevel: "notice") { _, server, key in
            let id = try await UpstreamGatewayTests.submit(server, key, ["image": png.base64EncodedString(), "prompt": "zoom", "duration": 5])
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
            #expect(UpstreamGatewayTests.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            let samples = try await Self.parse(try await HTTP.get(try await Self.metricsURL(of: server)).text)
            #expect(samples[#"kinema_upstream_calls_total{call="submit",outcome="2xx",provider="novita"}"#] == 1, "\(samples)")
            #expect((samples[#"kinema_upstream_calls_total{call="poll",outcome="2xx",provider="novita"}"#] ?? 0) >= 1)
            #expect((samples[#"kinema_upstream_call_duration_seconds_count{call="submit",provider="novita"}"#] ?? 0) == 1)
            #expect(samples[#"kinema_tasks{engine="novita",status="succeeded"}"#] == 1)
            #expect(samples[#"kinema_renders_total{engine="novita",outcome="succeeded"}"#] == 1)
        }
    }
}
