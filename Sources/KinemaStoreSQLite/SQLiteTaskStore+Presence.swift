import Foundation
import GRDB
import KinemaCore
import KinemaStore

extension SQLiteTaskStore {
    /// Upserts the worker's row: its engines, capabilities and the time it last looked for work.
    public func recordWorkerPresence(workerID: String, route: ClaimRoute, now: Date) async throws {
        let engines = "," + route.engines.joined(separator: ",") + ","
        let nowMs = TaskRow.millis(now)
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO worker_presence (worker_id, engines, capabilities, last_seen) VALUES (?, ?, ?, ?)
                    ON CONFLICT (worker_id) DO UPDATE SET engines = excluded.engines, capabilities = excluded.capabilities,
                        last_seen = max(last_seen, excluded.last_seen)
                    """,
                arguments: [workerID, engines, route.capabilities.rawValue, nowMs]
            )
        }
    }

    /// Whether a worker of `engine` honouring `needs` looked for work since `since`.
    public func hasLiveWorker(engine: String, needs: RequestFeatures, since: Date) async throws -> Bool {
        let sinceMs = TaskRow.millis(since)
        return try await read { db in
            try Bool.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT EXISTS (SELECT 1 FROM worker_presence
                                       WHERE last_seen >= ? AND instr(engines, ?) > 0 AND (capabilities & ?) = ?)
                        """),
                arguments: [sinceMs, "," + engine + ",", needs.rawValue, needs.rawValue]
            ) ?? false
        }
    }

    /// The task's place in its engine's queue, the engine's live workers and its recent render times.
    public func queueEstimate(id: UUID, engine: String, needs: RequestFeatures, since: Date) async throws -> QueueEstimate? {
        let sinceMs = TaskRow.millis(since)
        return try await read { db in
            guard
                let created = try Int64.fetchOne(
                    db, sql: "SELECT created_at FROM tasks WHERE id = ? AND status = 'queued'", arguments: [id.uuidString])
            else { return nil }
            let row = try Row.fetchOne(
                db.cachedStatement(
                    sql: """
                        SELECT
                          (SELECT count(*) FROM tasks WHERE status = 'queued' AND engine = ? AND created_at < ?) AS ahead,
                          (SELECT count(*) FROM tasks WHERE status = 'processing' AND engine = ?) AS running,
                          (SELECT count(*) FROM worker_presence
                             WHERE last_seen >= ? AND instr(engines, ?) > 0 AND (capabilities & ?) = ?) AS workers,
                          (SELECT avg(finished_at - started_at) FROM
                             (SELECT finished_at, started_at FROM tasks WHERE engine = ? AND status = 'succeeded'
                              ORDER BY finished_at DESC LIMIT 20)) AS recent_ms
                        """),
                arguments: [engine, created, engine, sinceMs, "," + engine + ",", needs.rawValue, needs.rawValue, engine])
            return QueueEstimate(
                ahead: row?["ahead"] ?? 0, running: row?["running"] ?? 0, workers: row?["workers"] ?? 0,
                recentRenderSeconds: (row?["recent_ms"] as Double?).map { $0 / 1000 })
        }
    }
}
