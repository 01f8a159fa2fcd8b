import Foundation
import Logging
import KinemaAPIModels
import KinemaAPI
import KinemaCore
import KinemaEngines
import KinemaStoreSQLite
import KinemaStore
import Testing
import NIOHTTP1

/// Auth, tenants and error shapes over real HTTP, on an API-only node (no renders needed).
@Suite(.serialized) struct ContractErrors {
    func expectError(_ r: HTTPResult, status: Int, reason: String, field: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(r.text)", sourceLocation: sourceLocation)
        #expect(r.json["code"] as? Int == status, sourceLocation: sourceLocation)
        #expect(r.json["reason"] as? String == reason, "\(r.text)", sourceLocation: sourceLocation)
        #expect(!((r.json["message"] as? String) ?? "").isEmpty, sourceLocation: sourceLocation)
        let metadata = r.json["metadata"] as? [String: String]
        #expect(metadata != nil, sourceLocation: sourceLocation)
        if let field { #expect(metadata?["field"] == field, "\(r.text)", sourceLocation: sourceLocation) }
    }

    @Test func authTenantsAndUnknownRoutes() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let base = server.baseURL
        let png = try await Fixtures.image(width: 400, height: 400, format: "png").base64EncodedString()

        expectError(try await HTTP.submit(base, key: nil, json: ["image": png, "prompt": "a"]), status: 400, reason: "MISSING_API_KEY")
        expectError(
            try await HTTP.request(.POST, base + "/v3/async/kling-v3.0-std-i2v", headers: [("Authorization", "Bearer ")], body: Data("{}".utf8)),
            status: 400, reason: "MISSING_API_KEY")
        expectError(
            try await HTTP.submit(base, key: "kin_not-a-real-key", json: ["image": png, "prompt": "a"]), status: 403, reason: "INVALID_API_KEY")
        expectError(
            try await HTTP.submit(base, key: String(key.dropLast()) + (key.hasSuffix("A") ? "B" : "A"), json: ["image": png, "prompt": "a"]),
            status: 403, reason: "INVALID_API_KEY")
        expectError(try await HTTP.get(base + "/v3/async/task-result?task_id=\(UUID())"), status: 400, reason: "MISSING_API_KEY")

        // A second tenant, created with the CLI while the server runs.
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", "other", "--data-dir", server.dataDir.path])
        #expect(created.status == 0)
        let otherKey = try #require(created.stdout.split(separator: "\n").last.map(String.init))
        #expect(otherKey.hasPrefix("kin_"))

        let submit = try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "a", "duration": 3])
        #expect(submit.status == 200, "\(submit.text)")
        let id = try #require(submit.json["task_id"] as? String)
        let mine = try await HTTP.result(base, key: key, id: id)
        #expect(mine.status == 200)
        #expect((mine.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_QUEUED")
        #expect((mine.json["videos"] as? [Any])?.isEmpty == true)
        #expect((mine.json["extra"] as? [String: Any]).flatMap { ($0["debug_info"] as? [String: Any])?["execute_time_ms"] as? String } == "0")

        // Another tenant's task answers exactly like an unknown one.
        let foreign = try await HTTP.result(base, key: otherKey, id: id)
        let unknown = try await HTTP.result(base, key: otherKey, id: UUID().uuidString.lowercased())
        expectError(foreign, status: 404, reason: "TASK_NOT_FOUND")
        #expect(foreign.body == unknown.body)
        expectError(try await HTTP.result(base, key: key, id: "not-a-uuid"), status: 400, reason: "INVALID_REQUEST_BODY", field: "task_id")
        expectError(try await HTTP.get(base + "/v3/async/task-result", key: key), status: 400, reason: "INVALID_REQUEST_BODY", field: "task_id")

        // Revoked keys stop working within the node's key cache time (2 s by default).
        let listed = try await ServerProcess.cli(["keys", "list", "--data-dir", server.dataDir.path])
        let otherID = try #require(
            listed.stdout.split(separator: "\n").first { $0.contains("\tother\t") }?.split(separator: "\t").first.map(String.init))
        #expect(try await ServerProcess.cli(["keys", "revoke", otherID, "--data-dir", server.dataDir.path]).status == 0)
        var revoked = try await HTTP.result(base, key: otherKey, id: id)
        let deadline = ContinuousClock.now + .seconds(30)
        while revoked.status != 403, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            revoked = try await HTTP.result(base, key: otherKey, id: id)
        }
        expectError(revoked, status: 403, reason: "INVALID_API_KEY")

        expectError(try await HTTP.get(base + "/v3/nope", key: key), status: 404, reason: "API_NOT_FOUND")
        expectError(
            try await HTTP.request(.DELETE, base + "/v3/async/task-result?task_id=\(id)", headers: [("Authorization", "Bearer \(key)")]), status: 404,
            reason: "API_NOT_FOUND")
        expectError(try await HTTP.get(base + "/v3/async/kling-v3.0-std-i2v", key: key), status: 404, reason: "API_NOT_FOUND")

        #expect(try await HTTP.get(base + "/healthz").status == 200)
        #expect(try await HTTP.get(base + "/readyz").status == 200)
        await server.terminate()
    }

    @Test func invalidBodiesAnswerWithReasonAndFieldAndCreateNothing() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let base = server.baseURL
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        let tiny = try await Fixtures.image(width: 299, height: 400, format: "png").base64EncodedString()
        let wide = try await Fixtures.image(width: 760, height: 300, format: "png").base64EncodedString()

        expectError(
            try await HTTP.request(
                .POST, base + "/v3/async/kling-v3.0-std-i2v", headers: [("Authorization", "Bearer \(key)")], body: Data("not json".utf8)),
            status: 400, reason: "INVALID_REQUEST_BODY", field: "")
        expectError(try await HTTP.submit(base, key: key, json: ["prompt": "a"]), status: 400, reason: "INVALID_REQUEST_BODY", field: "image")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "a", "duration": 16]), status: 400, reason: "INVALID_REQUEST_BODY",
            field: "duration")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "a", "duration": "5"]), status: 400, reason: "INVALID_REQUEST_BODY",
            field: "duration")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": png, "prompt": "a", "cfg_scale": 1.01]), status: 400,
            reason: "INVALID_REQUEST_BODY", field: "cfg_scale")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": png, "multi_prompt": [["prompt": "a", "duration": 2]]]), status: 400,
            reason: "INVALID_REQUEST_BODY", field: "multi_prompt[0].duration")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": tiny, "prompt": "a"]), status: 400, reason: "INVALID_IMAGE_SIZE", field: "image")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": wide, "prompt": "a"]), status: 400, reason: "INVALID_IMAGE_SIZE", field: "image")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": Data("GIF89a-not-an-image".utf8).base64EncodedString(), "prompt": "a"]),
            status: 400, reason: "INVALID_IMAGE_FORMAT", field: "image")
        // A valid PNG header over garbage pixels: caught by the full decode at submit.
        var broken = try #require(Data(base64Encoded: png))
        broken.replaceSubrange(60..<broken.count, with: Data(repeating: 0x55, count: broken.count - 60))
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": broken.base64EncodedString(), "prompt": "a"]), status: 400,
            reason: "INVALID_IMAGE_FORMAT", field: "image")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": png, "end_image": "%%%", "prompt": "a"]), status: 400,
            reason: "INVALID_IMAGE_FORMAT", field: "end_image")
        expectError(
            try await HTTP.submit(base, key: key, json: ["image": "http://127.0.0.1:9/x.png", "prompt": "a"]), status: 400,
            reason: "IMAGE_FETCH_FAILED", field: "image")

        // Nothing was stored: no input blob exists for any of the refused requests.
        let stored = server.storedInputs()
        #expect(stored.isEmpty, "\(stored)")
        let counts = try await DataDirectory(server.dataDir).openStore().countByStatus()
        #expect(counts.values.reduce(0, +) == 0, "\(counts)")
        await server.terminate()
    }

    @Test func openAPIDocumentListsEveryRouteTheRouterAnswers() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let r = try await HTTP.get(server.baseURL + "/openapi.yaml")
        #expect(r.status == 200)
        #expect(r.text.hasPrefix("openapi: 3.1"))
        // (method, path) pairs: paths are the two-space-indented keys under `paths:`, methods the four-space ones.
        let pathsSection = try #require(r.text.components(separatedBy: "\npaths:\n").last?.components(separatedBy: "\ncomponents:").first)
        var documented: Set<String> = []
        var current = ""
        for line in pathsSection.split(separator: "\n") {
            if line.hasPrefix("  /") { current = String(line.dropFirst(2).dropLast()) }
            for method in ["get", "post", "put", "delete", "patch"] where line == "    \(method):" { documented.insert("\(method) \(current)") }
        }
        #expect(!documented.isEmpty)
        await server.terminate()

        // The routes the server's own router registers (not a list kept beside it).
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-routes-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try DataDirectory(dir)
        let node = KinemaServer(
            configuration: ServerConfiguration(dataDirectory: dir), store: try data.openStore(), blobs: try data.openBlobs(),
            engine: EngineCatalog.motion(), imageVerifier: UncheckedImages(), signingSecret: [UInt8](repeating: 7, count: 32), nodeID: "routes",
            logger: Logger(label: "routes")
        )
        let registered = node.registeredRoutes()
        // The playground's page and files are not API (and not documented as such); they are listed in Routes.
        #expect(Set(Routes.playground).isSubset(of: Set(registered.map(\.path))))
        let publicRoutes = registered.filter { !$0.path.hasPrefix(WorkerProtocolPaths.base) && !Routes.playground.contains($0.path) }
        #expect(Set(publicRoutes.filter { $0.method != "head" }.map { "\($0.method) \($0.path)" }) == documented)
        // HEAD is answered like GET (monitors, players): only where GET is documented.
        for head in publicRoutes where head.method == "head" {
            #expect(documented.contains("get \(head.path)"), "HEAD \(head.path) without a documented GET")
        }
        // The worker protocol's routes are exactly the ones docs/worker-protocol.md lists (Routes.workerRoutes).
        let workerRoutes = registered.filter { $0.path.hasPrefix(WorkerProtocolPaths.base) }
        #expect(Set(workerRoutes.map { "\($0.method) \($0.path)" }) == Set(Routes.workerRoutes.map { "\($0.method) \($0.path)" }))
    }
}

/// Listing routes decodes no image.
private struct UncheckedImages: ImageVerifier {
    func problem(with data: Data, format: ImageFormat, limits: ValidationLimits) -> String? { nil }
}
