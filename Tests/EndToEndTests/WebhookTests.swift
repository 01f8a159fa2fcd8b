import Foundation
import KinemaCore
import NIOHTTP1
import Synchronization
import Testing

/// A webhook receiver on loopback: answers as scripted (then 200), records every delivery, verifies signatures with
/// the Standard Webhooks algorithm (KinemaCore's, checked against the specification's example in its unit tests).
final class WebhookReceiver: Sendable {
    enum Reply: Sendable {
        case status(Int)
        case redirect(to: String)
        case hang
        /// `status` with a body of `bytes` bytes (a receiver that answers with a whole page).
        case large(status: Int, bytes: Int)
    }

    private final class State: Sendable {
        let value = Mutex<(received: [LoopbackServer.Received], script: [Reply])>(([], []))
    }

    private let box: State
    private let server: LoopbackServer

    init(port: Int = 0, script: [Reply] = []) async throws {
        let box = State()
        self.box = box
        box.value.withLock { $0.script = script }
        server = try await LoopbackServer(port: port) { request in
            let reply: Reply = box.value.withLock { s in
                s.received.append(request)
                return s.script.isEmpty ? .status(200) : s.script.removeFirst()
            }
            switch reply {
            case .status(let code): return LoopbackServer.Answer(status: code, headers: [], body: Data("answer \(code)".utf8))
            case .redirect(let location): return LoopbackServer.Answer(status: 302, headers: [("Location", location)], body: Data())
            case .hang: return nil
            case .large(let code, let bytes): return LoopbackServer.Answer(status: code, headers: [], body: Data(repeating: 0x61, count: bytes))
            }
        }
    }

    var port: Int { server.port }
    func url(_ path: String = "/hook") -> String { server.baseURL + path }
    var received: [LoopbackServer.Received] { box.value.withLock { $0.received } }
    func stop() async { await server.stop() }

    /// Waits (bounded) until `count` deliveries arrived; returns what arrived.
    func waitFor(_ count: Int, timeout: Duration = .seconds(60)) async throws -> [LoopbackServer.Received] {
        let deadline = ContinuousClock.now + timeout
        while received.count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        return received
    }

    static func verifies(_ r: LoopbackServer.Received, with secret: String) -> Bool {
        guard let secret = WebhookSecret(secret), let id = r.header("webhook-id"), let ts = r.header("webhook-timestamp").flatMap(Int64.init),
            let signature = r.header("webhook-signature")
        else { return false }
        return WebhookSignature.verify(header: signature, id: id, timestamp: ts, body: [UInt8](r.body), secret: secret)
    }
}

@Suite struct WebhookTests {
    typealias R = RemoteWorkerTests

    static func secret(_ server: ServerProcess, tenant: String? = nil, rotate: Bool = false) async throws -> String {
        let r = try await ServerProcess.cli(
            ["webhooks", "secret", "--data-dir", server.dataDir.path] + (tenant.map { ["--tenant", $0] } ?? []) + (rotate ? ["--rotate"] : []))
        let last = try #require(r.stdout.split(separator: "\n").last.map(String.init), "\(r.stdout)")
        #expect(r.status == 0 && last.hasPrefix("whsec_"), "\(r.stdout)")
        return last
    }

    static func submit(_ server: ServerProcess, key: String, webhook: String) async throws -> String {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let r = try await HTTP.submit(
            server.baseURL, key: key, json: ["image": png, "prompt": "zoom in", "duration": 3, "extra": ["webhook": ["url": webhook]]])
        return try #require(r.json["task_id"] as? String, "\(r.text)")
    }

    static func deliveries(_ server: ServerProcess, key: String, id: String) async throws -> [[String: Any]] {
        let r = try await HTTP.get(server.baseURL + "/v3/async/task-webhooks?task_id=\(id)", key: key)
        #expect(r.status == 200, "\(r.text)")
        return r.json["deliveries"] as? [[String: Any]] ?? []
    }

    /// Polls the deliveries route until the task's one delivery is no longer pending.
    static func settled(_ server: ServerProcess, key: String, id: String, timeout: Duration = .seconds(60)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let d = try await deliveries(server, key: key, id: id).first, d["status"] as? String != "pending" { return d }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the delivery of \(id) is still pending: \(try await deliveries(server, key: key, id: id))")
    }

    static func hex(_ id: String) -> String { "msg_" + id.replacingOccurrences(of: "-", with: "") }

    @Test func successFailureAndCancelEachDeliverOnceSignedAndARotationSignsWithBoth() async throws {
        let receiver = try await WebhookReceiver()
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--allow-fetch-from", "127.0.0.1/32"], workers: 0)
        let key = try #require(server.devKey)
        let secret = try await Self.secret(server)
        #expect(try await Self.secret(server) == secret, "asking again shows the same secret")
        #expect(try await Self.secret(server, tenant: "default") == secret, "the dev key's tenant is 'default'")
        let othersSecret = try await Self.secret(server, tenant: "other")
        #expect(othersSecret != secret, "each tenant has its own secret")
        let token = try await R.createToken(server)

        // Succeeded (a remote worker uploads a result), failed (it reports a failure), canceled (while queued).
        let ok = try await Self.submit(server, key: key, webhook: receiver.url("/ok"))
        let lease = try await R.claim(server, token: token, worker: "w", leaseSeconds: 60)
        let mp4 = try await R.makeMP4(seconds: 1)
        #expect(try await R.upload(server, token: token, id: ok, lease: lease.leaseID, body: mp4).status == 200)
        let bad = try await Self.submit(server, key: key, webhook: receiver.url("/bad"))
        let lease2 = try await R.claim(server, token: token, worker: "w", leaseSeconds: 60)
        let failed = try await R.post(
            server, "/tasks/\(bad)/fail", token: token, json: ["lease_id": lease2.leaseID, "reason": "the model refused", "retryable": false])
        #expect(failed.status == 200, "\(failed.text)")
        let canceled = try await Self.submit(server, key: key, webhook: receiver.url("/canceled"))
        #expect(try await CancelTests.cancel(server, key: key, id: canceled).status == 200)

        let arrived = try await receiver.waitFor(3)
        #expect(arrived.count == 3, "\(arrived.map(\.uri))")
        for (path, id, status, reason) in [
            ("/ok", ok, "TASK_STATUS_SUCCEED", ""), ("/bad", bad, "TASK_STATUS_FAILED", "the model refused"),
            ("/canceled", canceled, "TASK_STATUS_FAILED", "canceled"),
        ] {
            let r = try #require(arrived.first { $0.uri == path }, "nothing at \(path)")
            #expect(r.method == "POST")
            #expect(r.header("content-type") == "application/json")
            #expect(r.header("webhook-id") == Self.hex(id))
            let ts = try #require(r.header("webhook-timestamp").flatMap(Int64.init))
            #expect(abs(Double(ts) - Date().timeIntervalSince1970) < 120)
            #expect(WebhookReceiver.verifies(r, with: secret), "\(path): \(r.header("webhook-signature") ?? "unsigned")")
            #expect(!WebhookReceiver.verifies(r, with: WebhookSecret.generate().text))
            #expect(!WebhookReceiver.verifies(r, with: othersSecret), "another tenant's secret must not verify it")
            #expect(r.json["event_type"] as? String == "ASYNC_TASK_RESULT")
            let payload = try #require(r.json["payload"] as? [String: Any])
            let task = try #require(payload["task"] as? [String: Any])
            #expect(task["task_id"] as? String == id)
            #expect(task["status"] as? String == status)
            #expect(task["reason"] as? String == reason)
            let videos = try #require(payload["videos"] as? [[String: Any]])
            if status == "TASK_STATUS_SUCCEED" {
                // A URL, never the bytes: fetchable, and the stored result.
                let link = try #require(videos.first?["video_url"] as? String)
                #expect(try await HTTP.get(link).body == mp4)
            } else {
                #expect(videos.isEmpty)
            }
            let d = try #require(try await Self.deliveries(server, key: key, id: id).first)
            #expect(d["webhook_id"] as? String == Self.hex(id))
            #expect(d["url"] as? String == receiver.url(path))
            #expect(d["event_type"] as? String == "ASYNC_TASK_RESULT")
            #expect(d["status"] as? String == "delivered" || d["status"] as? String == "pending") // recorded just after the answer
        }
        // The README's receiver code, run as written, accepts a real delivery and refuses it with one byte changed.
        let delivered = try #require(arrived.first { $0.uri == "/ok" })
        #expect(try await Self.readmeVerifier(delivered, secret: secret) == "True False")
        let settled = try await Self.settled(server, key: key, id: ok)
        #expect(settled["status"] as? String == "delivered")
        #expect(settled["attempts"] as? Int == 1)
        #expect(settled["last_status_code"] as? Int == 200)
        #expect(settled["last_error"] is NSNull)
        #expect(settled["next_attempt_ms"] is NSNull)
        // The CLI prints the same.
        let listed = try await ServerProcess.cli(["webhooks", "list", "--task", ok, "--data-dir", server.dataDir.path])
        #expect(listed.status == 0 && listed.stdout.contains("\"status\":\"delivered\"") && listed.stdout.contains(Self.hex(ok)), "\(listed.stdout)")

        // Rotation: for a day, each delivery carries two signatures, one per secret.
        let rotated = try await Self.secret(server, rotate: true)
        #expect(rotated != secret)
        let later = try await Self.submit(server, key: key, webhook: receiver.url("/later"))
        _ = try await CancelTests.cancel(server, key: key, id: later)
        let fourth = try #require(try await receiver.waitFor(4).first { $0.uri == "/later" })
        #expect(fourth.header("webhook-signature")?.split(separator: " ").count == 2)
        #expect(WebhookReceiver.verifies(fourth, with: secret))
        #expect(WebhookReceiver.verifies(fourth, with: rotated))

        // Exactly once each: nothing more arrives.
        try await Task.sleep(for: .seconds(2))
        #expect(receiver.received.count == 4, "\(receiver.received.map(\.uri))")
        await server.terminate()
        await receiver.stop()
    }

    @Test func failedAttemptsAreRetriedWithOneIdRedirectsAreNotFollowedAndSilenceFailsInTheEnd() async throws {
        let receiver = try await WebhookReceiver(script: [])
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(
            ["--allow-fetch-from", "127.0.0.1/32", "--webhook-max-attempts", "3", "--webhook-backoff", "0.2", "--webhook-timeout-seconds", "0.5"],
            workers: 0)
        let key = try #require(server.devKey)

        // One receiver per behaviour, each on its own path of one server: scripted per path.
        let flaky = try await WebhookReceiver(script: [.status(500), .status(500), .status(200)])
        let redirecting = try await WebhookReceiver(script: [
            .redirect(to: receiver.url("/elsewhere")), .redirect(to: receiver.url("/elsewhere")), .status(307),
        ])
        let silent = try await WebhookReceiver(script: [.hang, .hang, .hang])
        // Answers far over the 64 KiB read: a 2 MB 200 is a delivery, a 2 MB 500 a failed attempt with its excerpt.
        let verbose = try await WebhookReceiver(script: [.large(status: 500, bytes: 2_000_000), .large(status: 200, bytes: 2_000_000)])
        let a = try await Self.submit(server, key: key, webhook: flaky.url())
        let b = try await Self.submit(server, key: key, webhook: redirecting.url())
        let c = try await Self.submit(server, key: key, webhook: silent.url())
        let d = try await Self.submit(server, key: key, webhook: verbose.url())
        for id in [a, b, c, d] { _ = try await CancelTests.cancel(server, key: key, id: id) }

        let delivered = try await Self.settled(server, key: key, id: a)
        #expect(delivered["status"] as? String == "delivered", "\(delivered)")
        #expect(delivered["attempts"] as? Int == 3)
        #expect(delivered["last_status_code"] as? Int == 200)
        #expect(flaky.received.count == 3)
        #expect(Set(flaky.received.compactMap { $0.header("webhook-id") }) == [Self.hex(a)], "one id across retries")
        let gaps = zip(flaky.received, flaky.received.dropFirst()).map { $1.at.timeIntervalSince($0.at) }
        #expect(gaps.allSatisfy { $0 >= 0.1 }, "retried after a backoff: \(gaps)")

        let redirected = try await Self.settled(server, key: key, id: b)
        #expect(redirected["status"] as? String == "failed", "\(redirected)")
        #expect(redirected["attempts"] as? Int == 3)
        #expect(redirected["last_status_code"] as? Int == 307)
        #expect((redirected["last_error"] as? String)?.contains("redirect") == true, "\(redirected)")
        #expect(redirecting.received.count == 3)
        #expect(!receiver.received.contains { $0.uri == "/elsewhere" }, "a redirect was followed")

        let unanswered = try await Self.settled(server, key: key, id: c)
        #expect(unanswered["status"] as? String == "failed", "\(unanswered)")
        #expect(unanswered["attempts"] as? Int == 3)
        #expect(unanswered["last_status_code"] is NSNull)
        #expect((unanswered["last_error"] as? String)?.contains("did not answer within 0.5 seconds") == true, "\(unanswered)")
        #expect(silent.received.count == 3)

        let large = try await Self.settled(server, key: key, id: d)
        #expect(large["status"] as? String == "delivered", "\(large)")
        #expect(large["attempts"] as? Int == 2)
        #expect(large["last_status_code"] as? Int == 200)
        #expect(verbose.received.count == 2)
        await server.terminate()
        for r in [receiver, flaky, redirecting, silent, verbose] { await r.stop() }
    }

    @Test func aWebhookRecordedBeforeAKillIsDeliveredAfterTheRestartOnce() async throws {
        // The receiver's port is known but nothing listens yet: attempts fail until it is up.
        let placeholder = try await WebhookReceiver()
        let port = placeholder.port
        await placeholder.stop()
        let server = try ServerProcess()
        defer { server.removeData() }
        let options = ["--allow-fetch-from", "127.0.0.1/32", "--webhook-backoff", "0.5"]
        try await server.start(options, workers: 0)
        let key = try #require(server.devKey)
        let token = try await R.createToken(server)
        let id = try await Self.submit(server, key: key, webhook: "http://127.0.0.1:\(port)/hook")
        let lease = try await R.claim(server, token: token, worker: "w", leaseSeconds: 60)
        #expect(try await R.upload(server, token: token, id: id, lease: lease.leaseID, body: try await R.makeMP4(seconds: 1)).status == 200)
        // Killed the moment the task is terminal: the event was committed with it.
        await server.kill9()
        let rows = try await Tools.run(
            "sqlite3", [server.dataDir.appendingPathComponent("kinema.sqlite").path, "SELECT status, webhook_id FROM webhook_deliveries"])
        #expect(rows.output.trimmingCharacters(in: .whitespacesAndNewlines) == "pending|\(Self.hex(id))", "\(rows.output)")

        let receiver = try await WebhookReceiver(port: port)
        try await server.start(options, workers: 0)
        let arrived = try await receiver.waitFor(1)
        #expect(arrived.first?.header("webhook-id") == Self.hex(id))
        #expect(((arrived.first?.json["payload"] as? [String: Any])?["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")
        let settled = try await Self.settled(server, key: key, id: id)
        #expect(settled["status"] as? String == "delivered", "\(settled)")
        try await Task.sleep(for: .seconds(2))
        #expect(receiver.received.count == 1, "delivered once")
        await server.terminate()
        await receiver.stop()
    }

    @Test func badWebhookURLsAreRefusedAtSubmitAndRefusedAddressesFailAtOnce() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0) // no --allow-fetch-from: loopback is refused, for webhooks as for images
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let long = "https://hooks.example/" + String(repeating: "a", count: 2048)
        for bad: Any in ["", "ftp://hooks.example/x", "https://", "https://u:p@hooks.example/", "not a url", long, 5, ["u"]] {
            let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "a", "extra": ["webhook": ["url": bad]]])
            #expect(r.status == 400, "\(bad): \(r.text)")
            #expect(r.json["reason"] as? String == "INVALID_REQUEST_BODY", "\(r.text)")
            #expect((r.json["metadata"] as? [String: String])?["field"] == "extra.webhook.url", "\(bad): \(r.text)")
        }
        let notObject = try await HTTP.submit(
            server.baseURL, key: key, json: ["image": png, "prompt": "a", "extra": ["webhook": "https://x.example"]])
        #expect(notObject.status == 400 && (notObject.json["metadata"] as? [String: String])?["field"] == "extra.webhook", "\(notObject.text)")
        #expect(server.storedInputs().isEmpty, "a refused submit stored nothing")

        // The deliveries route: the contract's errors, and [] for a task without a webhook.
        #expect(try await HTTP.get(server.baseURL + "/v3/async/task-webhooks", key: key).status == 400)
        #expect(try await HTTP.get(server.baseURL + "/v3/async/task-webhooks?task_id=\(UUID())", key: key).status == 404)
        #expect(try await HTTP.get(server.baseURL + "/v3/async/task-webhooks?task_id=\(UUID())").json["reason"] as? String == "MISSING_API_KEY")
        #expect(try await HTTP.get(server.baseURL + "/v3/async/task-webhooks?task_id=\(UUID())", key: "sk_nope").status == 403)
        let plain = try #require(try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "a"]).json["task_id"] as? String)
        _ = try await CancelTests.cancel(server, key: key, id: plain)
        #expect(try await Self.deliveries(server, key: key, id: plain).isEmpty)
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", "other", "--data-dir", server.dataDir.path])
        let otherKey = try #require(created.stdout.split(separator: "\n").last.map(String.init))

        // A target the address rules refuse fails at its first attempt, saying why; nothing is sent.
        let receiver = try await WebhookReceiver()
        let id = try await Self.submit(server, key: key, webhook: receiver.url())
        _ = try await CancelTests.cancel(server, key: key, id: id)
        let refused = try await Self.settled(server, key: key, id: id)
        #expect(refused["status"] as? String == "failed" && refused["attempts"] as? Int == 1, "\(refused)")
        #expect((refused["last_error"] as? String)?.contains("refused") == true, "\(refused)")
        #expect(receiver.received.isEmpty)
        #expect(try await HTTP.get(server.baseURL + "/v3/async/task-webhooks?task_id=\(id)", key: otherKey).status == 404)
        await server.terminate()
        await receiver.stop()
    }

    /// What the README's Python verifier says of `delivery` as received, then of it with a byte added to the body.
    static func readmeVerifier(_ delivery: LoopbackServer.Received, secret: String) async throws -> String {
        let readme = try String(contentsOf: ReadmeWalkthrough.readme, encoding: .utf8)
        guard let intro = readme.range(of: "Verifying a delivery in a receiver"),
            let start = readme.range(of: "```python\n", range: intro.upperBound..<readme.endIndex),
            let end = readme.range(of: "```", range: start.upperBound..<readme.endIndex)
        else { throw TestFailure("the README has no Python verifier") }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("readme-verifier-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let headers = Dictionary(delivery.headers.map { ($0.0.lowercased(), $0.1) }, uniquingKeysWith: { first, _ in first })
        try JSONSerialization.data(withJSONObject: headers).write(to: dir.appendingPathComponent("headers.json"))
        try delivery.body.write(to: dir.appendingPathComponent("body"))
        let script =
            String(readme[start.upperBound..<end.lowerBound]) + """

                import json, sys
                headers = json.load(open(sys.argv[1]))
                body = open(sys.argv[2], "rb").read()
                print(verified(headers, body, sys.argv[3]), verified(headers, body + b" ", sys.argv[3]))
                """
        try Data(script.utf8).write(to: dir.appendingPathComponent("verify.py"))
        let r = try await Tools.run(
            "python3",
            [
                dir.appendingPathComponent("verify.py").path, dir.appendingPathComponent("headers.json").path,
                dir.appendingPathComponent("body").path, secret,
            ])
        guard r.status == 0 else { throw TestFailure("the README's verifier failed: \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
