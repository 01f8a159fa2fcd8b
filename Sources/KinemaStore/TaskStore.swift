import Foundation
import KinemaCore

/// A task as stored: the durable record behind the Task Result API.
public struct TaskRecord: Sendable, Equatable {
    /// The task id (the contract's `task_id`).
    public var id: UUID
    /// The tenant that submitted the task; only it may read the task.
    public var tenant: String
    /// Lifecycle status.
    public var status: TaskStatus
    /// The validated request, including the seed actually used.
    public var request: GenerationRequest
    /// Blob keys of the stored inputs.
    public var imageKey: String
    public var endImageKey: String?
    /// Blob key of the finished MP4 once succeeded.
    public var resultKey: String?
    /// Failure reason ("" unless failed or canceled).
    public var reason: String
    /// Progress of the current attempt, 0…100 (100 once succeeded).
    public var progressPercent: Int
    /// Estimated seconds left (0 once succeeded).
    public var etaSeconds: Int
    /// Number of the current or last attempt (0 before the first claim).
    public var attempt: Int
    /// Attempts allowed before an expiring or retryably failing task becomes FAILED.
    public var maxAttempts: Int
    /// The engine the task was routed to at submit (rows written before routing: the one that ran it, if any).
    public var engine: String?
    /// When the task was submitted.
    public var createdAt: Date
    /// When the current or last attempt started.
    public var startedAt: Date?
    /// When the task reached a terminal status.
    public var finishedAt: Date?
    /// When any field last changed.
    public var updatedAt: Date
    /// Lease holder while processing.
    public var leaseOwner: String?
    /// When the current lease may be rescued, while processing.
    public var leaseExpiresAt: Date?

    /// Creates a record (stores build these; tests and fakes may too).
    public init(
        id: UUID, tenant: String, status: TaskStatus, request: GenerationRequest, imageKey: String,
        endImageKey: String?, resultKey: String?, reason: String, progressPercent: Int, etaSeconds: Int,
        attempt: Int, maxAttempts: Int, engine: String?, createdAt: Date, startedAt: Date?, finishedAt: Date?,
        updatedAt: Date, leaseOwner: String?, leaseExpiresAt: Date?
    ) {
        self.id = id
        self.tenant = tenant
        self.status = status
        self.request = request
        self.imageKey = imageKey
        self.endImageKey = endImageKey
        self.resultKey = resultKey
        self.reason = reason
        self.progressPercent = progressPercent
        self.etaSeconds = etaSeconds
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.engine = engine
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.updatedAt = updatedAt
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
    }
}

/// What a submit hands to the store: a task that starts QUEUED.
public struct NewTask: Sendable, Equatable {
    /// The id the API returned to the caller.
    public var id: UUID
    /// The submitting tenant.
    public var tenant: String
    /// The validated request, with the seed actually used.
    public var request: GenerationRequest
    /// Blob key of the first-frame image.
    public var imageKey: String
    /// Blob key of the end image, if any.
    public var endImageKey: String?
    /// The engine that must run the task (`EngineNames`); only a worker claiming for it gets the task.
    public var engine: String
    /// Attempts allowed (at least 1).
    public var maxAttempts: Int
    /// Initial ETA estimate in seconds.
    public var etaSeconds: Int
    /// Most QUEUED + PROCESSING tasks the tenant may have once this one is in; `nil` for no cap. Checked
    /// atomically with the insert (also against concurrent submits on other nodes); over it, `enqueue` throws
    /// `.quotaExceeded` and stores nothing.
    public var tenantActiveLimit: Int?

    /// Creates a task to enqueue.
    public init(
        id: UUID, tenant: String, request: GenerationRequest, imageKey: String, endImageKey: String?,
        engine: String = EngineNames.motion, maxAttempts: Int = 3, etaSeconds: Int = 0, tenantActiveLimit: Int? = nil
    ) {
        self.tenantActiveLimit = tenantActiveLimit
        self.engine = engine
        self.id = id
        self.tenant = tenant
        self.request = request
        self.imageKey = imageKey
        self.endImageKey = endImageKey
        self.maxAttempts = maxAttempts
        self.etaSeconds = etaSeconds
    }
}

/// Proof of ownership of a running task. Every worker write is fenced by it:
/// a write succeeds only while the task is still PROCESSING under this exact lease.
public struct TaskLease: Sendable, Equatable, Hashable {
    /// The leased task.
    public var taskID: UUID
    /// Unique per claim, so a re-claim of the same task by the same worker is a different lease.
    public var leaseID: UUID
    /// The worker holding the lease.
    public var workerID: String
    /// The attempt number this claim runs.
    public var attempt: Int

    /// Creates a lease (stores hand these out from `claim`).
    public init(taskID: UUID, leaseID: UUID, workerID: String, attempt: Int) {
        self.taskID = taskID
        self.leaseID = leaseID
        self.workerID = workerID
        self.attempt = attempt
    }
}

/// What a claim may take: tasks routed to one of `engines` whose required features the worker honours.
public struct ClaimRoute: Sendable, Equatable {
    /// Engines the worker runs; a task routed to another engine is never taken.
    public var engines: [String]
    /// Request features the worker honours; a task needing more is left for another worker.
    public var capabilities: RequestFeatures

    /// Creates a route.
    public init(engines: [String], capabilities: RequestFeatures = .all) {
        self.engines = engines
        self.capabilities = capabilities
    }

    /// One engine, every feature (the built-in engines' workers).
    public static func engine(_ name: String) -> ClaimRoute { ClaimRoute(engines: [name]) }
}

/// A task handed to a worker, with its lease.
public struct ClaimedTask: Sendable, Equatable {
    /// The task as it is after the claim.
    public var task: TaskRecord
    /// The lease every later write for this run must present.
    public var lease: TaskLease

    /// Pairs a task with its lease.
    public init(task: TaskRecord, lease: TaskLease) {
        self.task = task
        self.lease = lease
    }
}

/// One run of a task by one worker, kept for operators and for proving that no task ran twice at once.
public struct TaskAttemptRecord: Sendable, Equatable {
    /// How an attempt ended (`running` while it has not).
    public enum Outcome: String, Sendable, Codable {
        case running, succeeded, failed, expired, released
    }

    /// The task that ran.
    public var taskID: UUID
    /// Its attempt number (a released attempt's number is reused by the next claim).
    public var attempt: Int
    /// The lease the attempt ran under (unique per attempt).
    public var leaseID: UUID
    /// The worker that ran it.
    public var workerID: String
    /// When it was claimed.
    public var startedAt: Date
    /// When it ended; `nil` while running.
    public var endedAt: Date?
    /// How it ended.
    public var outcome: Outcome
    /// The error reported (or the reason the lease was lost), if any.
    public var error: String?

    /// Creates an attempt record.
    public init(
        taskID: UUID, attempt: Int, leaseID: UUID, workerID: String, startedAt: Date, endedAt: Date?,
        outcome: Outcome, error: String?
    ) {
        self.taskID = taskID
        self.attempt = attempt
        self.leaseID = leaseID
        self.workerID = workerID
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.outcome = outcome
        self.error = error
    }
}

/// What a sweep of expired leases did.
public struct RescueReport: Sendable, Equatable {
    /// Tasks put back to QUEUED for another attempt.
    public var requeued: [UUID]
    /// Tasks that had used all their attempts and became FAILED.
    public var failed: [UUID]

    /// Creates a report.
    public init(requeued: [UUID] = [], failed: [UUID] = []) {
        self.requeued = requeued
        self.failed = failed
    }
}

/// An API key as stored: only the SHA-256 of the secret, never the secret.
public struct APIKeyRecord: Sendable, Equatable {
    /// Stable identifier shown to operators.
    public var id: String
    /// The tenant the key acts for.
    public var tenant: String
    /// Lowercase hex SHA-256 of the full secret.
    public var keyHash: String
    /// The first characters of the secret, safe to show in listings.
    public var prefix: String
    /// When the key was created.
    public var createdAt: Date
    /// When the key was revoked; `nil` while valid.
    public var revokedAt: Date?
    /// The engine this key's tasks go to when a request names none (`kinema keys create --engine`); `nil`: the node's.
    public var defaultEngine: String?

    /// Creates a key record.
    public init(id: String, tenant: String, keyHash: String, prefix: String, createdAt: Date, revokedAt: Date?, defaultEngine: String? = nil) {
        self.defaultEngine = defaultEngine
        self.id = id
        self.tenant = tenant
        self.keyHash = keyHash
        self.prefix = prefix
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// Durable state of the service: tasks, leases, attempts, API keys and worker tokens.
///
/// One protocol, several implementations (SQLite embedded, PostgreSQL shared) that pass the same
/// conformance suite. Time is always passed in (`now`) so behaviour is testable without sleeping.
/// Worker writes (`heartbeat`, `complete`, `fail`, `release`) are fenced by the lease: they return
/// `false` and change nothing unless the task is still PROCESSING under that exact lease.
public protocol TaskStore: Sendable {
    // MARK: Tasks

    /// Stores a new QUEUED task. Throws `StoreError.duplicateTask` if the id exists.
    func enqueue(_ task: NewTask, now: Date) async throws

    /// The task with this id if it belongs to `tenant`; `nil` otherwise (unknown and foreign look alike).
    func task(id: UUID, tenant: String) async throws -> TaskRecord?

    /// The task with this id whatever its tenant (workers, operators).
    func task(id: UUID) async throws -> TaskRecord?

    /// The status of the task with this id if it belongs to `tenant` (what a poll shows), without decoding
    /// its request; `nil` exactly when `task(id:tenant:)` is `nil`.
    func taskStatus(id: UUID, tenant: String) async throws -> TaskStatusRecord?

    /// Atomically takes the oldest QUEUED task that `route` allows (its engine is one of the route's, and it needs no
    /// feature the route lacks), marks it PROCESSING under a new lease that expires at `now + leaseDuration`,
    /// increments its attempt and records the attempt. `nil` when none is queued for this route.
    /// Two concurrent claims never return the same task.
    func claim(workerID: String, route: ClaimRoute, leaseDuration: TimeInterval, now: Date) async throws -> ClaimedTask?

    /// Extends the lease and records progress. `false` when the lease was lost.
    func heartbeat(_ lease: TaskLease, progress: RenderProgress, leaseDuration: TimeInterval, now: Date) async throws -> Bool

    /// Marks the task SUCCEEDED with its result. `false` (and no change) when the lease was lost;
    /// a duplicate completion of an already finished task is therefore a no-op.
    func complete(_ lease: TaskLease, resultKey: String, now: Date) async throws -> Bool

    /// Ends the attempt with an error. When `retryable` and attempts remain, the task goes back to
    /// QUEUED; otherwise it becomes FAILED with `reason`. `false` when the lease was lost.
    func fail(_ lease: TaskLease, reason: String, retryable: Bool, now: Date) async throws -> Bool

    /// Gives the task back (graceful shutdown): QUEUED again, and the attempt is not counted against
    /// `maxAttempts` (`attempt` goes back down, so the next claim reuses the number). `false` when the lease was lost.
    func release(_ lease: TaskLease, now: Date) async throws -> Bool

    /// Requeues every PROCESSING task whose lease expired before `now` (attempt counted), or fails it
    /// when it has used `maxAttempts`. Safe to run concurrently from several nodes: a task is rescued once.
    func rescueExpiredLeases(now: Date) async throws -> RescueReport

    /// Requeues every task leased by `workerID` at once (a restarted worker's orphans), counting the attempt.
    func requeueOrphans(ofWorker workerID: String, now: Date) async throws -> RescueReport

    /// All attempts of a task, oldest first.
    func attempts(of taskID: UUID) async throws -> [TaskAttemptRecord]

    /// Number of tasks per status (for health and benchmarks).
    func countByStatus() async throws -> [TaskStatus: Int]

    // MARK: Worker presence

    /// Records that `workerID` is looking for work of `route` at `now` (every claim does, at most every few seconds),
    /// so any node can tell whether a queued task has a live worker that can run it.
    func recordWorkerPresence(workerID: String, route: ClaimRoute, now: Date) async throws

    /// Whether a worker that runs `engine` and honours every feature in `needs` has looked for work since `since`.
    func hasLiveWorker(engine: String, needs: RequestFeatures, since: Date) async throws -> Bool

    // MARK: API keys

    /// Stores a new key record. Throws `StoreError.duplicateAPIKey` if the id or hash exists.
    func insertAPIKey(_ key: APIKeyRecord) async throws

    /// The key whose hash is `keyHash`, revoked or not; `nil` when unknown.
    func apiKey(hash keyHash: String) async throws -> APIKeyRecord?

    /// Every key, oldest first.
    func listAPIKeys() async throws -> [APIKeyRecord]

    /// Revokes the key with this id, or else the one key with this prefix; `false` when none matched
    /// (or the prefix is shared by several keys). Revoking a revoked key keeps its first `revokedAt`.
    func revokeAPIKey(idOrPrefix: String, now: Date) async throws -> Bool

    // MARK: Worker tokens

    /// Stores a new worker token record. Throws `StoreError.duplicateWorkerToken` if the id or hash exists.
    func insertWorkerToken(_ token: WorkerTokenRecord) async throws

    /// The worker token whose hash is `hash`, revoked or not; `nil` when unknown.
    func workerToken(hash: String) async throws -> WorkerTokenRecord?

    /// Every worker token, oldest first.
    func listWorkerTokens() async throws -> [WorkerTokenRecord]

    /// Revokes the token with this id, or else the one token with this prefix; `false` when none matched
    /// (or the prefix is shared by several tokens). Revoking a revoked token keeps its first `revokedAt`.
    func revokeWorkerToken(idOrPrefix: String, now: Date) async throws -> Bool

    // MARK: Lifecycle

    /// Cheap round trip used by readiness checks; throws when the store is unreachable.
    func ping() async throws
}

extension TaskStore {
    /// Claims a task routed to `engine` (any features).
    public func claim(workerID: String, engine: String, leaseDuration: TimeInterval, now: Date) async throws -> ClaimedTask? {
        try await claim(workerID: workerID, route: .engine(engine), leaseDuration: leaseDuration, now: now)
    }
}

/// Errors of the task store.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// A task with this id already exists.
        case duplicateTask
        /// An API key with this id or hash already exists.
        case duplicateAPIKey
        /// A worker token with this id or hash already exists.
        case duplicateWorkerToken
        /// The record breaks a rule of the store (e.g. `maxAttempts < 1`); nothing was written.
        case invalidRecord
        /// The database cannot be reached, opened, or is busy beyond its timeout.
        case unavailable
        /// The stored data is unreadable or breaks the store's invariants.
        case corrupt
        /// The schema could not be brought up to date (or was written by a newer version).
        case migrationFailed
        /// The tenant already has `NewTask.tenantActiveLimit` queued or running tasks; nothing was written.
        case quotaExceeded
    }

    /// What went wrong, for callers to branch on.
    public var code: Code
    /// What went wrong, for people.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code.rawValue): \(message)" }
}
