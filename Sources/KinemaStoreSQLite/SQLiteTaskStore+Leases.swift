import Foundation
import GRDB
import KinemaCore
import KinemaStore

// Worker writes and lease sweeps. Each runs in one IMMEDIATE transaction: read the task's lifecycle
// facts, let TaskStateMachine decide, then write with `status = 'processing' AND lease_id = ?` in the
// WHERE clause, so even a bug in the decision cannot let a stale lease overwrite a rescued task.
extension SQLiteTaskStore {
    /// Extends the lease to `now + leaseDuration` and records progress; `false` when the lease was lost.
    public func heartbeat(_ lease: TaskLease, progress: RenderProgress, leaseDuration: TimeInterval, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        let expiresMs = nowMs + TaskRow.millis(leaseDuration)
        return try await write { db in
            let event = TaskEvent.heartbeat(leaseID: lease.leaseID, expiresAt: TaskRow.date(expiresMs))
            guard try Self.decide(db, taskID: lease.taskID, event) != nil else { return false }
            // RenderProgress clamps in its init, but its fields are mutable: clamp again for the CHECKs.
            let percent = min(100, max(0, progress.percent))
            let eta = max(0, progress.etaSeconds)
            try db.execute(
                sql: """
                    UPDATE tasks SET lease_expires_at = ?, progress_percent = ?, eta_seconds = ?, updated_at = ?
                    WHERE id = ? AND status = 'processing' AND lease_id = ?
                    """,
                arguments: [
                    expiresMs, percent, eta, nowMs, lease.taskID.uuidString, lease.leaseID.uuidString,
                ]
            )
            return db.changesCount == 1
        }
    }

    /// SUCCEEDED with progress 100, ETA 0, `resultKey` and `finishedAt`; `false` when the lease was lost.
    public func complete(_ lease: TaskLease, resultKey: String, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            guard let transition = try Self.decide(db, taskID: lease.taskID, .complete(leaseID: lease.leaseID)) else {
                return false
            }
            try db.execute(
                sql: """
                    UPDATE tasks
                    SET status = ?, progress_percent = 100, eta_seconds = 0, result_key = ?, finished_at = ?,
                        updated_at = ?, lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = ? AND status = 'processing' AND lease_id = ?
                    """,
                arguments: [
                    transition.lifecycle.status.rawValue, resultKey, nowMs, nowMs,
                    lease.taskID.uuidString, lease.leaseID.uuidString,
                ]
            )
            guard db.changesCount == 1 else { return false }
            try Self.endAttempt(db, leaseID: lease.leaseID, ending: .succeeded, error: nil, nowMs: nowMs)
            return true
        }
    }

    /// Requeues (retryable, attempts left) or FAILS with `reason`, keeping progress; `false` when the lease was lost.
    public func fail(_ lease: TaskLease, reason: String, retryable: Bool, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            let event = TaskEvent.fail(leaseID: lease.leaseID, reason: reason, retryable: retryable)
            guard let transition = try Self.decide(db, taskID: lease.taskID, event) else { return false }
            return try Self.finishAttempt(db, taskID: lease.taskID, leaseID: lease.leaseID, transition, error: reason, nowMs: nowMs)
        }
    }

    /// QUEUED again with the attempt un-counted (`attempt - 1`); `false` when the lease was lost.
    public func release(_ lease: TaskLease, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            guard let transition = try Self.decide(db, taskID: lease.taskID, .release(leaseID: lease.leaseID)) else {
                return false
            }
            return try Self.finishAttempt(db, taskID: lease.taskID, leaseID: lease.leaseID, transition, error: nil, nowMs: nowMs)
        }
    }

    /// CANCELED unless already finished (a running attempt ends, fenced by its lease); the status after it.
    public func cancel(id: UUID, tenant: String, now: Date) async throws -> TaskStatusRecord? {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT \(TaskRow.lifecycleColumns) FROM tasks WHERE id = ? AND tenant = ?", arguments: [id.uuidString, tenant])
            else { return nil }
            let lifecycle = try TaskRow.lifecycle(row)
            if case let .success(transition) = TaskStateMachine.apply(.cancel, to: lifecycle) {
                if let leaseID = lifecycle.lease?.leaseID {
                    _ = try Self.finishAttempt(db, taskID: id, leaseID: leaseID, transition, error: TaskStateMachine.canceledReason, nowMs: nowMs)
                } else {
                    try db.execute(
                        sql: """
                            UPDATE tasks SET status = 'canceled', reason = ?, eta_seconds = 0, finished_at = ?, updated_at = ?
                            WHERE id = ? AND status = 'queued'
                            """,
                        arguments: [transition.lifecycle.reason, nowMs, nowMs, id.uuidString])
                }
            }
            return try Row.fetchOne(db, sql: "SELECT \(TaskRow.statusColumns) FROM tasks WHERE id = ?", arguments: [id.uuidString])
                .map(TaskRow.statusRecord)
        }
    }

    /// Stores (or clears) the task's upstream handle while it is QUEUED or PROCESSING; an accepted handle stays, and
    /// only the current lease writes an intent or a clear.
    public func recordUpstream(taskID: UUID, leaseID: UUID, handle: UpstreamHandle?, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE tasks SET upstream = ?, upstream_id = ?, updated_at = ?
                    WHERE id = ? AND status IN ('queued', 'processing') AND (upstream_id IS NULL OR ? IS NOT NULL)
                      AND (? IS NOT NULL OR (status = 'processing' AND lease_id = ?))
                    """,
                arguments: [handle?.encoded(), handle?.id, nowMs, taskID.uuidString, handle?.id, handle?.id, leaseID.uuidString]
            )
            return db.changesCount == 1
        }
    }

    /// Requeues or FAILS every task whose lease expired before `now`, in one transaction.
    public func rescueExpiredLeases(now: Date) async throws -> RescueReport {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(TaskRow.lifecycleColumns) FROM tasks
                    WHERE status = 'processing' AND lease_expires_at < ? ORDER BY lease_expires_at, rowid
                    """,
                arguments: [nowMs]
            )
            return try Self.requeueOrFail(
                db, rows, event: { _ in .leaseExpired(now: TaskRow.date(nowMs)) }, nowMs: nowMs, error: "lease expired without a heartbeat")
        }
    }

    /// Requeues or FAILS every task leased by `workerID`, expired or not.
    public func requeueOrphans(ofWorker workerID: String, now: Date) async throws -> RescueReport {
        try await endLeases(ofWorker: workerID, now: now, event: { _ in .orphaned }, error: "worker \(workerID) restarted while holding the lease")
    }

    /// Releases (un-counted) every task leased by `workerID`.
    public func releaseLeases(ofWorker workerID: String, now: Date) async throws -> RescueReport {
        try await endLeases(ofWorker: workerID, now: now, event: { .release(leaseID: $0) }, error: nil)
    }

    /// Applies `event` to every task leased by `workerID`, in one transaction.
    private func endLeases(
        ofWorker workerID: String, now: Date, event: @escaping @Sendable (_ leaseID: UUID) -> TaskEvent, error: String?
    ) async throws -> RescueReport {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(TaskRow.lifecycleColumns) FROM tasks
                    WHERE status = 'processing' AND lease_owner = ? ORDER BY lease_expires_at, rowid
                    """,
                arguments: [workerID]
            )
            return try Self.requeueOrFail(db, rows, event: event, nowMs: nowMs, error: error)
        }
    }

    // MARK: Shared steps

    /// The state machine's verdict on `event` for the stored task; `nil` when refused or unknown.
    static func decide(_ db: Database, taskID: UUID, _ event: TaskEvent) throws -> TaskTransition? {
        guard
            let row = try Row.fetchOne(
                db,
                sql: "SELECT \(TaskRow.lifecycleColumns) FROM tasks WHERE id = ?",
                arguments: [taskID.uuidString]
            )
        else { return nil }
        let lifecycle = try TaskRow.lifecycle(row)
        guard case let .success(transition) = TaskStateMachine.apply(event, to: lifecycle) else { return nil }
        return transition
    }

    /// Writes a transition that ends the running attempt without a result (requeue or FAILED),
    /// fenced by `leaseID`. `false` when the task was no longer held under that lease.
    static func finishAttempt(
        _ db: Database, taskID: UUID, leaseID: UUID, _ transition: TaskTransition, error: String?, nowMs: Int64
    ) throws -> Bool {
        let next = transition.lifecycle
        let requeued = next.status == .queued
        try db.execute(
            sql: """
                UPDATE tasks
                SET status = ?, attempt = ?, reason = ?,
                    -- a requeued task starts over; a failed one keeps how far it got
                    progress_percent = CASE WHEN ? THEN 0 ELSE progress_percent END,
                    finished_at = ?, updated_at = ?,
                    lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = ? AND status = 'processing' AND lease_id = ?
                """,
            arguments: [
                next.status.rawValue, next.attempt, next.reason, requeued,
                next.status.isTerminal ? nowMs : nil, nowMs, taskID.uuidString, leaseID.uuidString,
            ]
        )
        guard db.changesCount == 1 else { return false }
        try endAttempt(db, leaseID: leaseID, ending: transition.endedAttempt ?? .failed, error: error, nowMs: nowMs)
        return true
    }

    /// Closes the attempt row of `leaseID`.
    static func endAttempt(_ db: Database, leaseID: UUID, ending: TaskAttemptEnding, error: String?, nowMs: Int64) throws {
        let outcome: TaskAttemptRecord.Outcome =
            switch ending {
            case .succeeded: .succeeded
            case .failed, .canceled: .failed
            case .expired: .expired
            case .released: .released
            }
        // MAX keeps ended_at >= started_at even if clocks of different nodes disagree.
        try db.execute(
            sql: """
                UPDATE task_attempts SET outcome = ?, ended_at = MAX(started_at, ?), error = ?
                WHERE lease_id = ? AND outcome = 'running'
                """,
            arguments: [outcome.rawValue, nowMs, error, leaseID.uuidString]
        )
    }

    /// Applies a lease-loss event to each running task in `rows` and reports what became of them.
    static func requeueOrFail(
        _ db: Database, _ rows: [Row], event: (_ leaseID: UUID) -> TaskEvent, nowMs: Int64, error: String?
    ) throws -> RescueReport {
        var report = RescueReport()
        for row in rows {
            let taskID = try TaskRow.uuid(row["id"], column: "id")
            let lifecycle = try TaskRow.lifecycle(row)
            guard let leaseID = lifecycle.lease?.leaseID,
                case let .success(transition) = TaskStateMachine.apply(event(leaseID), to: lifecycle)
            else { continue }
            guard try finishAttempt(db, taskID: taskID, leaseID: leaseID, transition, error: error, nowMs: nowMs)
            else { continue }
            if transition.lifecycle.status == .queued {
                report.requeued.append(taskID)
            } else {
                report.failed.append(taskID)
            }
        }
        return report
    }
}
