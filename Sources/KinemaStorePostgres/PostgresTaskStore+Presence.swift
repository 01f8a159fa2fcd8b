import Foundation
import KinemaCore
import KinemaStore
import PostgresNIO

extension PostgresTaskStore {
    /// Upserts the worker's row: its engines, capabilities and the time it last looked for work.
    public func recordWorkerPresence(workerID: String, route: ClaimRoute, now: Date) async throws {
        let nowMs = PostgresTaskRow.millis(now)
        let engines = route.engines
        let capabilities = route.capabilities.rawValue
        _ = try await rows(
            """
            INSERT INTO worker_presence (worker_id, engines, capabilities, last_seen)
            VALUES (\(workerID), \(engines), \(capabilities), \(nowMs))
            ON CONFLICT (worker_id) DO UPDATE SET engines = EXCLUDED.engines, capabilities = EXCLUDED.capabilities,
                last_seen = GREATEST(worker_presence.last_seen, EXCLUDED.last_seen)
            """)
    }

    /// Whether a worker of `engine` honouring `needs` looked for work since `since`.
    public func hasLiveWorker(engine: String, needs: RequestFeatures, since: Date) async throws -> Bool {
        let sinceMs = PostgresTaskRow.millis(since)
        let needed = needs.rawValue
        return
            !(try await rows(
                """
                SELECT 1 FROM worker_presence
                WHERE last_seen >= \(sinceMs) AND \(engine) = ANY(engines) AND (capabilities & \(needed)) = \(needed)
                LIMIT 1
                """)).isEmpty
    }
}
