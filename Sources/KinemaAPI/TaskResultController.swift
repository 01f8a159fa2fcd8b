import Foundation
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import Logging

/// `GET /v3/async/task-result?task_id=`: the task's status in the hosted API's exact shape, with a fresh signed URL.
struct TaskResultController: Sendable {
    let store: any TaskStore
    let auth: Authenticator
    let links: ResultLinks

    /// How long a worker counts as live after it last looked for work (claims long-poll for up to 30 s, pools
    /// announce every 15 s).
    static let presenceWindow: TimeInterval = 90

    func get(_ request: Request, context: some RequestContext) async throws -> Response {
        let tenant = try await auth.tenant(for: request)
        let raw: String? = request.uri.queryParameters.get("task_id").map { String($0) }
        let id = try Self.taskID(raw, where: "as a query parameter: /v3/async/task-result?task_id=<id>")
        let task: TaskStatusRecord? = try await Self.storeCall(context) { try await store.taskStatus(id: id, tenant: tenant) }
        guard let task else { throw APIError.taskNotFound }
        // Hand-encoded: this is the API's hottest path (clients poll), and JSONEncoder dominated its cost.
        let body = TaskResultBody(await Self.withQueueETA(task, store: store), links: links, now: Date()).jsonBytes()
        // The body carries a signed download link and changes as the task runs: no cache may keep it.
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension TaskResultController {
    /// `task`, with a queued task's eta from its place: the work ahead of it in its engine's queue shared by that
    /// engine's live workers, then its own render (the engine's recent mean). One that no live worker can run (its
    /// engine, every feature it needs) says so with the longest ETA there is, rather than a countdown nothing will
    /// meet. Other statuses, and a store failure here, leave the stored estimate. Polls and event streams use it alike.
    static func withQueueETA(_ task: TaskStatusRecord, store: any TaskStore) async -> TaskStatusRecord {
        guard task.status == .queued,
            let place = try? await store.queueEstimate(
                id: task.id, engine: task.engine, needs: task.neededFeatures, since: Date().addingTimeInterval(-presenceWindow))
        else { return task }
        var task = task
        task.etaSeconds = place.etaSeconds(ownEstimate: task.etaSeconds) ?? RenderProgress.maxETASeconds
        return task
    }

    /// The task id a request names, or the contract's 400 naming `task_id`; `where` says where it belongs.
    static func taskID(_ raw: String?, where place: String) throws -> UUID {
        guard let raw, !raw.isEmpty else {
            throw APIError(.badRequest, "INVALID_REQUEST_BODY", "task_id is required \(place).", metadata: ["field": "task_id"])
        }
        guard let id = UUID(canonical: raw) else {
            throw APIError(
                .badRequest, "INVALID_REQUEST_BODY",
                "task_id '\(raw.prefix(64))' is not a task id (a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e).", metadata: ["field": "task_id"])
        }
        return id
    }

    /// A store read or write for a task route: an unreachable store is 503, anything else the route's 500 (logged).
    static func storeCall<T>(_ context: some RequestContext, _ call: () async throws -> T) async throws -> T {
        do {
            return try await call()
        } catch {
            context.logger.error("task lookup failed", metadata: ["error": "\(error)"])
            if let e = error as? StoreError, e.code == .unavailable { throw APIError.unavailable }
            throw APIError.getResultFailed
        }
    }
}

/// Absolute, signed, expiring result URLs.
struct ResultLinks: Sendable {
    let baseURL: @Sendable () -> String
    let signer: URLSigner
    let ttl: Int
    /// `--video-url-mode presigned`: links straight to the object store (an S3 presigned GET), so video bytes never
    /// pass through the API nodes; `nil`: Kinema's own signed `/files/` links.
    var presign: (@Sendable (_ key: String, _ ttl: Int) -> String?)? = nil

    func url(forKey key: String, now: Date) -> String {
        if let presign, let url = presign(key, ttl) { return url }
        return "\(baseURL())/files/\(key)?\(signer.query(key: key, ttl: ttl, now: now))"
    }
}

extension TaskResultBody {
    /// The wire body of a stored task.
    init(_ task: TaskStatusRecord, links: ResultLinks, now: Date) {
        func ms(_ d: Date?) -> String { d.map { String(Int64(($0.timeIntervalSince1970 * 1000).rounded())) } ?? "0" }
        var videos: [VideoEntry] = []
        if task.status == .succeeded, let key = task.resultKey {
            videos = [VideoEntry(videoURL: links.url(forKey: key, now: now), videoURLTTL: String(links.ttl))]
        }
        let progress = task.status == .succeeded ? 100 : min(max(task.progressPercent, 0), 100)
        // Bounded on output too: rows written before the input bound (or by another version) stay sensible.
        let eta = task.status.isTerminal ? 0 : min(max(task.etaSeconds, 0), RenderProgress.maxETASeconds)
        let reason: String
        switch task.status {
        case .canceled: reason = task.reason.isEmpty ? "canceled" : task.reason
        case .failed: reason = task.reason
        default: reason = ""
        }
        self.init(
            extra: Extra(
                seed: String(task.seed),
                debugInfo: DebugInfo(
                    submitTimeMs: ms(task.createdAt), executeTimeMs: ms(task.startedAt), completeTimeMs: ms(task.finishedAt)),
                engine: task.engine),
            task: TaskInfo(
                taskID: task.id.lowercasedText, status: task.status.contractName, reason: reason, eta: eta, progressPercent: progress),
            videos: videos
        )
    }
}
