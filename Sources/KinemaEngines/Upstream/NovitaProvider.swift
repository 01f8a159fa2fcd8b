import Foundation
import KinemaCore

/// Novita's hosted Kling v3.0 Standard image-to-video: the very contract Kinema serves (`api-contract.md`), so the
/// request goes over as it came in, and the task result reads like ours. `Authorization: Bearer KEY`.
struct NovitaProvider: UpstreamProvider {
    let endpoint: UpstreamEndpoint
    let apiKey: String

    var name: String { "novita" }
    var displayName: String { "Novita" }

    static let submitPath = "/v3/async/kling-v3.0-std-i2v"
    static let resultPath = "/v3/async/task-result"

    private var auth: [(String, String)] { [("Authorization", "Bearer \(apiKey)")] }

    func submit(_ job: RenderJob, taskID: UUID) throws -> UpstreamRequest {
        let request = job.request
        var json = JSONBytes(capacity: UpstreamRequest.capacity(job))
        json.object { body in
            body.key("image")
            body.base64(job.image)
            if let end = job.endImage {
                body.key("end_image")
                body.base64(end)
            }
            body.prompts(request) { item, _, shot in
                item.key("prompt")
                item.string(shot.prompt)
                item.key("duration")
                item.int(shot.duration)
            }
            body.key("duration")
            body.int(request.duration)
            body.key("cfg_scale")
            body.double(request.cfgScale)
            body.key("sound")
            body.bool(request.sound)
            // An extension of ours; the hosted API ignores fields it does not know.
            body.key("seed")
            body.int(Int(request.seed))
        }
        return UpstreamRequest(method: .POST, url: endpoint.baseURL + Self.submitPath, headers: auth, body: Data(json.bytes), paid: true)
    }

    func readSubmit(_ response: UpstreamResponse) -> SubmitOutcome {
        guard (200...299).contains(response.status) else { return .fault(errorFault(response)) }
        guard let id = JSONRead.string(response.json?["task_id"]), !id.isEmpty else {
            return .fault(.transient("Novita accepted the submit but its answer has no task_id: \(response.snippet)"))
        }
        return .accepted(id: id)
    }

    func poll(_ handle: UpstreamHandle) throws -> UpstreamRequest {
        let id = handle.id?.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
        return UpstreamRequest(method: .GET, url: endpoint.baseURL + Self.resultPath + "?task_id=" + id, headers: auth)
    }

    func readPoll(_ response: UpstreamResponse) -> PollOutcome {
        guard (200...299).contains(response.status) else { return .fault(errorFault(response)) }
        guard let json = response.json, let task = JSONRead.object(json["task"]) else {
            return .fault(.transient("Novita's task result could not be read: \(response.snippet)"))
        }
        let percent = JSONRead.int(task["progress_percent"])
        switch JSONRead.string(task["status"]) {
        case "TASK_STATUS_SUCCEED":
            let video = JSONRead.array(json["videos"])?.first.flatMap { JSONRead.object($0) }
            guard let url = JSONRead.string(video?["video_url"]), !url.isEmpty else {
                return .failed("Novita reported success without a video")
            }
            return .succeeded(videoURL: url, seed: JSONRead.string(JSONRead.object(json["extra"])?["seed"]))
        case "TASK_STATUS_FAILED":
            let reason = JSONRead.string(task["reason"]) ?? ""
            return .failed("Novita: " + (reason.isEmpty ? "the task failed" : reason))
        default:
            // Queued, processing, or a state this build does not know yet: still running.
            return .running(percent: percent)
        }
    }

    /// The contract's error body `{code, reason, message, metadata}`: 403 is the hosted API's bad-key answer.
    private func errorFault(_ response: UpstreamResponse) -> UpstreamFault {
        let json = response.json
        let reason = JSONRead.string(json?["reason"]) ?? ""
        let message = JSONRead.string(json?["message"]) ?? response.snippet
        let detail = reason.isEmpty ? message : "\(reason): \(message)"
        if response.status == 400, reason.uppercased().contains("BALANCE") {
            return .account("Novita refused the account: \(detail)")
        }
        return fault(status: response.status, detail: detail, retryAfter: response.retryAfter)
    }
}
