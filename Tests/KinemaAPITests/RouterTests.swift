import Foundation
import Hummingbird
import HummingbirdTesting
@testable import KinemaAPI
import KinemaAPIModels
import KinemaCore
import KinemaStore
import KinemaStoreSQLite
import KinemaWorker
import Logging
import Testing

/// The API's error mapping, authentication and validation, called in process through Hummingbird's router test
/// framework: no sockets, no subprocess, no render. The flows (submit, render, poll, download) are end-to-end tests.
@Suite struct RouterTests {
    /// A node over a fresh data directory, its router, and a live API key and worker token.
    struct Node {
        let server: KinemaServer
        let store: SQLiteTaskStore
        let key: String
        let workerToken: String
        let directory: URL

        init(engines: [String] = [EngineNames.motion]) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-router-\(UUID().uuidString)")
            let data = try DataDirectory(directory)
            store = try data.openStore()
            var configuration = ServerConfiguration(dataDirectory: directory)
            configuration.engines = engines
            server = KinemaServer(
                configuration: configuration, store: store, blobs: try data.openBlobs(), engine: NoEngine(),
                imageVerifier: RefusingVerifier(), signingSecret: [UInt8](repeating: 7, count: 32), nodeID: "router",
                logger: Logger(label: "router-tests")
            )
            key = Credential.generate(.apiKey)
            try await store.insertCredential(.new(.apiKey, secret: key, owner: "acme"))
            workerToken = Credential.generate(.workerToken)
            try await store.insertCredential(.new(.workerToken, secret: workerToken, owner: "gpu-box"))
        }

        /// Runs `body` against the node's router in process.
        func test(_ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
            defer { try? FileManager.default.removeItem(at: directory) }
            let app = Application(router: server.makeRouter(signal: WorkSignal(), draining: DrainState()))
            try await app.test(.router, body)
        }
    }

    /// Never runs: router tests render nothing.
    struct NoEngine: VideoEngine {
        var name: String { "none" }
        func render(_ job: RenderJob, to output: URL, progress: @escaping @Sendable (RenderProgress) -> Void) async throws {
            throw EngineError("router tests render nothing", retryable: false)
        }
    }

    /// Says every image is undecodable, so a request that passes every other check ends at the image check.
    struct RefusingVerifier: ImageVerifier {
        func problem(with data: Data, format: ImageFormat, limits: ValidationLimits) -> String? { "refused by the test's verifier" }
    }

    /// The body as the contract's error shape.
    static func error(_ response: TestResponse) throws -> (code: Int, reason: String, message: String, metadata: [String: String]) {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
        return (
            try #require(json["code"] as? Int), try #require(json["reason"] as? String), try #require(json["message"] as? String),
            try #require(json["metadata"] as? [String: String])
        )
    }

    static func expectError(
        _ response: TestResponse, _ status: HTTPResponse.Status, _ reason: String, field: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        let body = try error(response)
        #expect(body.code == Int(status.code), sourceLocation: sourceLocation)
        #expect(body.reason == reason, "\(body.message)", sourceLocation: sourceLocation)
        #expect(!body.message.isEmpty, sourceLocation: sourceLocation)
        if let field { #expect(body.metadata["field"] == field, "\(body)", sourceLocation: sourceLocation) }
        #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    }

    static func bearer(_ secret: String) -> HTTPFields { [.authorization: "Bearer \(secret)", .contentType: "application/json"] }

    /// A PNG header that passes the header checks (800×600), with a body the test's verifier refuses.
    static let pngBase64: String = {
        var ihdr: [UInt8] = [0, 0, 3, 32, 0, 0, 2, 88, 8, 6, 0, 0, 0]
        let crc = crc32(Array("IHDR".utf8) + ihdr)
        ihdr = [0, 0, 0, 13] + Array("IHDR".utf8) + ihdr + [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)]
        return Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + ihdr + [UInt8](repeating: 0, count: 64)).base64EncodedString()
    }()

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    @Test func requestsWithoutAValidKeyAreRefusedInTheContractsShape() async throws {
        let node = try await Node()
        let otherKind = node.workerToken
        try await node.test { client in
            let submit = Routes.submit
            try Self.expectError(try await client.execute(uri: submit, method: .post, body: ByteBuffer(string: "{}")), .badRequest, "MISSING_API_KEY")
            try Self.expectError(
                try await client.execute(uri: submit, method: .post, headers: Self.bearer("kin_nope"), body: ByteBuffer(string: "{}")),
                .forbidden, "INVALID_API_KEY")
            // A worker token is never an API key.
            try Self.expectError(
                try await client.execute(uri: Routes.taskResult + "?task_id=\(UUID())", method: .get, headers: Self.bearer(otherKind)),
                .forbidden, "INVALID_API_KEY")
            try Self.expectError(try await client.execute(uri: "/v3/async/nope", method: .get), .notFound, "API_NOT_FOUND")
        }
    }

    @Test func workerRoutesTakeOnlyWorkerTokens() async throws {
        let node = try await Node()
        let key = node.key
        try await node.test { client in
            let claim = WorkerRoute.claim.path()
            try Self.expectError(
                try await client.execute(uri: claim, method: .post, body: ByteBuffer(string: "{}")), .unauthorized, "MISSING_WORKER_TOKEN")
            try Self.expectError(
                try await client.execute(uri: claim, method: .post, headers: Self.bearer(key), body: ByteBuffer(string: "{}")),
                .forbidden, "INVALID_WORKER_TOKEN")
        }
    }

    @Test func badBodiesNameTheirFieldAndStoreNothing() async throws {
        let node = try await Node()
        let key = node.key
        let png = Self.pngBase64
        let cases: [(body: String, reason: String, field: String)] = [
            ("{", "INVALID_REQUEST_BODY", ""),
            (#"{"prompt": "x"}"#, "INVALID_REQUEST_BODY", "image"),
            (#"{"image": "\#(png)", "prompt": "x", "duration": 2}"#, "INVALID_REQUEST_BODY", "duration"),
            (#"{"image": "\#(png)", "prompt": "x", "cfg_scale": 1.5}"#, "INVALID_REQUEST_BODY", "cfg_scale"),
            (#"{"image": "\#(png)", "prompt": "x", "extra": {"engine": "fal"}}"#, "INVALID_REQUEST_BODY", "extra.engine"),
            (#"{"image": "\#(png)", "prompt": "\#(String(repeating: "a", count: 2501))"}"#, "INVALID_REQUEST_BODY", "prompt"),
            // Everything else is valid: the image check (the test's verifier) is the last word.
            (#"{"image": "\#(png)", "prompt": "x"}"#, "INVALID_IMAGE_FORMAT", "image"),
        ]
        try await node.test { client in
            for c in cases {
                let response = try await client.execute(
                    uri: Routes.submit, method: .post, headers: Self.bearer(key), body: ByteBuffer(string: c.body))
                try Self.expectError(response, .badRequest, c.reason, field: c.field)
            }
        }
        #expect(try await node.store.countByStatus().values.reduce(0, +) == 0)
    }

    @Test func anUnknownOrForeignTaskIsNotFound() async throws {
        let node = try await Node()
        let key = node.key
        try await node.test { client in
            try Self.expectError(
                try await client.execute(uri: Routes.taskResult + "?task_id=\(UUID())", method: .get, headers: Self.bearer(key)),
                .notFound, "TASK_NOT_FOUND")
            let missing = try await client.execute(uri: Routes.taskResult, method: .get, headers: Self.bearer(key))
            #expect(missing.status == .badRequest)
            #expect(try Self.error(missing).metadata["field"] == "task_id")
        }
    }

    @Test func theOpenAPIDocumentStatesTheLimitsValidationEnforces() async throws {
        let node = try await Node()
        try await node.test { client in
            let response = try await client.execute(uri: Routes.openAPI, method: .get)
            #expect(response.status == .ok)
            let yaml = String(buffer: response.body)
            let limits = ValidationLimits()
            #expect(yaml.contains("minimum: \(limits.minDuration), maximum: \(limits.maxDuration), default: \(GenerationRequest.defaultDuration)"))
            #expect(yaml.contains("maxItems: \(limits.maxShots)"))
            #expect(yaml.contains("maxLength: \(limits.maxPromptLength)"))
            #expect(yaml.contains("default: \(GenerationRequest.defaultCfgScale)"))
            #expect(!yaml.contains("\\#("))
        }
    }
}
