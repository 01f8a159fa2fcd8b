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
}
