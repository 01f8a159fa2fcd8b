import Foundation
import NIOHTTP1
import Testing

/// `--log-format json` and the request log line: one JSON object per line, each request logged with its method, path,
/// status, duration and request id, and the id echoed (or minted) in `X-Request-Id`.
@Suite struct StructuredLogTests {
    @Test func jsonLinesCarryEveryRequestWithItsId() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--log-format", "json"], workers: 0, logLevel: "info")
        let key = try #require(server.devKey)
        let echoed = try await HTTP.get(
            server.baseURL + "/v3/async/task-result?task_id=\(UUID())", key: key, headers: [("X-Request-Id", "trace-123")])
        #expect(echoed.status == 404)
        #expect(echoed.headers.first(name: "X-Request-Id") == "trace-123")
        let minted = try await HTTP.get(server.baseURL + "/healthz", headers: [("X-Request-Id", "bad id with spaces")])
        let mintedID = try #require(minted.headers.first(name: "X-Request-Id"))
        #expect(UUID(uuidString: mintedID) != nil, "\(mintedID)")
        try await Task.sleep(for: .milliseconds(300))
        await server.terminate()

        let lines = server.log.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(!lines.isEmpty, "\(server.log)")
        let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == lines.count, "every line is one JSON object: \(server.log)")
        #expect(objects.allSatisfy { $0["ts"] is String && $0["level"] is String && $0["message"] is String })
        let requests = objects.filter { $0["message"] as? String == "request" }
        let traced = try #require(requests.first { $0["request_id"] as? String == "trace-123" }, "\(server.log)")
        #expect(traced["method"] as? String == "GET")
        #expect(traced["path"] as? String == "/v3/async/task-result")
        #expect(traced["status"] as? String == "404")
        #expect(Double(traced["duration_ms"] as? String ?? "") != nil)
        #expect(requests.contains { $0["request_id"] as? String == mintedID && $0["status"] as? String == "200" })
        #expect(!server.log.contains(key), "no API key in the log")
    }
}
