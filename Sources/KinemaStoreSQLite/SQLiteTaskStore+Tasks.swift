import Foundation
import GRDB
import KinemaCore
import KinemaStore

extension SQLiteTaskStore {
    /// Inserts a QUEUED task; throws `.duplicateTask` for a known id, `.invalidRecord` for `maxAttempts < 1`.
    public func enqueue(_ task: NewTask, now: Date) async throws {
        guard task.maxAttempts >= 1 else {
            throw StoreError(.invalidRecord, "task \(task.id) has maxAttempts \(task.maxAttempts); it must be at least 1")
        }
        guard task.etaSeconds >= 0 else {
            throw StoreError(.invalidRecord, "task \(task.id) has a negative etaSeconds \(task.etaSeconds)")
        }
        let requestJSON = try TaskRow.encode(task.request)
        let nowMs = TaskRow.millis(now)
        do {
            try await batcher.write { db in
                // The write transaction holds SQLite's only write lock, so count and insert cannot interleave
                // with another submit (nor the idempotency key's check and insert).
                if let claim = task.idempotency, let existing = try Self.liveIdempotencyKey(db, tenant: task.tenant, key: claim.key, nowMs: nowMs) {
                    throw IdempotencyConflict(existing: existing)
                }
                if let limit = task.tenantActiveLimit {
                    let active =
                        try Int.fetchOne(
                            db, sql: "SELECT count(*) FROM tasks WHERE tenant = ? AND status IN ('queued', 'processing')",
                            arguments: [task.tenant]
                        ) ?? 0
                    if active >= limit {
                        throw StoreError(.quotaExceeded, "tenant \(task.tenant) already has \(active) queued or running tasks (limit \(limit))")
                    }
                }
                try db.execute(
                    sql: """
                        INSERT INTO tasks (id, tenant, status, request_json, image_key, end_image_key, eta_seconds,
                                           attempt, max_attempts, engine, features, created_at, updated_at)
                        VALUES (?, ?, 'queued', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        task.id.uuidString, task.tenant, requestJSON, task.imageKey, task.endImageKey,
                        task.etaSeconds, task.maxAttempts, task.engine, task.request.requiredFeatures.rawValue, nowMs, nowMs,
                    ]
                )
                if let claim = task.idempotency {
                    // An expired row for the key is replaced.
                    try db.execute(
                        sql: """
                            INSERT OR REPLACE INTO idempotency_keys (tenant, key, request_hash, task_id, created_at) VALUES (?, ?, ?, ?, ?)
                            """,
                        arguments: [task.tenant, claim.key, claim.requestHash, task.id.uuidString, nowMs])
                }
            }
        } catch let conflict as IdempotencyConflict {
            throw conflict
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
            throw StoreError(.duplicateTask, "a task with id \(task.id) already exists")
        } catch {
            throw Self.storeError(error)
        }
    }

    /// The task if it belongs to `tenant`.
    public func task(id: UUID, tenant: String) async throws -> TaskRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(TaskRow.columns) FROM tasks WHERE id = ? AND tenant = ?",
                arguments: [id.uuidString, tenant]
            ).map(TaskRow.record)
        }
    }

    /// The poll's view of the task: the seed comes out of the stored JSON in SQL, nothing else is decoded.
    public func taskStatus(id: UUID, tenant: String) async throws -> TaskStatusRecord? {
        // On the calling thread when an inline connection is free (polls are the API's hottest path); never a
        // synchronous pool read, which can deadlock from Swift's cooperative pool (seen here: both pool threads
        // waiting for readers whose work needed those same threads).
        try await quickRead { db in
            // A cursor's row reads the statement's columns in place (fetchOne would copy them all first).
            let rows = try Row.fetchCursor(
                db.cachedStatement(sql: "SELECT \(TaskRow.statusColumns) FROM tasks WHERE id = ? AND tenant = ?"),
                arguments: [id.uppercasedText, tenant])
            return try rows.next().map(TaskRow.statusRecord)
        }
    }

    /// The submit a live idempotency key stands for.
    public func idempotentSubmit(tenant: String, key: String, now: Date) async throws -> IdempotentSubmit? {
        let nowMs = TaskRow.millis(now)
        return try await read { db in try Self.liveIdempotencyKey(db, tenant: tenant, key: key, nowMs: nowMs) }
    }

    /// Deletes expired idempotency keys.
    public func sweepIdempotencyKeys(now: Date) async throws -> Int {
        let expiry = TaskRow.millis(now) - TaskRow.millis(IdempotencyClaim.lifetime)
        return try await write { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [expiry])
            return db.changesCount
        }
    }

    static func liveIdempotencyKey(_ db: Database, tenant: String, key: String, nowMs: Int64) throws -> IdempotentSubmit? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT task_id, request_hash FROM idempotency_keys WHERE tenant = ? AND key = ? AND created_at >= ?",
                arguments: [tenant, key, nowMs - TaskRow.millis(IdempotencyClaim.lifetime)])
        else { return nil }
        return IdempotentSubmit(taskID: try TaskRow.uuid(row["task_id"], column: "idempotency_keys.task_id"), requestHash: row["request_hash"])
    }

    /// The statuses of the tasks with these ids (in batches within SQLite's parameter limit).
    public func tasks(tenant: String, limit: Int, after cursor: TaskPageCursor?) async throws -> [TaskStatusRecord] {
        try await read { db in
            if let cursor {
                let ms = TaskRow.millis(cursor.createdAt)
                return try Row.fetchAll(
                    db,
                    sql: """
                        SELECT \(TaskRow.statusColumns) FROM tasks WHERE tenant = ? AND (created_at < ? OR (created_at = ? AND id < ?))
                        ORDER BY created_at DESC, id DESC LIMIT ?
                        """,
                    arguments: [tenant, ms, ms, cursor.id.uuidString, limit]
                ).map(TaskRow.statusRecord)
            }
            return try Row.fetchAll(
                db, sql: "SELECT \(TaskRow.statusColumns) FROM tasks WHERE tenant = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                arguments: [tenant, limit]
            ).map(TaskRow.statusRecord)
        }
    }

    public func taskStatuses(ids: [UUID]) async throws -> [TaskStatusRecord] {
        guard !ids.isEmpty else { return [] }
        let texts = ids.map(\.uuidString)
        return try await read { db in
            var records: [TaskStatusRecord] = []
            for start in stride(from: 0, to: texts.count, by: 500) {
                let batch = Array(texts[start..<min(start + 500, texts.count)])
                let marks = Array(repeating: "?", count: batch.count).joined(separator: ",")
                records += try Row.fetchAll(
                    db, sql: "SELECT \(TaskRow.statusColumns) FROM tasks WHERE id IN (\(marks))", arguments: StatementArguments(batch)
                ).map(TaskRow.statusRecord)
            }
            return records
        }
    }

    /// The task whatever its tenant.
    public func task(id: UUID) async throws -> TaskRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT \(TaskRow.columns) FROM tasks WHERE id = ?", arguments: [id.uuidString])
                .map(TaskRow.record)
        }
    }

    /// Takes the oldest QUEUED task of the route (by `createdAt`, then insertion order) under a new lease.
    public func claim(workerID: String, route: ClaimRoute, leaseDuration: TimeInterval, now: Date) async throws -> ClaimedTask? {
        guard !route.engines.isEmpty else { return nil }
        let leaseID = UUID()
        let nowMs = TaskRow.millis(now)
        let expiresMs = nowMs + TaskRow.millis(leaseDuration)
        // Features the worker lacks: a task needing any of them is not for it.
        let lacking = RequestFeatures.all.subtracting(route.capabilities).rawValue
        let engineList = Array(repeating: "?", count: route.engines.count).joined(separator: ", ")
        return try await write { db in
            // One statement picks the oldest queued task and takes it (TaskStateMachine's `.claim`);
            // the IMMEDIATE transaction already holds SQLite's write lock, so no other claimer can race it.
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        UPDATE tasks
                        SET status = 'processing', attempt = attempt + 1, lease_id = ?, lease_owner = ?,
                            lease_expires_at = ?, started_at = ?, updated_at = ?, progress_percent = 0
                        WHERE rowid = (
                            SELECT rowid FROM tasks
                            WHERE status = 'queued' AND attempt < max_attempts AND engine IN (\(engineList))
                                AND (features & ?) = 0
                            ORDER BY created_at, rowid
                            LIMIT 1
                        )
                        RETURNING \(TaskRow.columns)
                        """,
                    arguments: StatementArguments([leaseID.uuidString, workerID, expiresMs, nowMs, nowMs] as [any DatabaseValueConvertible])
                        + StatementArguments(route.engines) + StatementArguments([lacking])
                )
            else { return nil }
            let task = try TaskRow.record(row)
            try db.execute(
                sql: """
                    INSERT INTO task_attempts (lease_id, task_id, attempt, worker_id, started_at, outcome)
                    VALUES (?, ?, ?, ?, ?, 'running')
                    """,
                arguments: [leaseID.uuidString, task.id.uuidString, task.attempt, workerID, nowMs]
            )
            return ClaimedTask(task: task, lease: TaskLease(taskID: task.id, leaseID: leaseID, workerID: workerID, attempt: task.attempt))
        }
    }

    /// Every claim of the task, oldest first (a released attempt's number is reused by the next claim).
    public func attempts(of taskID: UUID) async throws -> [TaskAttemptRecord] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT lease_id, task_id, attempt, worker_id, started_at, ended_at, outcome, error
                    FROM task_attempts WHERE task_id = ? ORDER BY started_at, rowid
                    """,
                arguments: [taskID.uuidString]
            ).map(TaskRow.attempt)
        }
    }

    /// Tasks per status, with every status present (zero when none).
    public func countByStatus() async throws -> [TaskStatus: Int] {
        try await read { db in
            var counts: [TaskStatus: Int] = [:]
            for status in TaskStatus.allCases { counts[status] = 0 }
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM tasks GROUP BY status") {
                counts[try TaskRow.status(row["status"])] = row["n"]
            }
            return counts
        }
    }

    public func countByStatusAndEngine() async throws -> [TaskCount] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT status, engine, COUNT(*) AS n FROM tasks GROUP BY status, engine").map { row in
                TaskCount(status: try TaskRow.status(row["status"]), engine: row["engine"] ?? EngineNames.motion, count: row["n"])
            }
        }
    }
}
