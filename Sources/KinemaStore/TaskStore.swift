import Foundation
import KinemaCore

/// Durable state of the service: tasks, leases, attempts, worker presence and credentials.
///
/// One protocol, several implementations (SQLite embedded, PostgreSQL shared) that pass the same
/// conformance suite. Time is always passed in (`now`) so behaviour is testable without sleeping.
/// Worker writes (`heartbeat`, `complete`, `fail`, `release`) are fenced by the lease: they return
/// `false` and change nothing unless the task is still PROCESSING under that exact lease.
public protocol TaskStore: WebhookStore, RetentionStore {
    // MARK: Tasks

    /// Stores a new QUEUED task. Throws `StoreError.duplicateTask` if the id exists.
    func enqueue(_ task: NewTask, now: Date) async throws

    /// The submit a live idempotency key of `tenant` stands for (younger than `IdempotencyClaim.lifetime` at `now`).
    func idempotentSubmit(tenant: String, key: String, now: Date) async throws -> IdempotentSubmit?

    /// Deletes the idempotency keys that expired before `now`; returns how many.
    func sweepIdempotencyKeys(now: Date) async throws -> Int

    /// The task with this id if it belongs to `tenant`; `nil` otherwise (unknown and foreign look alike).
    func task(id: UUID, tenant: String) async throws -> TaskRecord?

    /// The status of each of these tasks that exists, whatever its tenant (one read for every live event stream of a
    /// node; the streams checked the tenant when they opened).
    func taskStatuses(ids: [UUID]) async throws -> [TaskStatusRecord]

    /// Up to `limit` of the tenant's tasks, newest first (by submit time, then id), after `cursor` when given.
    func tasks(tenant: String, limit: Int, after cursor: TaskPageCursor?) async throws -> [TaskStatusRecord]

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

    /// Cancels the task with this id if it belongs to `tenant`: a QUEUED or PROCESSING task becomes CANCELED (reason
    /// `canceled`; a running attempt ends, so its worker's next heartbeat or write is refused); a finished one is left
    /// as it is. Returns the task's status after that; `nil` when unknown or another tenant's (indistinguishable).
    func cancel(id: UUID, tenant: String, now: Date) async throws -> TaskStatusRecord?

    /// Stores where the task stands at a hosted provider (`UpstreamHandle`), or clears a handle whose submit was
    /// refused, while the task is QUEUED or PROCESSING; an accepted handle (with an id) is never cleared or replaced
    /// by one without an id. An accepted handle is written whatever the lease (the provider took the task and will
    /// bill it: its id must not be lost to a lease that lapsed meanwhile); an intent (no id) or a clear only under the
    /// task's current lease `leaseID`, so a worker whose lease lapsed cannot start a second paid submit, nor erase the
    /// intent of the worker that holds the task now. `false` when nothing was written.
    func recordUpstream(taskID: UUID, leaseID: UUID, handle: UpstreamHandle?, now: Date) async throws -> Bool

    /// Requeues every PROCESSING task whose lease expired before `now` (attempt counted), or fails it
    /// when it has used `maxAttempts`; a task sent to a hosted provider (an upstream handle is stored, accepted or only intended) is requeued un-counted (`TaskStateMachine`). Safe to run concurrently from several nodes: a task is rescued once.
    func rescueExpiredLeases(now: Date) async throws -> RescueReport

    /// Requeues every task leased by `workerID` at once (a restarted worker's orphans), counting the attempt.
    func requeueOrphans(ofWorker workerID: String, now: Date) async throws -> RescueReport

    /// Gives back every task `workerID` still holds without counting the attempt (`requeued` only): a worker leaving at
    /// shutdown, once its loops have ended, holds nothing it is running, only claims whose answer it never read.
    func releaseLeases(ofWorker workerID: String, now: Date) async throws -> RescueReport

    /// All attempts of a task, oldest first.
    func attempts(of taskID: UUID) async throws -> [TaskAttemptRecord]

    /// Number of tasks per status (for health and benchmarks).
    func countByStatus() async throws -> [TaskStatus: Int]

    /// Number of tasks per status and engine, only the pairs that have any (queue depth and running tasks by engine,
    /// for the metrics endpoint).
    func countByStatusAndEngine() async throws -> [TaskCount]

    // MARK: Worker presence

    /// Records that `workerID` is looking for work of `route` at `now` (every claim does, at most every few seconds),
    /// so any node can tell whether a queued task has a live worker that can run it.
    func recordWorkerPresence(workerID: String, route: ClaimRoute, now: Date) async throws

    /// Whether a worker that runs `engine` and honours every feature in `needs` has looked for work since `since`.
    func hasLiveWorker(engine: String, needs: RequestFeatures, since: Date) async throws -> Bool

    /// Where a QUEUED task stands in its engine's queue, for an honest `eta`: queued tasks of its engine ahead of it,
    /// tasks of its engine running, live workers (since `since`) of its engine that honour `needs`, and the mean
    /// render time of that engine's last 20 successes. `nil` when the task is unknown or not queued.
    func queueEstimate(id: UUID, engine: String, needs: RequestFeatures, since: Date) async throws -> QueueEstimate?

    // MARK: Credentials (API keys and worker tokens)

    /// Stores a new credential. Throws `StoreError.duplicateCredential` if its id or hash exists.
    func insertCredential(_ record: CredentialRecord) async throws

    /// The credential of `kind` whose hash is `hash`, revoked or not; `nil` when unknown (or of another kind).
    func credential(_ kind: CredentialKind, hash: String) async throws -> CredentialRecord?

    /// Every credential of `kind`, oldest first.
    func credentials(_ kind: CredentialKind) async throws -> [CredentialRecord]

    /// Revokes the credential of `kind` with this id, or else the one with this prefix; `false` when none matched
    /// (or the prefix is shared by several). Revoking a revoked credential keeps its first `revokedAt`.
    func revokeCredential(_ kind: CredentialKind, idOrPrefix: String, now: Date) async throws -> Bool

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

/// How many tasks of one engine are in one status (`TaskStore.countByStatusAndEngine`).
public struct TaskCount: Sendable, Equatable, Hashable {
    public var status: TaskStatus
    public var engine: String
    public var count: Int

    public init(status: TaskStatus, engine: String, count: Int) {
        self.status = status
        self.engine = engine
        self.count = count
    }
}
