import Foundation
import KinemaCore
import KinemaStore
import Logging

/// Where a worker gets tasks and hands results back: the store and blob store directly (same machine or
/// shared database), or the API over HTTP (remote GPU boxes). Every write is fenced by the lease.
public protocol WorkSource: Sendable {
    /// Claims the oldest queued task under a new lease, or `nil` when none is queued.
    func claim(workerID: String, engine: String, leaseDuration: TimeInterval) async throws -> ClaimedTask?
    /// The first image (and end image) of a claimed task, as stored at submit time.
    func inputs(of claimed: ClaimedTask) async throws -> (image: Data, endImage: Data?)
    /// Extends the lease and records progress; `false` when the lease was lost.
    func heartbeat(_ lease: TaskLease, progress: RenderProgress, leaseDuration: TimeInterval) async throws -> Bool
    /// Stores the finished MP4 and completes the task; `false` (and no result kept) when the lease was lost.
    func complete(_ lease: TaskLease, resultFile: URL) async throws -> Bool
    /// Ends the attempt with an error (requeued when `retryable` and attempts remain); `false` when the lease was lost.
    func fail(_ lease: TaskLease, reason: String, retryable: Bool) async throws -> Bool
    /// Gives the task back without counting the attempt (shutdown); `false` when the lease was lost.
    func release(_ lease: TaskLease) async throws -> Bool
    /// Stores where the task stands at a hosted provider (`TaskStore.recordUpstream`); `false` when it was not stored
    /// (the task finished meanwhile, an accepted handle is already there, or an intent came after `lease` lapsed).
    func recordUpstream(_ lease: TaskLease, handle: UpstreamHandle?) async throws -> Bool
    /// The task as stored now (to tell a cancel from a rescue when a lease is lost); `nil` where the source cannot say.
    func task(id: UUID) async throws -> TaskRecord?
    /// Requeues tasks a previous incarnation of `workerID` left running.
    func requeueOrphans(ofWorker workerID: String) async throws -> RescueReport
    /// Gives back, un-counted, what `workerID` still holds when it leaves (`TaskStore.releaseLeases`).
    func releaseLeases(ofWorker workerID: String) async throws -> RescueReport
    /// Cross-process wake-ups for idle workers when the source has them (a PostgreSQL store); `nil` means poll only.
    var notifications: (any WorkNotifications)? { get }
    /// Says that `workerID` is looking for work of `engine` (every feature), so queued tasks can tell whether a live
    /// worker can run them. Over HTTP the node records it at each claim, so a remote source does nothing here.
    func announce(workerID: String, engine: String) async throws
}

extension WorkSource {
    /// No wake-ups beyond the in-process `WorkSignal` and polling.
    public var notifications: (any WorkNotifications)? { nil }
    /// Nothing to do: the node records presence when it receives the claim.
    public func announce(workerID: String, engine: String) async throws {}
    /// Not known (a remote source learns a cancel only as a lost lease).
    public func task(id: UUID) async throws -> TaskRecord? { nil }
}

/// Works straight on a `TaskStore` and a `BlobStore` (embedded node, or `kinema worker --database`).
public struct StoreWorkSource: WorkSource {
    let store: any TaskStore
    let blobs: any BlobStore
    let now: @Sendable () -> Date
    /// How long a result upload is retried while the blob store is unavailable (object storage down); the worker
    /// heartbeats meanwhile, so the task stays its own. Zero where someone else retries (the node storing a remote
    /// worker's upload answers 503 and the worker sends it again).
    let uploadPatience: Duration

    public init(
        store: any TaskStore, blobs: any BlobStore, uploadPatience: Duration = .seconds(600), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.blobs = blobs
        self.uploadPatience = uploadPatience
        self.now = now
    }

    public func claim(workerID: String, engine: String, leaseDuration: TimeInterval) async throws -> ClaimedTask? {
        try await store.claim(workerID: workerID, engine: engine, leaseDuration: leaseDuration, now: now())
    }

    public func announce(workerID: String, engine: String) async throws {
        try await store.recordWorkerPresence(workerID: workerID, route: .engine(engine), now: now())
    }

    /// The task's images; while the blob store is unavailable (object storage down) they are fetched again, like
    /// uploads (the pool heartbeats meanwhile), so an outage does not cost the task an attempt.
    public func inputs(of claimed: ClaimedTask) async throws -> (image: Data, endImage: Data?) {
        let image = try await retrying(claimed.task.id) { try await blobs.get(claimed.task.imageKey) }
        var endImage: Data?
        if let key = claimed.task.endImageKey { endImage = try await retrying(claimed.task.id) { try await blobs.get(key) } }
        return (image, endImage)
    }

    /// Runs `body`, again after 1 s (doubling to 30 s) while the blob store is unavailable, up to `uploadPatience`.
    func retrying<T>(_ taskID: UUID, _ body: () async throws -> T) async throws -> T {
        let giveUp = ContinuousClock.now + uploadPatience
        var delay = Duration.seconds(1)
        while true {
            do {
                return try await body()
            } catch let error as BlobError where error.code == .unavailable && ContinuousClock.now + delay < giveUp {
                Logger(label: "kinema.worker").warning(
                    "the blob store is unavailable; trying again",
                    metadata: ["task": "\(taskID)", "retry_in_seconds": "\(delay.components.seconds)", "error": "\(error)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    public func heartbeat(_ lease: TaskLease, progress: RenderProgress, leaseDuration: TimeInterval) async throws -> Bool {
        try await store.heartbeat(lease, progress: progress, leaseDuration: leaseDuration, now: now())
    }

    /// Stores the result, trying again while the store is unavailable (`retrying`).
    func storeRetrying(_ file: URL, key: String, taskID: UUID) async throws {
        try await retrying(taskID) { try await blobs.putFile(at: file, key: key) }
    }

    public func complete(_ lease: TaskLease, resultFile: URL) async throws -> Bool {
        let key = Self.resultKey(lease)
        do {
            try await storeRetrying(resultFile, key: key, taskID: lease.taskID)
        } catch {
            // The reason is shown to the caller: no paths or system errors in it; the log has them.
            Logger(label: "kinema.worker").error("storing a result failed", metadata: ["task": "\(lease.taskID)", "error": "\(error)"])
            try? await blobs.delete(key) // whatever part of it landed, and its folder
            let full = (error as? BlobError)?.code == .noSpace
            throw EngineError(
                "the result could not be stored (\(full ? "the server's storage is full" : "a storage failure on the server"))", retryable: true)
        }
        return try await completeStored(lease, key: key)
    }

    /// Completes the task with a result already in the blob store under `key` (stored by `complete`, or uploaded
    /// straight to object storage by a remote worker); a copy that lost its lease is deleted, and so are copies left
    /// by earlier attempts that died between storing and completing.
    public func completeStored(_ lease: TaskLease, key: String) async throws -> Bool {
        let completed = try await store.complete(lease, resultKey: key, now: now())
        if !completed {
            // Fenced out (the task was rescued meanwhile): this copy is not the result.
            try? await blobs.delete(key)
        } else if let attempts = try? await store.attempts(of: lease.taskID) {
            // An earlier attempt killed between storing its copy and completing left that copy behind (its process
            // is gone, so nothing else removes it): only this lease's copy is the result.
            for attempt in attempts where attempt.leaseID != lease.leaseID {
                let other = TaskLease(taskID: lease.taskID, leaseID: attempt.leaseID, workerID: attempt.workerID, attempt: attempt.attempt)
                if (try? await blobs.size(of: Self.resultKey(other))) != nil { try? await blobs.delete(Self.resultKey(other)) }
            }
        }
        return completed
    }

    public func fail(_ lease: TaskLease, reason: String, retryable: Bool) async throws -> Bool {
        try await store.fail(lease, reason: reason, retryable: retryable, now: now())
    }

    public func release(_ lease: TaskLease) async throws -> Bool {
        try await store.release(lease, now: now())
    }

    public func requeueOrphans(ofWorker workerID: String) async throws -> RescueReport {
        try await store.requeueOrphans(ofWorker: workerID, now: now())
    }

    public func releaseLeases(ofWorker workerID: String) async throws -> RescueReport {
        try await store.releaseLeases(ofWorker: workerID, now: now())
    }

    public func recordUpstream(_ lease: TaskLease, handle: UpstreamHandle?) async throws -> Bool {
        try await store.recordUpstream(taskID: lease.taskID, leaseID: lease.leaseID, handle: handle, now: now())
    }

    public func task(id: UUID) async throws -> TaskRecord? {
        try await store.task(id: id)
    }

    /// The store's own wake-ups when it has them (PostgreSQL: enqueues and requeues on any node).
    public var notifications: (any WorkNotifications)? { store as? any WorkNotifications }

    /// One key per lease, so a zombie's late upload can never overwrite the real result.
    public static func resultKey(_ lease: TaskLease) -> String {
        BlobKeys.result(taskID: lease.taskID, leaseID: lease.leaseID)
    }
}
