import Foundation
import KinemaCore

/// fal's queue in front of its Kling v3 Standard image-to-video model: submit to `{queue}/{model}`, then follow **the
/// URLs fal returns** (status, response, cancel), which need not follow the model path. `COMPLETED` covers failures
/// too: the outcome is on the response URL, where a 4xx is a terminal failure with fal's `detail`. `Authorization: Key`.
struct FalProvider: UpstreamProvider {
    let endpoint: UpstreamEndpoint
    let key: String
    /// Our signed link for a blob key, when images go by URL (`--upstream-fal-images url`); `data:` URIs otherwise.
    var imageLinks: (@Sendable (String) -> String)? = nil

    var name: String { "fal" }
    var displayName: String { "fal" }

    private var auth: [(String, String)] { [("Authorization", "Key \(key)")] }

    func submit(_ job: RenderJob, taskID: UUID) throws -> UpstreamRequest {
        let request = job.request
        var json = JSONBytes(capacity: UpstreamRequest.capacity(job))
        json.object { body in
            body.key("start_image_url")
            image(job.image, key: job.imageKey, into: &body)
            if let end = job.endImage {
                body.key("end_image_url")
                image(end, key: job.endImageKey, into: &body)
            }
            if request.shots != nil {
                body.key("shot_type")
                body.string("customize")
            }
            // fal's defaults differ from the contract's (a built-in negative prompt, audio on): always say ours.
            body.prompts(request, alwaysNegative: true) { item, _, shot in
                item.key("prompt")
                item.string(shot.prompt)
                item.key("duration")
                item.string(String(shot.duration))
            }
            body.key("generate_audio")
            body.bool(request.sound)
            body.key("duration")
            body.string(String(request.duration))
            body.key("cfg_scale")
            body.double(request.cfgScale)
        }
        return UpstreamRequest(method: .POST, url: endpoint.baseURL + "/" + endpoint.model, headers: auth, body: Data(json.bytes), paid: true)
    }

    func readSubmit(_ response: UpstreamResponse) -> SubmitOutcome {
        guard (200...299).contains(response.status) else { return .fault(errorFault(response)) }
        let json = response.json
        guard let id = JSONRead.string(json?["request_id"]), !id.isEmpty else {
            return .fault(.transient("fal accepted the submit but its answer has no request_id: \(response.snippet)"))
        }
        return .accepted(
            id: id, statusURL: JSONRead.string(json?["status_url"]), responseURL: JSONRead.string(json?["response_url"]),
            cancelURL: JSONRead.string(json?["cancel_url"]))
    }

    func poll(_ handle: UpstreamHandle) throws -> UpstreamRequest {
        UpstreamRequest(method: .GET, url: try followed(handle.statusURL, "status"), headers: auth)
    }

    func readPoll(_ response: UpstreamResponse) -> PollOutcome {
        guard (200...299).contains(response.status) else {
            return .fault(errorFault(response))
        }
        switch JSONRead.string(response.json?["status"]) {
        case "COMPLETED": return .completedElsewhere
        default: return .running(percent: nil) // IN_QUEUE, IN_PROGRESS, or a state this build does not know yet
        }
    }

    func result(_ handle: UpstreamHandle) throws -> UpstreamRequest? {
        UpstreamRequest(method: .GET, url: try followed(handle.responseURL, "response"), headers: auth)
    }

    func readResult(_ response: UpstreamResponse) -> PollOutcome {
        if (400...499).contains(response.status), ![401, 403, 408, 429].contains(response.status) {
            return .failed("fal: \(Self.detail(response))")
        }
        guard (200...299).contains(response.status) else { return .fault(errorFault(response)) }
        let json = response.json
        guard let url = JSONRead.string(JSONRead.object(json?["video"])?["url"]), !url.isEmpty else {
            return .failed("fal reported completion without a video: \(response.snippet)")
        }
        return .succeeded(videoURL: url, seed: JSONRead.string(json?["seed"]))
    }

    func cancel(_ handle: UpstreamHandle) -> UpstreamRequest? {
        guard let url = try? followed(handle.cancelURL, "cancel") else { return nil }
        return UpstreamRequest(method: .PUT, url: url, headers: auth)
    }

    /// A URL fal returned, checked to be on the configured queue host before our key is sent to it.
    private func followed(_ url: String?, _ what: String) throws -> String {
        guard let url, !url.isEmpty else {
            throw EngineError("fal gave no \(what) URL for this request; it cannot be followed", retryable: false)
        }
        guard let given = URLComponents(string: url), let base = URLComponents(string: endpoint.baseURL),
            given.scheme == base.scheme, given.host?.lowercased() == base.host?.lowercased(), given.port == base.port
        else {
            throw EngineError(
                "fal's \(what) URL is on another host than the configured queue (\(endpoint.baseURL)); it was not followed", retryable: false)
        }
        return url
    }

    private func errorFault(_ response: UpstreamResponse) -> UpstreamFault {
        fault(status: response.status, detail: Self.detail(response), retryAfter: response.retryAfter)
    }

    /// fal's `detail`: a string, or a list of validation items with `msg`.
    static func detail(_ response: UpstreamResponse) -> String {
        let detail = response.json?["detail"]
        if let text = JSONRead.string(detail), !text.isEmpty { return text }
        if let items = JSONRead.array(detail) {
            let messages = items.compactMap { JSONRead.string(JSONRead.object($0)?["msg"]) }
            if !messages.isEmpty { return messages.joined(separator: "; ") }
        }
        return response.snippet
    }

    /// An image as our signed link when images go by URL and its blob key is known, else as a `data:` URI.
    private func image(_ data: Data, key: String?, into body: inout JSONBytes) {
        if let imageLinks, let key {
            body.string(imageLinks(key))
        } else {
            body.base64(data, prefix: Self.dataURIPrefix(data))
        }
    }

    /// The `data:` URI prefix of an image (PNG or JPEG, told by its magic bytes).
    static func dataURIPrefix(_ image: Data) -> String {
        "data:image/\(image.starts(with: [0x89, 0x50, 0x4E, 0x47]) ? "png" : "jpeg");base64,"
    }
}
