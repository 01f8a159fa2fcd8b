import Foundation
import HTTPTypes
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import KinemaWorker
import NIOFoundationEssentialsCompat
import Logging

/// Settings of the remote worker protocol (`/internal/v1/worker/…`).
public struct WorkerProtocolConfiguration: Sendable {
    /// Largest accepted result upload in bytes (default 512 MiB); larger uploads answer 413.
    public var maxResultBytes: Int = 512 * 1024 * 1024
    /// Longest long-poll a claim may ask for, in seconds.
    public var maxWaitSeconds: Int = 30
    /// How often a waiting claim looks at the queue when no submit signal arrives (the correctness fallback).
    public var pollInterval: Duration = .seconds(1)
    /// Seconds a whole result upload may take to arrive (408 after).
    public var uploadTimeoutSeconds: Int = 600
    /// Range of lease lengths a worker may ask for, in seconds.
    public var leaseSecondsRange: ClosedRange<Int> = 2...3600

    /// The defaults above.
    public init() {}
}

/// The remote worker protocol: claim (long-poll), input download, heartbeat, result upload, fail, release,
/// orphan sweep. Authenticated by worker tokens; every task call is fenced by the lease exactly as for
/// in-process workers (the same `StoreWorkSource` does the writes).
struct WorkerProtocolController: Sendable {
    let store: any TaskStore
    let blobs: any BlobStore
    let auth: WorkerAuthenticator
    let signal: WorkSignal
    let draining: DrainState
    let configuration: WorkerProtocolConfiguration
    /// Lease length when a worker does not ask for one.
    let defaultLeaseSeconds: Int
    /// Where uploads are streamed before they move into the blob store (same filesystem, so the move is a rename).
    let uploadDirectory: URL
    let fileIO = FileIO()

    static let leaseLost = APIError(
        .conflict, "LEASE_LOST",
        "This lease is no longer held (it expired and the task was rescued, was given back, or the task already ended); stop working on the task and discard its result."
    )

    /// Stores remote workers' uploads; a blob store that is down is answered with 503 at once (the worker retries).
    var source: StoreWorkSource { StoreWorkSource(store: store, blobs: blobs, uploadPatience: .zero) }

    func addRoutes(to router: Router<KinemaRequestContext>) {
        for route in WorkerRoute.allCases {
            // Hummingbird writes parameters as `:name` where the protocol's templates write `{name}`.
            let path = route.template.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
            router.on(RouterPath(stringLiteral: path), method: HTTPRequest.Method(rawValue: route.method)!) { request, context in
                try await handle(route, request, context: context)
            }
        }
    }

    private func handle(_ route: WorkerRoute, _ request: Request, context: KinemaRequestContext) async throws -> Response {
        switch route {
        case .claim: try await claim(request, context: context)
        case .orphans: try await orphans(request, context: context)
        case .input: try await input(request, context: context)
        case .heartbeat: try await heartbeat(request, context: context)
        case .result: try await result(request, context: context)
        case .uploaded: try await uploaded(request, context: context)
        case .fail: try await fail(request, context: context)
        case .release: try await release(request, context: context)
        }
    }

    // MARK: Claim

    func claim(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let body = try await decode(WorkerClaimRequest.self, from: request, context: context)
        try Self.checkWorkerID(body.workerID)
        let route = try Self.route(body)
        if let model = body.model, !(1...200).contains(model.utf8.count) || !model.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            throw Self.invalid("model", "model must be 1 to 200 printable ASCII characters.")
        }
        let leaseSeconds = try leaseSeconds(body.leaseSeconds)
        let wait = body.waitSeconds ?? 0
        guard (0...configuration.maxWaitSeconds).contains(wait) else {
            throw Self.invalid("wait_seconds", "wait_seconds must be an integer from 0 to \(configuration.maxWaitSeconds).")
        }
        let owner = WorkerAuthenticator.leaseOwner(token: token, workerID: body.workerID)
        // Presence for queued tasks' ETA; a failure here must not cost the worker its claim.
        try? await store.recordWorkerPresence(workerID: owner, route: route, now: Date())
        // A worker that hangs up (shutdown, crash) must not leave this poll behind to claim the next task for nobody.
        let poll = Task {
            try await self.poll(body, owner: owner, route: route, leaseSeconds: leaseSeconds, wait: wait, logger: context.logger)
        }
        await context.whenClientStopsSending { poll.cancel() }
        return try await withTaskCancellationHandler {
            try await poll.value
        } onCancel: {
            poll.cancel()
        }
    }

    /// The long-poll of `claim`: the task claimed for `owner`, or 204 once `wait` seconds passed or the poll was
    /// cancelled because the worker went away.
    private func poll(
        _ body: WorkerClaimRequest, owner: String, route: ClaimRoute, leaseSeconds: Int, wait: Int, logger: Logger
    ) async throws -> Response {
        let deadline = ContinuousClock.now + .seconds(wait)
        while true {
            // A draining node hands out no new work; the worker's next claim reaches another node.
            if draining.isDraining {
                throw APIError(
                    .serviceUnavailable, "SERVICE_UNAVAILABLE",
                    "This node is shutting down and hands out no tasks; retry after the time in Retry-After.", retryAfter: 5)
            }
            if Task.isCancelled { return Response(status: .noContent) }
            // Not cancelled half-way: a claim the store made is either answered or given back below.
            let claimed = try await storeCall {
                try await Task {
                    try await self.store.claim(workerID: owner, route: route, leaseDuration: TimeInterval(leaseSeconds), now: Date())
                }.value
            }
            if let claimed, Task.isCancelled {
                // The worker hung up while the task was being claimed: nobody will read this answer.
                let released = try? await Task { try await self.store.release(claimed.lease, now: Date()) }.value
                logger.notice(
                    "claim given back: the worker hung up",
                    metadata: ["task": "\(claimed.task.id)", "worker": "\(owner)", "released": "\(released ?? false)"])
                if released == true { signal.notify() }
                return Response(status: .noContent)
            }
            if let claimed {
                logger.info(
                    "remote claim",
                    metadata: [
                        "task": "\(claimed.task.id)", "worker": "\(owner)", "attempt": "\(claimed.lease.attempt)",
                        "engine": "\(claimed.task.engine ?? "")", "model": "\(body.model ?? "")",
                    ])
                var answer = Self.claimResponse(claimed, leaseSeconds: leaseSeconds)
                if body.directUpload == true {
                    // Valid for long enough to render and upload under a renewed lease; the node checks what landed.
                    let expires = max(3600, leaseSeconds * 4)
                    let key = BlobKeys.result(taskID: claimed.task.id, leaseID: claimed.lease.leaseID)
                    answer.resultUpload = blobs.presignedURL(for: key, method: "PUT", expires: expires).map {
                        WorkerDirectUploadBody(url: $0, expiresSeconds: expires)
                    }
                }
                return JSONWire.response(answer)
            }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero || Task.isCancelled { return Response(status: .noContent) }
            // Submits wake this at once; the poll interval bounds a missed wake-up (another node's submit).
            await signal.wait(timeout: min(remaining, configuration.pollInterval))
        }
    }

    /// The engines and capabilities a claim names: `engines`, or `engine`, or `motion` (every task was a motion task
    /// before routing, so a worker written then keeps working); capabilities default to all.
    static func route(_ body: WorkerClaimRequest) throws -> ClaimRoute {
        if body.engines != nil, body.engine != nil {
            throw invalid("engines", "Give engine or engines, not both.")
        }
        let engines = body.engines ?? [body.engine ?? EngineNames.motion]
        guard (1...16).contains(engines.count) else { throw invalid("engines", "engines must list 1 to 16 engine names.") }
        for (i, name) in engines.enumerated() where !EngineNames.isWellFormed(name) {
            throw invalid(
                body.engines == nil ? "engine" : "engines[\(i)]", "An engine name is 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'.")
        }
        if let names = body.capabilities {
            guard names.count <= 32, names.allSatisfy({ EngineNames.isWellFormed($0) }) else {
                throw invalid("capabilities", "capabilities lists up to 32 feature names such as end_image, multi_prompt and sound.")
            }
            return ClaimRoute(engines: engines, capabilities: RequestFeatures(names: names))
        }
        return ClaimRoute(engines: engines)
    }

    static func claimResponse(_ claimed: ClaimedTask, leaseSeconds: Int) -> WorkerClaimResponse {
        let task = claimed.task
        let lease = claimed.lease
        let leaseID = lease.leaseID.uuidString.lowercased()
        func input(_ name: String, key: String) -> WorkerInputBody {
            WorkerInputBody(
                url: WorkerProtocolPaths.input(taskID: task.id, name: name) + "?lease_id=" + leaseID,
                contentType: key.hasSuffix(".png") ? "image/png" : "image/jpeg"
            )
        }
        return WorkerClaimResponse(
            task: .init(
                taskID: task.id.uuidString.lowercased(), request: WorkerRequestBody(task.request), attempt: lease.attempt,
                maxAttempts: task.maxAttempts, etaSeconds: task.etaSeconds,
                createdAtMs: Int64((task.createdAt.timeIntervalSince1970 * 1000).rounded())
            ),
            lease: WorkerLeaseBody(taskID: task.id.uuidString.lowercased(), leaseID: leaseID, workerID: lease.workerID, attempt: lease.attempt),
            leaseSeconds: leaseSeconds,
            inputs: .init(image: input("image", key: task.imageKey), endImage: task.endImageKey.map { input("end_image", key: $0) })
        )
    }

    // MARK: Orphans

    func orphans(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let body = try await decode(WorkerOrphansRequest.self, from: request, context: context)
        try Self.checkWorkerID(body.workerID)
        let owner = WorkerAuthenticator.leaseOwner(token: token, workerID: body.workerID)
        let report = try await storeCall {
            body.leaving == true
                ? try await store.releaseLeases(ofWorker: owner, now: Date()) : try await store.requeueOrphans(ofWorker: owner, now: Date())
        }
        for _ in report.requeued { signal.notify() }
        return JSONWire.response(
            WorkerOrphansResponse(
                requeued: report.requeued.map { $0.uuidString.lowercased() }, failed: report.failed.map { $0.uuidString.lowercased() }
            ))
    }

    // MARK: Fenced task calls

    func input(_ request: Request, context: some RequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let taskID = try Self.taskID(context)
        let lease = try await resolveLease(taskID: taskID, leaseID: request.uri.queryParameters.get("lease_id"), token: token)
        guard let task = try await storeCall({ try await store.task(id: lease.taskID) }) else { throw Self.leaseLost }
        let key: String?
        switch context.parameters.get("name") {
        case "image": key = task.imageKey
        case "end_image": key = task.endImageKey
        default: key = nil
        }
        guard let key else {
            throw APIError(
                .notFound, "INPUT_NOT_FOUND", "This task has no such input; inputs are 'image' and, when the request has one, 'end_image'.")
        }
        let data: Data
        do {
            data = try await blobs.get(key)
        } catch {
            context.logger.error("input blob unreadable", metadata: ["task": "\(taskID)", "key": "\(key)", "error": "\(error)"])
            throw APIError.unavailable
        }
        return Response(
            status: .ok,
            headers: [.contentType: key.hasSuffix(".png") ? "image/png" : "image/jpeg", .contentLength: String(data.count)],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    func heartbeat(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let taskID = try Self.taskID(context)
        let body = try await decode(WorkerHeartbeatRequest.self, from: request, context: context)
        guard (0...100).contains(body.progressPercent) else {
            throw Self.invalid("progress_percent", "progress_percent must be an integer from 0 to 100.")
        }
        guard (0...RenderProgress.maxETASeconds).contains(body.etaSeconds) else {
            throw Self.invalid("eta_seconds", "eta_seconds must be an integer from 0 to \(RenderProgress.maxETASeconds) (a day).")
        }
        let leaseSeconds = try leaseSeconds(body.leaseSeconds)
        let lease = try await resolveLease(taskID: taskID, leaseID: body.leaseID, token: token)
        let alive = try await storeCall {
            try await source.heartbeat(
                lease, progress: RenderProgress(percent: body.progressPercent, etaSeconds: body.etaSeconds), leaseDuration: TimeInterval(leaseSeconds)
            )
        }
        guard alive else { throw Self.leaseLost }
        return JSONWire.response(
            WorkerTaskStateResponse(taskID: taskID.uuidString.lowercased(), status: TaskStatus.processing.contractName, leaseSeconds: leaseSeconds))
    }

    func fail(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let taskID = try Self.taskID(context)
        let body = try await decode(WorkerFailRequest.self, from: request, context: context)
        let reason = body.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...1000).contains(reason.unicodeScalars.count) else {
            throw Self.invalid("reason", "reason must be 1 to 1000 characters saying what went wrong.")
        }
        let lease = try await resolveLease(taskID: taskID, leaseID: body.leaseID, token: token)
        guard try await storeCall({ try await source.fail(lease, reason: reason, retryable: body.retryable) }) else { throw Self.leaseLost }
        context.logger.notice(
            "remote worker failed a task",
            metadata: ["task": "\(taskID)", "worker": "\(lease.workerID)", "retryable": "\(body.retryable)", "reason": "\(reason)"])
        return try await stateResponse(taskID)
    }

    func release(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let taskID = try Self.taskID(context)
        let body = try await decode(WorkerReleaseRequest.self, from: request, context: context)
        let lease = try await resolveLease(taskID: taskID, leaseID: body.leaseID, token: token)
        guard try await storeCall({ try await source.release(lease) }) else { throw Self.leaseLost }
        return try await stateResponse(taskID)
    }

    /// The task's status after a fenced write; a requeued task wakes one idle worker or long-poll.
    func stateResponse(_ taskID: UUID) async throws -> Response {
        let status = try await storeCall { try await store.task(id: taskID) }?.status ?? .failed
        if status == .queued { signal.notify() }
        return JSONWire.response(WorkerTaskStateResponse(taskID: taskID.uuidString.lowercased(), status: status.contractName, leaseSeconds: 0))
    }

    // MARK: Helpers

    /// The lease named by `leaseID` if it is the running attempt of `taskID` and belongs to one of `token`'s workers.
    ///
    /// The store fences the write itself again atomically; this lookup turns a bare lease id into the full
    /// lease and keeps one token's workers away from another's tasks.
    func resolveLease(taskID: UUID, leaseID text: String?, token: CredentialRecord) async throws -> TaskLease {
        guard let text, let leaseID = UUID(uuidString: text) else {
            throw Self.invalid("lease_id", "lease_id must be the lease_id (a UUID) returned by the claim.")
        }
        let attempts = try await storeCall { try await store.attempts(of: taskID) }
        guard let running = attempts.first(where: { $0.leaseID == leaseID && $0.outcome == .running }),
            running.workerID.hasPrefix(WorkerAuthenticator.ownerPrefix(token))
        else { throw Self.leaseLost }
        return TaskLease(taskID: taskID, leaseID: leaseID, workerID: running.workerID, attempt: running.attempt)
    }

    func leaseSeconds(_ asked: Int?) throws -> Int {
        let seconds = asked ?? defaultLeaseSeconds
        guard configuration.leaseSecondsRange.contains(seconds) else {
            throw Self.invalid(
                "lease_seconds",
                "lease_seconds must be an integer from \(configuration.leaseSecondsRange.lowerBound) to \(configuration.leaseSecondsRange.upperBound)."
            )
        }
        return seconds
    }

    /// Decodes a small JSON body, answering 400 with the offending field on any problem.
    func decode<T: Decodable>(_ type: T.Type, from request: Request, context: KinemaRequestContext) async throws -> T {
        await context.acceptBody()
        // Over 64 KiB: 413 (ContractErrorMiddleware maps the collector's error).
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer: buffer))
        } catch let DecodingError.keyNotFound(key, context) {
            throw Self.invalid(Self.path(context.codingPath + [key]), "The field \(Self.path(context.codingPath + [key])) is required.")
        } catch let DecodingError.typeMismatch(_, context) {
            throw Self.invalid(Self.path(context.codingPath), "The field \(Self.path(context.codingPath)) has the wrong type.")
        } catch let DecodingError.valueNotFound(_, context) {
            throw Self.invalid(Self.path(context.codingPath), "The field \(Self.path(context.codingPath)) must not be null.")
        } catch {
            throw Self.invalid("", "The body must be a JSON object as described in docs/worker-protocol.md.")
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(.badRequest, "INVALID_REQUEST_BODY", message, metadata: ["field": field])
    }

    static func taskID(_ context: some RequestContext) throws -> UUID {
        guard let text = context.parameters.get("task_id"), let id = UUID(uuidString: text) else {
            throw invalid("task_id", "The task id in the path must be a UUID.")
        }
        return id
    }

    static func checkWorkerID(_ id: String) throws {
        guard (1...128).contains(id.utf8.count), id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw invalid("worker_id", "worker_id must be 1 to 128 printable ASCII characters without spaces.")
        }
    }

    /// Runs a store call, turning an unreachable store into 503 (other failures become the route's 500).
    func storeCall<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as StoreError where error.code == .unavailable {
            throw APIError.unavailable
        }
    }
}
