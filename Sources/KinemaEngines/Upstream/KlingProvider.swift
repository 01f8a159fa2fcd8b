import Foundation
import KinemaCore
import Synchronization

/// Kling's own API (`POST /v1/videos/image2video`, `GET /v1/videos/image2video/{id}`): an HS256 JWT minted from the
/// access and secret keys, answers in an envelope `{code, message, request_id, data}`. Our task id goes over as
/// `external_task_id`, so a submit whose answer was lost is found again by it (and Kling refuses a second task with
/// the same one).
struct KlingProvider: UpstreamProvider {
    let endpoint: UpstreamEndpoint
    let token: KlingToken

    var name: String { "kling" }
    var displayName: String { "Kling" }

    static let path = "/v1/videos/image2video"

    private func auth() -> [(String, String)] { [("Authorization", "Bearer \(token.current())")] }

    func submit(_ job: RenderJob, taskID: UUID) throws -> UpstreamRequest {
        let request = job.request
        var json = JSONBytes(capacity: UpstreamRequest.capacity(job))
        json.object { body in
            body.key("model_name")
            body.string(endpoint.model)
            body.key("mode")
            body.string("std")
            body.key("image")
            body.base64(job.image)
            if let end = job.endImage {
                body.key("image_tail")
                body.base64(end)
            }
            if request.shots != nil {
                body.key("multi_shot")
                body.bool(true)
                body.key("shot_type")
                body.string("customize")
            }
            body.prompts(request) { item, index, shot in
                item.key("index")
                item.int(index)
                item.key("prompt")
                item.string(shot.prompt)
                item.key("duration")
                item.string(String(shot.duration))
            }
            body.key("cfg_scale")
            body.double(request.cfgScale)
            body.key("duration")
            body.string(String(request.duration))
            body.key("sound")
            body.string(request.sound ? "on" : "off")
            body.key("external_task_id")
            body.string(taskID.uuidString.lowercased())
        }
        return UpstreamRequest(method: .POST, url: endpoint.baseURL + Self.path, headers: auth(), body: Data(json.bytes), paid: true)
    }

    func readSubmit(_ response: UpstreamResponse) -> SubmitOutcome {
        switch envelope(response) {
        case .failure(let fault): return .fault(fault)
        case .success(let data):
            guard let id = JSONRead.string(data["task_id"]), !id.isEmpty else {
                return .fault(.transient("Kling accepted the submit but its answer has no task_id: \(response.snippet)"))
            }
            return .accepted(id: id)
        }
    }

    func poll(_ handle: UpstreamHandle) throws -> UpstreamRequest {
        UpstreamRequest(method: .GET, url: endpoint.baseURL + Self.path + "/" + Self.pathSegment(handle.id ?? ""), headers: auth())
    }

    func readPoll(_ response: UpstreamResponse) -> PollOutcome {
        switch envelope(response) {
        case .failure(let fault): return .fault(fault)
        case .success(let data):
            switch JSONRead.string(data["task_status"]) {
            case "succeed":
                let videos = JSONRead.array(JSONRead.object(data["task_result"])?["videos"])
                guard let url = JSONRead.string(videos?.first.flatMap { JSONRead.object($0) }?["url"]), !url.isEmpty else {
                    return .failed("Kling reported success without a video")
                }
                return .succeeded(videoURL: url, seed: nil)
            case "failed":
                let message = JSONRead.string(data["task_status_msg"]) ?? ""
                return .failed("Kling: " + (message.isEmpty ? "the task failed" : message))
            default:
                // submitted, processing, or a state this build does not know yet: still running.
                return .running(percent: nil)
            }
        }
    }

    /// Kling answers a query by `external_task_id` in the same path as by its own id.
    func lookup(taskID: UUID) -> UpstreamRequest? {
        UpstreamRequest(method: .GET, url: endpoint.baseURL + Self.path + "/" + taskID.uuidString.lowercased(), headers: auth())
    }

    func readLookup(_ response: UpstreamResponse) -> LookupOutcome {
        if response.status == 404 { return .notFound }
        switch envelope(response) {
        case .failure(.rejected):
            // Kling answers a query for a task it does not have with a parameter error.
            return .notFound
        case .failure(let fault): return .fault(fault)
        case .success(let data):
            guard let id = JSONRead.string(data["task_id"]), !id.isEmpty else { return .notFound }
            return .found(id: id)
        }
    }

    /// The envelope's `data`, or the fault its `code` (or the HTTP status) says.
    private func envelope(_ response: UpstreamResponse) -> Result<[String: Any], UpstreamFault> {
        let json = response.json
        let code = JSONRead.int(json?["code"])
        let message = JSONRead.string(json?["message"]) ?? response.snippet
        if let code, code != 0 { return .failure(Self.fault(code: code, message: message, retryAfter: response.retryAfter)) }
        guard (200...299).contains(response.status) else {
            return .failure(fault(status: response.status, detail: message, retryAfter: response.retryAfter))
        }
        guard code == 0, let data = JSONRead.object(json?["data"]) else {
            return .failure(.transient("Kling's answer could not be read: \(response.snippet)"))
        }
        return .success(data)
    }

    /// Kling's business codes: 1000–1004 authentication, 1100–1103 account (arrears, packages, permissions), 1200s
    /// invalid requests, 1300/1301 content policy, 1302 rate, 1303 concurrency, 1304 IP allow-list, 5000s server.
    static func fault(code: Int, message: String, retryAfter: Duration?) -> UpstreamFault {
        let detail = "Kling \(code): \(message)"
        switch code {
        case 1000...1004, 1100...1103, 1304: return .account(detail)
        case 1302, 1303: return .transient(detail, retryAfter: retryAfter)
        case 5000...5999: return .transient(detail, retryAfter: retryAfter)
        case 1200...1299, 1300, 1301: return .rejected(detail)
        default: return .transient(detail, retryAfter: retryAfter)
        }
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
    }
}

/// The HS256 JWT Kling authenticates with: `iss` = access key, `exp` 30 minutes ahead, `nbf` 5 seconds back, signed
/// with the secret key. Minted again when less than five minutes are left.
final class KlingToken: Sendable {
    private let accessKey: String
    private let secretKey: [UInt8]
    private let now: @Sendable () -> Date
    private let cached = Mutex<(token: String, expires: Date)?>(nil)

    static let lifetime: TimeInterval = 1800

    init(accessKey: String, secretKey: String, now: @escaping @Sendable () -> Date = { Date() }) {
        self.accessKey = accessKey
        self.secretKey = Array(secretKey.utf8)
        self.now = now
    }

    func current() -> String {
        let now = self.now()
        return cached.withLock { cache in
            if let cache, cache.expires.timeIntervalSince(now) > 300 { return cache.token }
            let issued = Int64(now.timeIntervalSince1970)
            let token = Self.mint(accessKey: accessKey, secretKey: secretKey, exp: issued + Int64(Self.lifetime), nbf: issued - 5)
            cache = (token, now.addingTimeInterval(Self.lifetime))
            return token
        }
    }

    static func mint(accessKey: String, secretKey: [UInt8], exp: Int64, nbf: Int64) -> String {
        let header = base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))
        let claims = (try? JSONRead.data(["iss": accessKey, "exp": exp, "nbf": nbf])) ?? Data()
        let signingInput = header + "." + base64URL(claims)
        let signature = SHA256.hmac(key: secretKey, message: Array(signingInput.utf8))
        return signingInput + "." + base64URL(Data(signature))
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
