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
    /// Where the task stands at a hosted provider, once an upstream engine sent it there.
    public var upstream: UpstreamHandle?

    /// Creates a record (stores build these; tests and fakes may too).
    public init(
        id: UUID, tenant: String, status: TaskStatus, request: GenerationRequest, imageKey: String,
        endImageKey: String?, resultKey: String?, reason: String, progressPercent: Int, etaSeconds: Int,
        attempt: Int, maxAttempts: Int, engine: String?, createdAt: Date, startedAt: Date?, finishedAt: Date?,
        updatedAt: Date, leaseOwner: String?, leaseExpiresAt: Date?, upstream: UpstreamHandle? = nil
    ) {
        self.upstream = upstream
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
    /// The submit's `Idempotency-Key`, stored with the task in one transaction; when the tenant's key is already live
    /// (under `IdempotencyClaim.lifetime` old), `enqueue` throws `IdempotencyConflict` and stores nothing.
    public var idempotency: IdempotencyClaim?

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
