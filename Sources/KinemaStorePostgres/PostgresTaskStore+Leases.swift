import Foundation
import KinemaCore
import KinemaStore
import Logging
import PostgresNIO

// Worker writes and lease sweeps. Every write to a running task carries
// `status = 'processing' AND lease_id = $lease` in its WHERE clause and runs under the task's row lock
// (taken by the UPDATE itself, or by SELECT … FOR UPDATE before TaskStateMachine decides), so a
// presumed-dead worker can never overwrite a task that was rescued and claimed again.
extension PostgresTaskStore {
    /// Extends the lease to `now + leaseDuration` and records progress; `false` when the lease was lost.
    public func heartbeat(_ lease: TaskLease, progress: RenderProgress, leaseDuration: TimeInterval, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        let expiresMs = nowMs + PostgresTaskRow.millis(leaseDuration)
        // RenderProgress clamps in its init, but its fields are mutable: clamp again for the CHECKs.
        let percent = min(100, max(0, progress.percent))
        let eta = max(0, progress.etaSeconds)
        // The fence is all TaskStateMachine asks of a heartbeat, so the UPDATE alone decides (one round trip).
        return try await rows(
            """
            UPDATE tasks SET lease_expires_at = \(expiresMs), progress_percent = \(percent), eta_seconds = \(eta),
                             updated_at = \(nowMs)
            WHERE id = \(lease.taskID) AND status = 'processing' AND lease_id = \(lease.leaseID)
            RETURNING id
            """
        ).count == 1
    }

    /// SUCCEEDED with progress 100, ETA 0, `resultKey` and `finishedAt`; `false` when the lease was lost.
    public func complete(_ lease: TaskLease, resultKey: String, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        // As with heartbeats, the fence is the whole rule (TaskStateMachine's `.complete`); the attempt row
        // is closed in the same statement only when the task row was the lease's to finish.
        return try await rows(
            """
            WITH done AS (
                UPDATE tasks
                SET status = 'succeeded', progress_percent = 100, eta_seconds = 0, result_key = \(resultKey),
                    finished_at = \(nowMs), updated_at = \(nowMs), lease_id = NULL, lease_owner = NULL,
                    lease_expires_at = NULL
                WHERE id = \(lease.taskID) AND status = 'processing' AND lease_id = \(lease.leaseID)
                RETURNING id
            ),
            ended AS (
                UPDATE task_attempts SET outcome = 'succeeded', ended_at = GREATEST(started_at, \(nowMs)), error = NULL
                WHERE lease_id = \(lease.leaseID) AND outcome = 'running' AND EXISTS (SELECT 1 FROM done)
            )
            SELECT id FROM done
            """
        ).count == 1
    }

    /// CANCELED unless already finished (a running attempt ends, fenced by its lease); the status after it.
    public func cancel(id: UUID, tenant: String, now: Date) async throws -> TaskStatusRecord? {
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: PostgresTaskRow.lifecycleColumns) FROM tasks WHERE id = \(id) AND tenant = \(tenant) FOR UPDATE
                """, logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let lifecycle = try PostgresTaskRow.lifecycle(row).lifecycle
            if case let .success(transition) = TaskStateMachine.apply(.cancel, to: lifecycle) {
                if let leaseID = lifecycle.lease?.leaseID {
                    _ = try await Self.finishAttempt(
                        connection, taskID: id, leaseID: leaseID, transition, error: TaskStateMachine.canceledReason, nowMs: nowMs, logger: logger)
                } else {
                    _ = try await connection.query(
                        """
                        UPDATE tasks SET status = 'canceled', reason = \(transition.lifecycle.reason), eta_seconds = 0,
                                         finished_at = \(nowMs), updated_at = \(nowMs)
                        WHERE id = \(id) AND status = 'queued'
                        """, logger: logger
                    ).collect()
                }
            }
            let after = try await connection.query(
                "SELECT \(unescaped: PostgresTaskRow.statusColumns) FROM tasks WHERE id = \(id)", logger: logger
            ).collect()
            return try after.first.map(PostgresTaskRow.statusRecord)
        }
    }

    /// Stores (or clears) the task's upstream handle while it is QUEUED or PROCESSING; an accepted handle stays, and
    /// only the current lease writes an intent or a clear.
    public func recordUpstream(taskID: UUID, leaseID: UUID, handle: UpstreamHandle?, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        let id = handle?.id
        return try await rows(
            """
            UPDATE tasks SET upstream = \(handle?.encoded()), upstream_id = \(id), updated_at = \(nowMs)
            WHERE id = \(taskID) AND status IN ('queued', 'processing') AND (upstream_id IS NULL OR \(id)::text IS NOT NULL)
              AND (\(id)::text IS NOT NULL OR (status = 'processing' AND lease_id = \(leaseID)))
            RETURNING id
            """
        ).count == 1
    }

    /// Requeues (retryable, attempts left) or FAILS with `reason`, keeping progress; `false` when the lease was lost.
    public func fail(_ lease: TaskLease, reason: String, retryable: Bool, now: Date) async throws -> Bool {
        let event = TaskEvent.fail(leaseID: lease.leaseID, reason: reason, retryable: retryable)
        return try await endAttempt(lease, event: event, error: reason, now: now)
    }

    /// QUEUED again with the attempt un-counted (`attempt - 1`); `false` when the lease was lost.
    public func release(_ lease: TaskLease, now: Date) async throws -> Bool {
        try await endAttempt(lease, event: .release(leaseID: lease.leaseID), error: nil, now: now)
    }

    /// Requeues or FAILS every task whose lease expired before `now`.
    ///
    /// Safe on every node at once: the sweep locks the expired rows with `FOR UPDATE SKIP LOCKED`, so a
    /// second sweep skips what the first holds, and re-checks rows the first already requeued (they no
    /// longer match). A row locked by a worker's write at that moment waits for the next sweep.
    public func rescueExpiredLeases(now: Date) async throws -> RescueReport {
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: PostgresTaskRow.lifecycleColumns) FROM tasks
                WHERE status = 'processing' AND lease_expires_at < \(nowMs)
                ORDER BY lease_expires_at, seq
                FOR UPDATE SKIP LOCKED
                """, logger: logger
            ).collect()
            return try await Self.requeueOrFail(
                connection, rows, event: { _ in .leaseExpired(now: PostgresTaskRow.date(nowMs)) }, nowMs: nowMs,
                error: "lease expired without a heartbeat", logger: logger
            )
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
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            // Waits for (rather than skips) rows another sweep holds: the worker wants all of its tasks handled now,
            // and whatever that sweep did is re-checked once its lock is released.
            let rows = try await connection.query(
                """
                SELECT \(unescaped: PostgresTaskRow.lifecycleColumns) FROM tasks
                WHERE status = 'processing' AND lease_owner = \(workerID)
                ORDER BY lease_expires_at, seq
                FOR UPDATE
                """, logger: logger
            ).collect()
            return try await Self.requeueOrFail(connection, rows, event: event, nowMs: nowMs, error: error, logger: logger)
        }
    }

    // MARK: Shared steps

    /// Locks the task, lets TaskStateMachine decide `event`, and writes the attempt's end (fenced).
    private func endAttempt(_ lease: TaskLease, event: TaskEvent, error: String?, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: PostgresTaskRow.lifecycleColumns) FROM tasks WHERE id = \(lease.taskID) FOR UPDATE
                """, logger: logger
            ).collect()
            guard let row = rows.first else { return false }
            let lifecycle = try PostgresTaskRow.lifecycle(row).lifecycle
            guard case let .success(transition) = TaskStateMachine.apply(event, to: lifecycle) else { return false }
            return try await Self.finishAttempt(
                connection, taskID: lease.taskID, leaseID: lease.leaseID, transition, error: error, nowMs: nowMs,
                logger: logger
            )
        }
    }

    /// Writes a transition that ends the running attempt without a result (requeue or FAILED), fenced by
    /// `leaseID`, and notifies idle workers of a requeue. `false` when the task was no longer held under that lease.
    static func finishAttempt(
        _ connection: PostgresConnection, taskID: UUID, leaseID: UUID, _ transition: TaskTransition, error: String?,
        nowMs: Int64, logger: Logger
    ) async throws -> Bool {
        let next = transition.lifecycle
        let requeued = next.status == .queued
        let finishedAt: Int64? = next.status.isTerminal ? nowMs : nil
        let outcome = outcome(of: transition.endedAttempt ?? .failed)
        let rows = try await connection.query(
            """
            WITH moved AS (
                UPDATE tasks
                SET status = \(next.status.rawValue), attempt = \(next.attempt), reason = \(next.reason),
                    -- a requeued task starts over; a failed one keeps how far it got
                    progress_percent = CASE WHEN \(requeued) THEN 0 ELSE progress_percent END,
                    finished_at = \(finishedAt), updated_at = \(nowMs),
                    lease_id = NULL, lease_owner = NULL, lease_expires_at = NULL
                WHERE id = \(taskID) AND status = 'processing' AND lease_id = \(leaseID)
                RETURNING id
            ),
            ended AS (
                -- GREATEST keeps ended_at >= started_at even if the clocks of different nodes disagree.
                UPDATE task_attempts SET outcome = \(outcome.rawValue), ended_at = GREATEST(started_at, \(nowMs)),
                                         error = \(error)
                WHERE lease_id = \(leaseID) AND outcome = 'running' AND EXISTS (SELECT 1 FROM moved)
            )
            SELECT id FROM moved
            """, logger: logger
        ).collect()
        guard rows.count == 1 else { return false }
        if requeued {
            // Delivered at commit, so a woken worker finds the task queued.
            _ = try await connection.query(
                "SELECT pg_notify(\(notificationChannel), \(taskID.uuidString))", logger: logger
            ).collect()
        }
        return true
    }

    /// Applies a lease-loss event to each locked running task in `rows` and reports what became of them.
    static func requeueOrFail(
        _ connection: PostgresConnection, _ rows: [PostgresRow], event: (_ leaseID: UUID) -> TaskEvent, nowMs: Int64, error: String?,
        logger: Logger
    ) async throws -> RescueReport {
        var report = RescueReport()
        for row in rows {
            let (taskID, lifecycle) = try PostgresTaskRow.lifecycle(row)
            guard let leaseID = lifecycle.lease?.leaseID,
                case let .success(transition) = TaskStateMachine.apply(event(leaseID), to: lifecycle)
            else { continue }
            guard
                try await finishAttempt(
                    connection, taskID: taskID, leaseID: leaseID, transition, error: error, nowMs: nowMs, logger: logger
                )
            else { continue }
            if transition.lifecycle.status == .queued {
                report.requeued.append(taskID)
            } else {
                report.failed.append(taskID)
            }
        }
        return report
    }

    private static func outcome(of ending: TaskAttemptEnding) -> TaskAttemptRecord.Outcome {
        switch ending {
        case .succeeded: .succeeded
        case .failed, .canceled: .failed
        case .expired: .expired
        case .released: .released
        }
    }
}
