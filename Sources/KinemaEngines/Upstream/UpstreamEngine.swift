import Foundation
import KinemaCore
import KinemaFetch
import KinemaMedia
import Logging

/// How upstream engines call, wait and give up (every value is a `kinema serve` option; `docs/engines.md`).
public struct UpstreamSettings: Sendable {
    /// Time between two polls of one task (at most one poll per task per interval).
    public var pollInterval: Duration = .seconds(5)
    /// Time cap on one poll or lookup.
    public var requestTimeout: Duration = .seconds(30)
    /// Time cap on one submit (it carries the images).
    public var submitTimeout: Duration = .seconds(120)
    /// How long a task is followed after its submit before a final poll and failure.
    public var deadline: Duration = .seconds(3600)
    /// First wait after a rate refusal, 5xx or broken connection; doubles (with jitter) up to `maxBackoff`.
    public var backoff: Duration = .seconds(2)
    public var maxBackoff: Duration = .seconds(60)
    /// How often a provider paused for an account problem is tried again.
    public var pauseProbe: Duration = .seconds(30)
    /// How results are downloaded: the safe fetcher's rules (operators open loopback stand-ins with `allow`).
    public var fetch = SafeFetcher.Configuration(maxBytes: 512 * 1024 * 1024, timeout: .seconds(300), maxRedirects: 3)

    public init() {
        fetch.subject = "video"
        fetch.accept = "video/mp4, */*;q=0.5"
    }
}

/// Runs tasks on a hosted provider: submit once (recorded before and after, so it is never paid twice and never
/// lost), follow the provider's task until it ends, and copy the MP4 into our own storage at once. Faults are
/// waited out in place (the task keeps its attempts), account refusals pause the provider, and the provider's own
/// failures fail the task with its words. Runs in a worker, which heartbeats the lease meanwhile.
final class UpstreamEngine: VideoEngine {
    let provider: any UpstreamProvider
    let http: UpstreamHTTP
    let settings: UpstreamSettings
    let gate: ProviderGate
    let fetcher: SafeFetcher
    let logger: Logger

    init(provider: any UpstreamProvider, http: UpstreamHTTP, settings: UpstreamSettings, board: EngineStatusBoard, logger: Logger) {
        self.provider = provider
        self.http = http
        self.settings = settings
        self.fetcher = SafeFetcher(configuration: settings.fetch)
        self.logger = logger
        self.gate = ProviderGate(provider: provider.name, board: board, logger: logger, probeInterval: settings.pauseProbe)
    }

    var name: String { provider.name }
    var resumable: Bool { true }
    func waitUntilReady() async { await gate.waitUntilReady() }

    private var display: String { provider.displayName }

    func render(_ job: RenderJob, to output: URL, progress: @escaping @Sendable (RenderProgress) -> Void) async throws {
        guard let taskID = job.taskID, let journal = job.journal else {
            throw EngineError("the \(display) engine runs only in a worker that records its state", retryable: false)
        }
        if let stored = job.upstream, stored.provider != provider.name {
            throw EngineError("this task was already sent to \(stored.provider), not \(display); it is not sent again", retryable: false)
        }
        var meta: Logger.Metadata = ["task": "\(taskID)", "engine": "\(provider.name)"]
        let estimate = ProgressEstimate(request: job.request, pollInterval: settings.pollInterval)
        var handle: UpstreamHandle
        if let stored = job.upstream, stored.isAccepted {
            handle = stored
            logger.info(
                "following the upstream task an earlier attempt submitted", metadata: meta.merging(["upstream_id": "\(stored.id ?? "")"]) { $1 })
        } else {
            handle = try await submitOnce(job, taskID: taskID, lostIntent: job.upstream, journal: journal, estimate: estimate, progress: progress)
        }
        meta["upstream_id"] = "\(handle.id ?? "")"
        let (video, seed) = try await follow(handle, estimate: estimate, progress: progress, meta: meta)
        if let seed = seed.flatMap({ UInt32($0) }), seed != handle.seed {
            // The seed the provider used is the one the task reports; a failed record only leaves ours.
            handle.seed = seed
            try? await journal.record(handle)
        }
        try await copyResult(video, handle: handle, to: output, meta: meta)
    }

    /// Tells the provider a canceled task is no longer wanted, where it can (fal's cancel URL); Novita and Kling offer
    /// no cancel, so their task runs to its end there (and is not copied).
    func canceled(taskID: UUID, upstream: UpstreamHandle?) async {
        let meta: Logger.Metadata = ["task": "\(taskID)", "engine": "\(provider.name)", "upstream_id": "\(upstream?.id ?? "")"]
        guard let handle = upstream, handle.isAccepted, let request = provider.cancel(handle) else {
            logger.info("canceled task: the provider offers no cancel; it finishes there unseen", metadata: meta)
            return
        }
        do {
            let response = try await http.send(request, timeout: settings.requestTimeout, provider: provider.name, call: "cancel")
            logger.info("canceled the upstream task", metadata: meta.merging(["status": "\(response.status)"]) { $1 })
        } catch {
            logger.warning("canceling the upstream task failed", metadata: meta.merging(["why": "\(error)"]) { $1 })
        }
    }

    // MARK: Submit

    /// Submits the task exactly once, or finds the submit an earlier attempt made whose answer was lost.
    private func submitOnce(
        _ job: RenderJob, taskID: UUID, lostIntent: UpstreamHandle?, journal: any UpstreamJournal, estimate: ProgressEstimate,
        progress: @escaping @Sendable (RenderProgress) -> Void
    ) async throws -> UpstreamHandle {
        var backoff = Backoff(settings)
        var unknown = lostIntent
        while true {
            try Task.checkCancellation()
            if let intent = unknown {
                // A submit went out and its answer never arrived: look for it before anything else.
                switch try await reconcile(taskID: taskID, intent: intent, journal: journal) {
                case .some(let found): return found
                case .none: unknown = nil // the provider never got it: submitting is safe
                }
            }
            let intent = UpstreamHandle(provider: provider.name, submittedAt: Date())
            try await journal.record(intent)
            let request = try provider.submit(job, taskID: taskID)
            let http = self.http
            let provider = self.provider
            let timeout = settings.submitTimeout
            // Protected from cancellation: once sent, the answer is read and, if accepted, recorded, whatever happens
            // to this worker meanwhile (a shutdown or a lost lease waits for it).
            let attempt: SubmitAttempt = await Task.detached {
                let response: UpstreamResponse
                do {
                    response = try await http.send(request, timeout: timeout, provider: provider.name, call: "submit")
                } catch let error as UpstreamTransportError {
                    return .transport(error)
                } catch {
                    return .transport(.noAnswer("\(error)"))
                }
                let outcome = provider.readSubmit(response)
                guard case let .accepted(id, statusURL, responseURL, cancelURL) = outcome else { return .answered(outcome) }
                let handle = UpstreamHandle(
                    provider: intent.provider, id: id, statusURL: statusURL, responseURL: responseURL, cancelURL: cancelURL,
                    submittedAt: intent.submittedAt)
                do {
                    try await journal.record(handle)
                    return .accepted(handle)
                } catch {
                    return .unrecorded(handle, error)
                }
            }.value
            switch attempt {
            case .accepted(let handle):
                logger.info(
                    "upstream accepted the task", metadata: ["task": "\(taskID)", "engine": "\(provider.name)", "upstream_id": "\(handle.id ?? "")"])
                await gate.resume()
                return handle
            case .unrecorded(let handle, let error):
                // Accepted and paid, but the store refused the record: say so loudly, with the id an operator needs.
                logger.critical(
                    "upstream accepted the task but its id could not be recorded",
                    metadata: ["task": "\(taskID)", "engine": "\(provider.name)", "upstream_id": "\(handle.id ?? "")", "error": "\(error)"])
                throw EngineError(
                    "\(display) accepted the task (id \(handle.id ?? "?")) but the server could not record it; it was not submitted again",
                    retryable: false)
            case .transport(.notSent(let why)):
                try await journal.record(nil)
                let wait = backoff.next()
                logger.warning(
                    "could not reach the provider; trying again", metadata: ["task": "\(taskID)", "engine": "\(provider.name)", "why": "\(why)"])
                try await sleep(wait, estimate: estimate, progress: progress)
            case .transport(.noAnswer(let why)):
                logger.warning(
                    "a submit got no answer; it may have been accepted",
                    metadata: ["task": "\(taskID)", "engine": "\(provider.name)", "why": "\(why)"])
                guard provider.lookup(taskID: taskID) != nil else { throw lostSubmit(why) }
                unknown = intent
                try await sleep(backoff.next(), estimate: estimate, progress: progress)
            case .answered(.fault(.transient(let message, let retryAfter))):
                try await journal.record(nil)
                logger.warning(
                    "provider refused for now; waiting", metadata: ["task": "\(taskID)", "engine": "\(provider.name)", "why": "\(message)"])
                try await sleep(retryAfter ?? backoff.next(), estimate: estimate, progress: progress)
            case .answered(.fault(.account(let message))):
                try await journal.record(nil)
                await gate.pause(message)
                throw EnginePostponed(message)
            case .answered(.fault(.rejected(let message))):
                try await journal.record(nil)
                throw EngineError(message, retryable: false)
            case .answered(.accepted):
                preconditionFailure("accepted answers are handled in the protected block")
            }
        }
    }

    private enum SubmitAttempt: Sendable {
        case accepted(UpstreamHandle)
        case unrecorded(UpstreamHandle, any Error)
        case transport(UpstreamTransportError)
        case answered(SubmitOutcome)
    }

    /// Finds a submit whose answer was lost: the recorded handle when the provider has it, `nil` when it never got it.
    /// Providers without a lookup fail the task rather than risk paying twice.
    private func reconcile(taskID: UUID, intent: UpstreamHandle, journal: any UpstreamJournal) async throws -> UpstreamHandle? {
        guard let request = provider.lookup(taskID: taskID) else {
            throw lostSubmit("the worker that sent it stopped before the answer was recorded")
        }
        var backoff = Backoff(settings)
        while true {
            try Task.checkCancellation()
            let outcome: LookupOutcome
            do {
                outcome = provider.readLookup(
                    try await http.send(request, timeout: settings.requestTimeout, provider: provider.name, call: "lookup"))
            } catch let error as UpstreamTransportError {
                outcome = .fault(.transient("\(error)"))
            }
            switch outcome {
            case .found(let id):
                var handle = intent
                handle.id = id
                try await journal.record(handle)
                logger.notice(
                    "found the upstream task of a submit whose answer was lost",
                    metadata: ["task": "\(taskID)", "engine": "\(provider.name)", "upstream_id": "\(id)"])
                return handle
            case .notFound:
                try await journal.record(nil)
                return nil
            case .fault(.account(let message)):
                await gate.pause(message)
                throw EnginePostponed(message)
            case .fault(.transient(_, let retryAfter)):
                try await Task.sleep(for: retryAfter ?? backoff.next())
            case .fault(.rejected):
                try await Task.sleep(for: backoff.next())
            }
        }
    }

    private func lostSubmit(_ why: String) -> EngineError {
        EngineError(
            "\(display) may have accepted this task, but the answer to its submit was lost (\(why)), and \(display) offers no way to look a "
                + "task up by our id; it was not submitted again, so it is not paid twice",
            retryable: false)
    }

    // MARK: Follow

    /// Polls until the provider ends the task: the video's URL, or the provider's failure; a final poll at the deadline.
    private func follow(
        _ handle: UpstreamHandle, estimate: ProgressEstimate, progress: @escaping @Sendable (RenderProgress) -> Void, meta: Logger.Metadata
    ) async throws -> (videoURL: String, seed: String?) {
        var backoff = Backoff(settings)
        let deadline = handle.submittedAt.addingTimeInterval(settings.deadline.timeInterval)
        while true {
            try Task.checkCancellation()
            let final = Date() >= deadline
            let outcome = await pollOnce(handle)
            var wait = settings.pollInterval
            switch outcome {
            case .succeeded(let url, let seed):
                await gate.resume()
                return (url, seed)
            case .failed(let reason):
                await gate.resume()
                throw EngineError(reason, retryable: false)
            case .running(let percent):
                await gate.resume()
                backoff.reset()
                progress(estimate.progress(since: handle.submittedAt, reported: percent))
            case .completedElsewhere:
                wait = backoff.next()
            case .fault(.transient(let message, let retryAfter)):
                logger.warning("polling the provider failed; trying again", metadata: meta.merging(["why": "\(message)"]) { $1 })
                wait = max(wait, retryAfter ?? backoff.next())
            case .fault(.account(let message)):
                await gate.pause(message)
                wait = max(wait, backoff.next())
            case .fault(.rejected(let message)):
                throw EngineError(message, retryable: false)
            }
            if final {
                throw EngineError(
                    "\(display) did not finish the task within \(Self.describe(settings.deadline)) of its submit (upstream id \(handle.id ?? "?"))",
                    retryable: false)
            }
            let left = deadline.timeIntervalSinceNow
            try await Task.sleep(for: left > 0 ? min(wait, .milliseconds(Int64(left * 1000) + 1)) : .zero)
        }
    }

    /// One poll (and, for fal, the read of the outcome when it is complete); transport failures are transient faults.
    private func pollOnce(_ handle: UpstreamHandle) async -> PollOutcome {
        do {
            let outcome = provider.readPoll(
                try await http.send(try provider.poll(handle), timeout: settings.requestTimeout, provider: provider.name, call: "poll"))
            guard case .completedElsewhere = outcome, let request = try provider.result(handle) else { return outcome }
            return provider.readResult(
                try await http.send(request, timeout: settings.requestTimeout, provider: provider.name, call: "result"))
        } catch let error as UpstreamTransportError {
            return .fault(.transient("\(display): \(error)"))
        } catch let error as EngineError {
            return .fault(.rejected(error.message))
        } catch {
            return .fault(.transient("\(display): \(error)"))
        }
    }

    // MARK: Result

    /// Downloads the video into `output` with the safe fetcher's rules and checks it is an MP4. An expired or gone URL
    /// is asked for again once (providers sign fresh URLs on each poll), then fails the task.
    private func copyResult(_ firstURL: String, handle: UpstreamHandle, to output: URL, meta: Logger.Metadata) async throws {
        var url = firstURL
        var refreshed = false
        var failures = 0
        var backoff = Backoff(settings)
        while true {
            try Task.checkCancellation()
            do {
                let data = try await fetcher.fetch(url)
                try Self.checkMP4(data, at: output, from: display)
                logger.info("copied the upstream result", metadata: meta.merging(["bytes": "\(data.count)"]) { $1 })
                return
            } catch let error as FetchError {
                switch error.code {
                case .httpStatus where [403, 404, 410].contains(error.status ?? 0):
                    if !refreshed, case .succeeded(let fresh, _) = await pollOnce(handle), fresh != url {
                        refreshed = true
                        url = fresh
                        continue
                    }
                    throw EngineError(
                        "\(display)'s result URL has expired or is gone (HTTP \(error.status ?? 0)); the video could not be copied", retryable: false)
                case .invalidURL, .unsupportedScheme, .refusedAddress, .tooLarge, .tooManyRedirects:
                    throw EngineError("\(display)'s result could not be copied: \(error.message)", retryable: false)
                case .cancelled:
                    throw CancellationError()
                default:
                    failures += 1
                    logger.warning("downloading the upstream result failed", metadata: meta.merging(["why": "\(error.message)"]) { $1 })
                    if failures >= 3 { throw EngineError("\(display)'s result could not be downloaded: \(error.message)", retryable: true) }
                    try await Task.sleep(for: backoff.next())
                }
            }
        }
    }

    /// "90 seconds", "60 minutes".
    static func describe(_ duration: Duration) -> String {
        let seconds = duration.timeInterval
        return seconds < 120 ? "\(Int(seconds.rounded())) seconds" : "\(Int((seconds / 60).rounded())) minutes"
    }

    /// Writes `data` to `output` after checking it is an MP4 with a video stream.
    static func checkMP4(_ data: Data, at output: URL, from display: String) throws {
        guard data.count > 12, data[data.startIndex + 4..<data.startIndex + 8] == Data("ftyp".utf8) else {
            throw EngineError("\(display) returned a file that is not an MP4 video", retryable: false)
        }
        do {
            try data.write(to: output)
        } catch {
            throw EngineError("the result could not be stored (a storage failure on the server)", retryable: true)
        }
        guard let info = try? MP4Reader.info(url: output), info.width > 0, info.height > 0 else {
            throw EngineError("\(display) returned an MP4 without a readable video stream", retryable: false)
        }
    }

    /// Waits out a refusal, keeping the reported ETA honest.
    private func sleep(_ wait: Duration, estimate: ProgressEstimate, progress: @escaping @Sendable (RenderProgress) -> Void) async throws {
        progress(RenderProgress(percent: 0, etaSeconds: Int(wait.timeInterval.rounded(.up)) + estimate.typicalSeconds))
        try await Task.sleep(for: wait)
    }
}

/// Exponential backoff with full jitter: the n-th wait is uniform in [base·2ⁿ⁻¹/2, base·2ⁿ⁻¹], capped.
struct Backoff {
    let base: Duration
    let cap: Duration
    private var step = 0

    init(_ settings: UpstreamSettings) {
        base = settings.backoff
        cap = settings.maxBackoff
    }

    mutating func next() -> Duration {
        let ceiling = min(cap.timeInterval, base.timeInterval * pow(2, Double(step)))
        step = min(step + 1, 30)
        return .milliseconds(Int64(Double.random(in: (ceiling / 2)...max(ceiling / 2, ceiling)) * 1000))
    }

    mutating func reset() { step = 0 }
}

/// Progress of a task at a provider that reports none (or only a percentage): from the time since the submit
/// against what such a video typically takes.
struct ProgressEstimate: Sendable {
    /// What a video of this length typically takes at a hosted provider, in seconds.
    let typicalSeconds: Int
    let pollSeconds: Int

    init(request: GenerationRequest, pollInterval: Duration) {
        typicalSeconds = 60 + 15 * request.duration
        pollSeconds = max(1, Int(pollInterval.timeInterval.rounded(.up)))
    }

    func progress(since submitted: Date, reported: Int?) -> RenderProgress {
        let elapsed = max(0, Date().timeIntervalSince(submitted))
        if let reported, reported > 0 {
            let left = reported >= 100 ? 0 : elapsed * Double(100 - reported) / Double(reported)
            return RenderProgress(percent: min(reported, 99), etaSeconds: max(pollSeconds, Int(left.rounded(.up))))
        }
        let fraction = elapsed / Double(typicalSeconds)
        return RenderProgress(percent: min(95, Int(fraction * 100)), etaSeconds: max(pollSeconds, typicalSeconds - Int(elapsed)))
    }
}
