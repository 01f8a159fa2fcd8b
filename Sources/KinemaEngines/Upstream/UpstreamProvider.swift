import Foundation
import KinemaCore

/// How a provider's refusal is handled (`issue 11`, "Faults map onto the contract").
enum UpstreamFault: Error, Sendable, Equatable {
    /// Rate or concurrency refusals, 5xx, broken connections: wait (honouring `retryAfter`) and try again, keeping the
    /// task and its attempts.
    case transient(String, retryAfter: Duration? = nil)
    /// The account cannot be used (credentials, balance, package): the provider is paused for every task.
    case account(String)
    /// The provider will never do this task (content policy, invalid input): the task fails with its words.
    case rejected(String)
}

/// What a submit's answer says.
enum SubmitOutcome: Sendable, Equatable {
    /// Accepted: the provider's id and, where it gives them, the URLs to follow.
    case accepted(id: String, statusURL: String? = nil, responseURL: String? = nil, cancelURL: String? = nil)
    case fault(UpstreamFault)
}

/// What one poll says.
enum PollOutcome: Sendable, Equatable {
    /// Still queued or running; `percent` when the provider reports it.
    case running(percent: Int?)
    /// Done: where the video is, and the seed when the provider reports one.
    case succeeded(videoURL: String, seed: String?)
    /// The provider ended the task without a video; its words.
    case failed(String)
    /// fal: the outcome is at the response URL (read it with `result`).
    case completedElsewhere
    case fault(UpstreamFault)
}

/// What a lookup of a submit whose answer was lost finds.
enum LookupOutcome: Sendable, Equatable {
    /// The provider has the task: follow it.
    case found(id: String)
    /// The provider never got it: submitting again is safe.
    case notFound
    case fault(UpstreamFault)
}

/// One hosted provider's wire format: how our request becomes theirs and how their answers read. Pure (no I/O), so
/// every mapping is unit-testable; `UpstreamEngine` does the calls, the journal and the waiting.
protocol UpstreamProvider: Sendable {
    /// The engine name (`novita`, `kling`, `fal`).
    var name: String { get }
    /// The provider as people know it, for reasons and logs.
    var displayName: String { get }

    /// The paid submit for `job` (whose `taskID` is set).
    func submit(_ job: RenderJob, taskID: UUID) throws -> UpstreamRequest
    func readSubmit(_ response: UpstreamResponse) -> SubmitOutcome

    /// One status poll of an accepted task.
    func poll(_ handle: UpstreamHandle) throws -> UpstreamRequest
    func readPoll(_ response: UpstreamResponse) -> PollOutcome

    /// Where the outcome is when the poll only says it is complete (fal); `nil` for providers that report it in the poll.
    func result(_ handle: UpstreamHandle) throws -> UpstreamRequest?
    func readResult(_ response: UpstreamResponse) -> PollOutcome

    /// How to find a task whose submit answer was lost (Kling: by our id); `nil` when the provider offers no lookup.
    func lookup(taskID: UUID) -> UpstreamRequest?
    func readLookup(_ response: UpstreamResponse) -> LookupOutcome

    /// How to cancel an accepted task; `nil` when the provider cannot.
    func cancel(_ handle: UpstreamHandle) -> UpstreamRequest?
}

extension UpstreamProvider {
    func result(_ handle: UpstreamHandle) throws -> UpstreamRequest? { nil }
    func readResult(_ response: UpstreamResponse) -> PollOutcome { .fault(.transient("no result endpoint")) }
    func lookup(taskID: UUID) -> UpstreamRequest? { nil }
    func readLookup(_ response: UpstreamResponse) -> LookupOutcome { .notFound }
    func cancel(_ handle: UpstreamHandle) -> UpstreamRequest? { nil }

    /// The common reading of an HTTP status that is not a success: 429 and 5xx wait, 401/402/403 pause the account,
    /// other 4xx reject the task. `detail` is the provider's own words.
    func fault(status: Int, detail: String, retryAfter: Duration?) -> UpstreamFault {
        switch status {
        case 429: .transient("\(displayName) is rate limiting (HTTP 429): \(detail)", retryAfter: retryAfter)
        case 500...599: .transient("\(displayName) answered HTTP \(status): \(detail)", retryAfter: retryAfter)
        case 401, 402, 403: .account("\(displayName) refused the account (HTTP \(status)): \(detail)")
        case 408: .transient("\(displayName) timed out (HTTP 408): \(detail)", retryAfter: retryAfter)
        default: .rejected("\(displayName) refused the task (HTTP \(status)): \(detail)")
        }
    }
}

/// JSON helpers for reading answers leniently (numbers may come as strings and the other way round).
enum JSONRead {
    static func string(_ value: Any?) -> String? {
        switch value {
        case let s as String: s
        case let n as NSNumber: n.stringValue
        default: nil
        }
    }

    static func int(_ value: Any?) -> Int? {
        switch value {
        case let n as NSNumber: n.intValue
        case let s as String: Int(s) ?? Double(s).map { Int($0) }
        default: nil
        }
    }

    static func object(_ value: Any?) -> [String: Any]? { value as? [String: Any] }
    static func array(_ value: Any?) -> [Any]? { value as? [Any] }

    /// `object` serialized (keys sorted, so requests are reproducible).
    static func data(_ object: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }
}

/// What a provider needs from the operator.
struct UpstreamEndpoint: Sendable {
    /// Base URL without a trailing slash.
    var baseURL: String
    /// The provider's model (Kling `model_name`, fal model path); unused by Novita.
    var model: String
}

extension JSONBytes {
    /// The request's one prompt as `prompt`, or its shots as `multi_prompt`, each item written by `item` (with its
    /// 1-based index); then `negative_prompt` when the request has one, or always (`""` for none) when `alwaysNegative`.
    mutating func prompts(_ request: GenerationRequest, alwaysNegative: Bool = false, item: (inout JSONBytes, Int, Shot) -> Void) {
        if let shots = request.shots {
            key("multi_prompt")
            array(Array(shots.enumerated())) { list, indexed in
                list.object { object in item(&object, indexed.offset + 1, indexed.element) }
            }
        } else {
            key("prompt")
            string(request.prompt ?? "")
        }
        if request.negativePrompt != nil || alwaysNegative {
            key("negative_prompt")
            string(request.negativePrompt ?? "")
        }
    }
}
