import Foundation
import KinemaCore
import KinemaStore
import PostgresNIO

extension PostgresTaskStore {
    /// Inserts a QUEUED task and notifies idle workers; throws `.duplicateTask` for a known id, `.invalidRecord` for `maxAttempts < 1`.
    public func enqueue(_ task: NewTask, now: Date) async throws {
        guard task.maxAttempts >= 1 else {
            throw StoreError(.invalidRecord, "task \(task.id) has maxAttempts \(task.maxAttempts); it must be at least 1")
        }
        guard task.etaSeconds >= 0 else {
            throw StoreError(.invalidRecord, "task \(task.id) has a negative etaSeconds \(task.etaSeconds)")
        }
        let requestJSON = try PostgresTaskRow.encode(task.request)
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        // One statement: the NOTIFY is delivered when the INSERT commits, never for a task that is not there.
        let query: PostgresQuery = """
            WITH inserted AS (
                INSERT INTO tasks (id, tenant, status, request_json, image_key, end_image_key, eta_seconds,
                                   attempt, max_attempts, engine, features, created_at, updated_at)
                VALUES (\(task.id), \(task.tenant), 'queued', \(requestJSON), \(task.imageKey), \(task.endImageKey),
                        \(task.etaSeconds), 0, \(task.maxAttempts), \(task.engine), \(task.request.requiredFeatures.rawValue),
                        \(nowMs), \(nowMs))
                RETURNING id
            )
            SELECT pg_notify(\(Self.notificationChannel), id::text) FROM inserted
            """
        guard task.tenantActiveLimit != nil || task.idempotency != nil else {
            _ = try await withConnection { connection in
                do {
                    return try await connection.query(query, logger: logger).collect().count
                } catch  where Self.isUniqueViolation(error) {
                    throw StoreError(.duplicateTask, "a task with id \(task.id) already exists")
                }
            }
            return
        }
        try await transaction { connection in
            if let claim = task.idempotency {
                // The key first: a concurrent submit with the same key waits on its row and then finds it taken
                // (an expired row is taken over); the whole transaction, task included, is undone on a conflict.
                let expiry = nowMs - PostgresTaskRow.millis(IdempotencyClaim.lifetime)
                let taken = try await connection.query(
                    """
                    INSERT INTO idempotency_keys (tenant, key, request_hash, task_id, created_at)
                    VALUES (\(task.tenant), \(claim.key), \(claim.requestHash), \(task.id), \(nowMs))
                    ON CONFLICT (tenant, key) DO UPDATE
                        SET request_hash = EXCLUDED.request_hash, task_id = EXCLUDED.task_id, created_at = EXCLUDED.created_at
                        WHERE idempotency_keys.created_at < \(expiry)
                    RETURNING task_id
                    """, logger: logger
                ).collect()
                if taken.isEmpty {
                    let rows = try await connection.query(
                        "SELECT task_id, request_hash FROM idempotency_keys WHERE tenant = \(task.tenant) AND key = \(claim.key)", logger: logger
                    ).collect()
                    guard let row = rows.first else { throw StoreError(.unavailable, "an idempotency key vanished while it was checked; retry") }
                    let (id, hash) = try row.decode((UUID, String).self)
                    throw IdempotencyConflict(existing: IdempotentSubmit(taskID: id, requestHash: hash))
                }
            }
            if let limit = task.tenantActiveLimit {
                // Capped: submits of one tenant serialize on a transaction-scoped advisory lock (keyed by the
                // tenant), so two nodes cannot both count one below the cap and both insert.
                _ = try await connection.query(
                    "SELECT pg_advisory_xact_lock(\(Self.tenantLockSpace), hashtext(\(task.tenant)))", logger: logger
                ).collect()
                let counted = try await connection.query(
                    "SELECT count(*) FROM tasks WHERE tenant = \(task.tenant) AND status IN ('queued', 'processing')",
                    logger: logger
                ).collect()
                let active = try counted.first?.decode(Int.self) ?? 0
                if active >= limit {
                    throw StoreError(.quotaExceeded, "tenant \(task.tenant) already has \(active) queued or running tasks (limit \(limit))")
                }
            }
            do {
                _ = try await connection.query(query, logger: logger).collect()
            } catch  where Self.isUniqueViolation(error) {
                throw StoreError(.duplicateTask, "a task with id \(task.id) already exists")
            }
        }
    }

    /// The submit a live idempotency key stands for.
    public func idempotentSubmit(tenant: String, key: String, now: Date) async throws -> IdempotentSubmit? {
        let expiry = PostgresTaskRow.millis(now) - PostgresTaskRow.millis(IdempotencyClaim.lifetime)
        let rows = try await rows(
            "SELECT task_id, request_hash FROM idempotency_keys WHERE tenant = \(tenant) AND key = \(key) AND created_at >= \(expiry)")
        guard let row = rows.first else { return nil }
        let (id, hash) = try PostgresTaskRow.readable { try row.decode((UUID, String).self) }
        return IdempotentSubmit(taskID: id, requestHash: hash)
    }

    /// Deletes expired idempotency keys.
    public func sweepIdempotencyKeys(now: Date) async throws -> Int {
        let expiry = PostgresTaskRow.millis(now) - PostgresTaskRow.millis(IdempotencyClaim.lifetime)
        return try await rows("DELETE FROM idempotency_keys WHERE created_at < \(expiry) RETURNING 1").count
    }

    /// First key of the two-key advisory locks that serialize one tenant's capped submits ("kq" for quota).
    static let tenantLockSpace: Int32 = 0x6B71

    /// The task if it belongs to `tenant`.
    public func task(id: UUID, tenant: String) async throws -> TaskRecord? {
        try await rows("SELECT \(unescaped: PostgresTaskRow.columns) FROM tasks WHERE id = \(id) AND tenant = \(tenant)")
            .first.map(PostgresTaskRow.record)
    }

    /// The poll's view of the task: the seed comes out of the stored JSON in SQL, nothing else is decoded.
    public func taskStatus(id: UUID, tenant: String) async throws -> TaskStatusRecord? {
        try await rows("SELECT \(unescaped: PostgresTaskRow.statusColumns) FROM tasks WHERE id = \(id) AND tenant = \(tenant)")
            .first.map(PostgresTaskRow.statusRecord)
    }

    /// The statuses of the tasks with these ids.
    public func tasks(tenant: String, limit: Int, after cursor: TaskPageCursor?) async throws -> [TaskStatusRecord] {
        if let cursor {
            let ms = PostgresTaskRow.millis(cursor.createdAt)
            return try await rows(
                """
                SELECT \(unescaped: PostgresTaskRow.statusColumns) FROM tasks
                WHERE tenant = \(tenant) AND (created_at < \(ms) OR (created_at = \(ms) AND id < \(cursor.id)))
                ORDER BY created_at DESC, id DESC LIMIT \(limit)
                """
            ).map(PostgresTaskRow.statusRecord)
        }
        return try await rows(
            "SELECT \(unescaped: PostgresTaskRow.statusColumns) FROM tasks WHERE tenant = \(tenant) ORDER BY created_at DESC, id DESC LIMIT \(limit)"
        ).map(PostgresTaskRow.statusRecord)
    }

    public func taskStatuses(ids: [UUID]) async throws -> [TaskStatusRecord] {
        guard !ids.isEmpty else { return [] }
        return try await rows("SELECT \(unescaped: PostgresTaskRow.statusColumns) FROM tasks WHERE id = ANY(\(ids))").map(
            PostgresTaskRow.statusRecord)
    }

    /// The task whatever its tenant.
    public func task(id: UUID) async throws -> TaskRecord? {
        try await rows("SELECT \(unescaped: PostgresTaskRow.columns) FROM tasks WHERE id = \(id)")
            .first.map(PostgresTaskRow.record)
    }

    /// Takes the oldest QUEUED task (by `createdAt`, then insertion order) under a new lease.
    public func claim(workerID: String, route: ClaimRoute, leaseDuration: TimeInterval, now: Date) async throws -> ClaimedTask? {
        guard !route.engines.isEmpty else { return nil }
        // Features the worker lacks: a task needing any of them is not for it.
        let lacking = RequestFeatures.all.subtracting(route.capabilities).rawValue
        let engines = route.engines
        let leaseID = UUID()
        let nowMs = PostgresTaskRow.millis(now)
        let expiresMs = nowMs + PostgresTaskRow.millis(leaseDuration)
        // One statement, so one transaction: the inner SELECT locks the oldest queued row that no other
        // claimer holds (SKIP LOCKED: concurrent claimers take different rows instead of queueing behind
        // one), the UPDATE takes it (TaskStateMachine's `.claim`: attempt + 1, a new lease), and the
        // attempt row is inserted with it.
        let query: PostgresQuery = """
            WITH claimed AS (
                UPDATE tasks
                SET status = 'processing', attempt = attempt + 1, lease_id = \(leaseID), lease_owner = \(workerID),
                    lease_expires_at = \(expiresMs), started_at = \(nowMs), updated_at = \(nowMs),
                    progress_percent = 0
                WHERE id = (
                    SELECT id FROM tasks
                    WHERE status = 'queued' AND attempt < max_attempts AND engine = ANY(\(engines))
                        AND (features & \(lacking)) = 0
                    ORDER BY created_at, seq
                    LIMIT 1
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING \(unescaped: PostgresTaskRow.columns)
            ),
            attempt AS (
                INSERT INTO task_attempts (lease_id, task_id, attempt, worker_id, started_at, outcome)
                SELECT \(leaseID), id, attempt, \(workerID), \(nowMs), 'running' FROM claimed
            )
            SELECT \(unescaped: PostgresTaskRow.columns) FROM claimed
            """
        guard let row = try await rows(query).first else { return nil }
        let task = try PostgresTaskRow.record(row)
        return ClaimedTask(task: task, lease: TaskLease(taskID: task.id, leaseID: leaseID, workerID: workerID, attempt: task.attempt))
    }

    /// Every claim of the task, oldest first (a released attempt's number is reused by the next claim).
    public func attempts(of taskID: UUID) async throws -> [TaskAttemptRecord] {
        try await rows(
            """
            SELECT lease_id, task_id, attempt, worker_id, started_at, ended_at, outcome, error
            FROM task_attempts WHERE task_id = \(taskID) ORDER BY started_at, seq
            """
        ).map(PostgresTaskRow.attempt)
    }

    /// Tasks per status, with every status present (zero when none).
    public func countByStatus() async throws -> [TaskStatus: Int] {
        var counts: [TaskStatus: Int] = [:]
        for status in TaskStatus.allCases { counts[status] = 0 }
        for row in try await rows("SELECT status, COUNT(*) FROM tasks GROUP BY status") {
            let (name, count) = try PostgresTaskRow.readable { try row.decode((String, Int).self) }
            counts[try PostgresTaskRow.status(name)] = count
        }
        return counts
    }

    public func countByStatusAndEngine() async throws -> [TaskCount] {
        try await rows("SELECT status, engine, COUNT(*) FROM tasks GROUP BY status, engine").map { row in
            let (name, engine, count) = try PostgresTaskRow.readable { try row.decode((String, String?, Int).self) }
            return TaskCount(status: try PostgresTaskRow.status(name), engine: engine ?? EngineNames.motion, count: count)
        }
    }
}
