import Foundation
import KinemaCore

/// What a status poll shows: the task's state without its stored request, so the API's most frequent read
/// (clients poll `task-result`) never decodes a request it does not need.
public struct TaskStatusRecord: Sendable, Equatable {
    /// The task id.
    public var id: UUID
    /// Lifecycle status.
    public var status: TaskStatus
    /// The seed the task renders with (reported as `extra.seed`).
    public var seed: UInt32
    /// The engine the task is routed to (reported as `extra.engine`).
    public var engine: String
    /// The request features a worker must honour to run the task.
    public var neededFeatures: RequestFeatures = []
    /// Blob key of the finished MP4 once succeeded.
    public var resultKey: String?
    /// Failure reason ("" unless failed or canceled).
    public var reason: String
    /// Progress of the current attempt, 0…100.
    public var progressPercent: Int
    /// Estimated seconds left.
    public var etaSeconds: Int
    /// When the task was submitted, its current or last attempt started, and it reached a terminal status.
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    /// Creates a status record (stores build these).
    public init(
        id: UUID, status: TaskStatus, seed: UInt32, engine: String, neededFeatures: RequestFeatures = [], resultKey: String?,
        reason: String, progressPercent: Int, etaSeconds: Int, createdAt: Date, startedAt: Date?, finishedAt: Date?
    ) {
        self.id = id
        self.status = status
        self.seed = seed
        self.engine = engine
        self.neededFeatures = neededFeatures
        self.resultKey = resultKey
        self.reason = reason
        self.progressPercent = progressPercent
        self.etaSeconds = etaSeconds
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

extension TaskRecord {
    /// The status part of the full record (what `taskStatus(id:tenant:)` returns for the same task).
    public var statusRecord: TaskStatusRecord {
        TaskStatusRecord(
            id: id, status: status, seed: upstream?.seed ?? request.seed, engine: engine ?? EngineNames.motion,
            neededFeatures: request.requiredFeatures,
            resultKey: resultKey, reason: reason,
            progressPercent: progressPercent, etaSeconds: etaSeconds, createdAt: createdAt, startedAt: startedAt,
            finishedAt: finishedAt
        )
    }
}

/// Where a queued task stands in its engine's queue (`TaskStore.queueEstimate`).
public struct QueueEstimate: Sendable, Equatable {
    /// Queued tasks of the engine submitted before this one.
    public var ahead: Int
    /// Tasks of the engine running now.
    public var running: Int
    /// Workers of the engine that honour the task's features and looked for work recently.
    public var workers: Int
    /// Mean seconds from claim to success of the engine's last 20 successful tasks; `nil` before the first.
    public var recentRenderSeconds: Double?

    public init(ahead: Int, running: Int, workers: Int, recentRenderSeconds: Double?) {
        self.ahead = ahead
        self.running = running
        self.workers = workers
        self.recentRenderSeconds = recentRenderSeconds
    }

    /// Seconds until the task is likely done: the work ahead of it shared by the live workers, then its own render
    /// (`ownSeconds`: the engine's recent mean, else the submit-time estimate). `nil` when no worker can run it.
    public func etaSeconds(ownEstimate: Int) -> Int? {
        guard workers > 0 else { return nil }
        let each = recentRenderSeconds ?? Double(max(1, ownEstimate))
        let wait = Double(ahead + running) / Double(workers) * each + each
        return Int(min(Double(RenderProgress.maxETASeconds), wait.rounded(.up)))
    }
}
