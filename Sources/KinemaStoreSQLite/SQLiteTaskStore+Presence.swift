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
        return try await quickRead { db in
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
        return try await quickRead { db in
            // One statement (a poll of every queued task runs it): no row when the task is not queued.
            guard
                let row = try Row.fetchOne(
                    db.cachedStatement(
                        sql: """
                            SELECT
                              (SELECT count(*) FROM tasks q WHERE q.status = 'queued' AND q.engine = ?1 AND q.created_at < t.created_at),
                              (SELECT count(*) FROM tasks r WHERE r.status = 'processing' AND r.engine = ?1),
                              (SELECT count(*) FROM worker_presence
                                 WHERE last_seen >= ?2 AND instr(engines, ?3) > 0 AND (capabilities & ?4) = ?4),
                              (SELECT avg(finished_at - started_at) FROM
                                 (SELECT finished_at, started_at FROM tasks s WHERE s.engine = ?1 AND s.status = 'succeeded'
                                  ORDER BY finished_at DESC LIMIT 20))
                            FROM tasks t WHERE t.id = ?5 AND t.status = 'queued'
                            """),
                    arguments: [engine, sinceMs, "," + engine + ",", needs.rawValue, id.uppercasedText])
            else { return nil }
            return QueueEstimate(
                ahead: row[0], running: row[1], workers: row[2], recentRenderSeconds: (row[3] as Double?).map { $0 / 1000 })
        }
    }
}
