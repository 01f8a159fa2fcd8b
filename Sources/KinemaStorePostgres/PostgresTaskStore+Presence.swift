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

    /// The task's place in its engine's queue, the engine's live workers and its recent render times.
    public func queueEstimate(id: UUID, engine: String, needs: RequestFeatures, since: Date) async throws -> QueueEstimate? {
        let sinceMs = PostgresTaskRow.millis(since)
        let needed = needs.rawValue
        let found = try await rows(
            """
            SELECT
              (SELECT count(*) FROM tasks q WHERE q.status = 'queued' AND q.engine = t.engine AND q.created_at < t.created_at),
              (SELECT count(*) FROM tasks r WHERE r.status = 'processing' AND r.engine = t.engine),
              (SELECT count(*) FROM worker_presence
                 WHERE last_seen >= \(sinceMs) AND \(engine) = ANY(engines) AND (capabilities & \(needed)) = \(needed)),
              (SELECT avg(finished_at - started_at)::float8 FROM
                 (SELECT finished_at, started_at FROM tasks s WHERE s.engine = t.engine AND s.status = 'succeeded'
                  ORDER BY finished_at DESC LIMIT 20) recent)
            FROM tasks t WHERE t.id = \(id) AND t.status = 'queued'
            """)
        guard let row = found.first else { return nil }
        let (ahead, running, workers, recentMs) = try PostgresTaskRow.readable { try row.decode((Int, Int, Int, Double?).self) }
        return QueueEstimate(ahead: ahead, running: running, workers: workers, recentRenderSeconds: recentMs.map { $0 / 1000 })
    }
}
