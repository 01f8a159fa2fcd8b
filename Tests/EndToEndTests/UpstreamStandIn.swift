import Foundation
import KinemaCore
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A hosted provider, played on loopback by the test suite: Novita, Kling or fal, each in its documented wire format.
///
/// It checks authentication (Kling: the JWT's HS256 signature, `iss`, `exp` and `nbf`), records every request, runs
/// its tasks through queued → running → done as it is polled, serves the finished video, and misbehaves on demand
/// (`Fault`s queued per step, a broken account, tasks held running, hanging answers, expired video URLs).
final class UpstreamStandIn: Sendable {
    enum Kind: String, Sendable { case novita, kling, fal }

    /// A misbehaviour for the next request of a step.
    enum Fault: Sendable, Equatable {
        /// An HTTP status with the provider's usual error body (and `Retry-After: 0` for 429).
        case status(Int)
        /// Kling: HTTP 200/429 with this business code in the envelope.
        case klingCode(Int)
        /// A 429 (the provider's usual body) asking to come back in this many seconds.
        case rateLimited(retryAfter: Int)
        /// Records the request (a submit creates its task), then never answers.
        case hang
    }

    typealias Received = LoopbackServer.Received
    typealias Answer = LoopbackServer.Answer

    struct UpTask: Sendable {
        var id: String
        var externalID: String?
        var polls = 0
        var hold = false
        var fail: String?
        /// When its submit arrived.
        var created = Date()
    }

    struct State: Sendable {
        var requests: [Received] = []
        var tasks: [UpTask] = []
        var submitFaults: [Fault] = []
        var pollFaults: [Fault] = []
        var accountBroken = false
        var holdNewTasks = false
        var failNewTasks: String?
        var expiredVideos = false
        /// The result URL serves this instead of the MP4 (a provider that hands out an error page as "the video").
        var videoReplacement: Data?
        /// Polls that answer "running" before a task succeeds.
        var runningPolls = 2
        /// A task also answers "running" until this long after its submit arrived.
        var runningSeconds: TimeInterval = 0
    }

    let kind: Kind
    let video: Data
    let secret: String
    let accessKey = "ak-standin-access"
    private let state = Mutex(State())
    private let server: LoopbackServer
    var port: Int { server.port }

    var baseURL: String { server.baseURL }

    /// The environment `kinema serve` needs to use this stand-in's credentials.
    var environment: [String: String] {
        switch kind {
        case .novita: ["KINEMA_NOVITA_API_KEY": secret]
        case .kling: ["KINEMA_KLING_ACCESS_KEY": accessKey, "KINEMA_KLING_SECRET_KEY": secret]
        case .fal: ["KINEMA_FAL_KEY": secret]
        }
    }

    /// `kinema serve` options pointing the provider at this stand-in (and letting results be fetched from loopback).
    var serveOptions: [String] {
        ["--engine", kind.rawValue, "--upstream-\(kind.rawValue)-url", baseURL, "--allow-fetch-from", "127.0.0.1/32"]
    }

    init(_ kind: Kind, video: Data) async throws {
        self.kind = kind
        self.video = video
        self.secret = "sk-standin-\(UUID().uuidString.lowercased())"
        let box = HandlerBox()
        server = try await LoopbackServer { request in box.server.withLock { $0 }?.answer(request) }
        box.server.withLock { $0 = self }
    }

    func stop() async { await server.stop() }

    // MARK: What the test sees and steers

    var requests: [Received] { state.withLock { $0.requests } }
    var submits: [Received] { requests.filter { $0.method == "POST" } }
    /// Status polls (not result reads, not video downloads).
    var polls: [Received] {
        requests.filter { r in
            let path = r.uri.split(separator: "?").first.map(String.init) ?? r.uri
            guard r.method == "GET" else { return false }
            switch kind {
            case .novita: return path == "/v3/async/task-result"
            case .kling: return path.hasPrefix("/v1/videos/image2video/")
            case .fal: return path.hasSuffix("/status")
            }
        }
    }
    var tasks: [UpTask] { state.withLock { $0.tasks } }
    func steer(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }
    /// Lets every held task finish on its next poll.
    func releaseHeldTasks() {
        state.withLock { s in
            for i in s.tasks.indices { s.tasks[i].hold = false }; s.holdNewTasks = false
        }
    }

    // MARK: Answers

    /// The answer to `request`, or `nil` to hang.
    func answer(_ request: Received) -> Answer? {
        state.withLock { $0.requests.append(request) }
        let path = request.uri.split(separator: "?").first.map(String.init) ?? request.uri
        if path.hasPrefix("/videos/") {
            if state.withLock({ $0.expiredVideos }) { return Answer(status: 403, headers: [], body: Data("expired".utf8)) }
            return Answer(status: 200, headers: [("Content-Type", "video/mp4")], body: state.withLock { $0.videoReplacement } ?? video)
        }
        if let refusal = authRefusal(request) { return refusal }
        let isSubmit = request.method == "POST"
        let fault: Fault? = state.withLock { s in
            if s.accountBroken { return .status(-1) }
            if isSubmit { return s.submitFaults.isEmpty ? nil : s.submitFaults.removeFirst() }
            return s.pollFaults.isEmpty ? nil : s.pollFaults.removeFirst()
        }
        if fault == .status(-1) { return accountAnswer() }
        if let fault, fault != .hang { return faultAnswer(fault) }
        if isSubmit {
            let id = "up-\(UUID().uuidString.prefix(8).lowercased())"
            state.withLock { s in
                s.tasks.append(UpTask(id: id, externalID: request.json["external_task_id"] as? String, hold: s.holdNewTasks, fail: s.failNewTasks))
            }
            if fault == .hang { return nil }
            return submitAnswer(id: id)
        }
        if fault == .hang { return nil }
        return pollAnswer(path: path, query: request.uri.split(separator: "?").dropFirst().first.map(String.init) ?? "")
    }

    private func authRefusal(_ request: Received) -> Answer? {
        let auth = request.headers.first { $0.0.lowercased() == "authorization" }?.1 ?? ""
        switch kind {
        case .novita:
            if auth != "Bearer \(secret)" {
                return .json(["code": 403, "reason": "INVALID_API_KEY", "message": "bad key", "metadata": [:]], status: 403)
            }
        case .fal:
            if auth != "Key \(secret)" { return .json(["detail": "Invalid key"], status: 401) }
        case .kling:
            if let problem = JWTCheck.problem(auth, accessKey: accessKey, secret: secret) {
                return .json(["code": 1002, "message": "auth failed: \(problem)", "request_id": "r"], status: 401)
            }
        }
        return nil
    }

    private func accountAnswer() -> Answer {
        switch kind {
        case .novita: .json(["code": 403, "reason": "NOT_ENOUGH_BALANCE", "message": "insufficient balance", "metadata": [:]], status: 403)
        case .kling: .json(["code": 1102, "message": "resource pack exhausted", "request_id": "r"], status: 429)
        case .fal: .json(["detail": "User is locked. Reason: Exhausted balance."], status: 403)
        }
    }

    private func faultAnswer(_ fault: Fault) -> Answer {
        switch fault {
        case .klingCode(let code):
            return .json(
                ["code": code, "message": "code \(code) from the stand-in", "request_id": "r"], status: code == 1303 || code == 1302 ? 429 : 400)
        case .status(let status):
            var answer: Answer =
                switch kind {
                case .novita:
                    .json(["code": status, "reason": "STANDIN_\(status)", "message": "stand-in says \(status)", "metadata": [:]], status: status)
                case .kling:
                    .json(
                        ["code": status == 429 ? 1302 : status >= 500 ? 5000 : 1201, "message": "stand-in says \(status)", "request_id": "r"],
                        status: status)
                case .fal: .json(["detail": "stand-in says \(status)"], status: status)
                }
            if status == 429 { answer.headers.append(("Retry-After", "0")) }
            return answer
        case .rateLimited(let seconds):
            var answer = faultAnswer(.status(429))
            answer.headers.removeAll { $0.0 == "Retry-After" }
            answer.headers.append(("Retry-After", String(seconds)))
            return answer
        case .hang:
            return .json([:], status: 500)
        }
    }

    private func submitAnswer(id: String) -> Answer {
        switch kind {
        case .novita:
            return .json(["task_id": id])
        case .kling:
            return .json(["code": 0, "message": "SUCCEED", "request_id": "r", "data": ["task_id": id, "task_status": "submitted"]])
        case .fal:
            // Deliberately not under the model path: a client must follow these URLs, not build its own.
            let base = "\(baseURL)/elsewhere/requests/\(id)"
            return .json(["request_id": id, "status_url": base + "/status", "response_url": base, "cancel_url": base + "/cancel"])
        }
    }

    private func pollAnswer(path: String, query: String) -> Answer {
        let id: String?
        switch kind {
        case .novita: id = query.split(separator: "&").first { $0.hasPrefix("task_id=") }.map { String($0.dropFirst(8)) }
        case .kling: id = path.split(separator: "/").last.map(String.init)
        case .fal:
            let parts = path.split(separator: "/").map(String.init)
            id = parts.firstIndex(of: "requests").flatMap { $0 + 1 < parts.count ? parts[$0 + 1] : nil }
        }
        let falResult = kind == .fal && !path.hasSuffix("/status")
        let found: UpTask? = state.withLock { s in
            guard let index = s.tasks.firstIndex(where: { $0.id == id || ($0.externalID != nil && $0.externalID == id) }) else { return nil }
            if !falResult { s.tasks[index].polls += 1 }
            return s.tasks[index]
        }
        guard let task = found else {
            switch kind {
            case .novita: return .json(["code": 404, "reason": "TASK_NOT_FOUND", "message": "no such task", "metadata": [:]], status: 404)
            case .kling: return .json(["code": 1201, "message": "task not found", "request_id": "r"], status: 400)
            case .fal: return .json(["detail": "Request not found"], status: 404)
            }
        }
        let (runningPolls, runningSeconds) = state.withLock { ($0.runningPolls, $0.runningSeconds) }
        let done = !task.hold && task.polls > runningPolls && Date() >= task.created.addingTimeInterval(runningSeconds)
        let videoURL = "\(baseURL)/videos/\(task.id).mp4?sig=\(task.polls)"
        switch kind {
        case .novita:
            let status =
                !done
                ? (task.polls <= 1 ? "TASK_STATUS_QUEUED" : "TASK_STATUS_PROCESSING")
                : task.fail == nil ? "TASK_STATUS_SUCCEED" : "TASK_STATUS_FAILED"
            return .json([
                "extra": ["seed": "77"],
                "task": ["task_id": task.id, "status": status, "reason": done ? task.fail ?? "" : "", "eta": 5, "progress_percent": done ? 100 : 40],
                "videos": done && task.fail == nil ? [["video_url": videoURL, "video_url_ttl": "3600", "video_type": "mp4"]] : [],
                "images": [], "audios": [],
            ])
        case .kling:
            var data: [String: Any] = [
                "task_id": task.id, "task_status": !done ? (task.polls <= 1 ? "submitted" : "processing") : task.fail == nil ? "succeed" : "failed",
                "task_info": ["external_task_id": task.externalID ?? ""],
            ]
            if done, let fail = task.fail { data["task_status_msg"] = fail }
            if done, task.fail == nil { data["task_result"] = ["videos": [["id": "v1", "url": videoURL, "duration": "5"]]] }
            return .json(["code": 0, "message": "SUCCEED", "request_id": "r", "data": data])
        case .fal:
            if falResult {
                guard done else { return .json(["detail": "Request is still in progress"], status: 400) }
                if let fail = task.fail { return .json(["detail": [["msg": fail, "type": "content_policy_violation"]]], status: 422) }
                return .json(["video": ["url": videoURL, "content_type": "video/mp4"], "seed": 77])
            }
            return .json(["status": done ? "COMPLETED" : (task.polls <= 1 ? "IN_QUEUE" : "IN_PROGRESS"), "request_id": task.id])
        }
    }
}

/// Verifies a Kling bearer JWT as Kling does: HS256 over `header.claims` with the secret key, `iss` the access key,
/// `nbf` not in the future, `exp` in the future and at most 30 minutes (plus slack) away.
enum JWTCheck {
    static func problem(_ authorization: String, accessKey: String, secret: String) -> String? {
        guard authorization.hasPrefix("Bearer ") else { return "no bearer token" }
        let parts = authorization.dropFirst(7).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let header = decode(parts[0]), let claims = decode(parts[1]), let signature = decode(parts[2]) else {
            return "not a JWT"
        }
        guard (try? JSONSerialization.jsonObject(with: header)) as? [String: String] == ["alg": "HS256", "typ": "JWT"] else { return "wrong header" }
        let expected = SHA256.hmac(key: Array(secret.utf8), message: Array("\(parts[0]).\(parts[1])".utf8))
        guard constantTimeEquals(expected, Array(signature)) else { return "bad signature" }
        guard let json = (try? JSONSerialization.jsonObject(with: claims)) as? [String: Any], json["iss"] as? String == accessKey,
            let exp = (json["exp"] as? NSNumber)?.doubleValue, let nbf = (json["nbf"] as? NSNumber)?.doubleValue
        else { return "missing claims" }
        let now = Date().timeIntervalSince1970
        guard nbf <= now + 1 else { return "not valid yet" }
        guard exp > now, exp <= now + 1800 + 60 else { return "expired or too long-lived" }
        return nil
    }

    static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// The stand-in a connection's handler answers for (set once the server is up).
private final class HandlerBox: Sendable {
    let server = Mutex<UpstreamStandIn?>(nil)
}
