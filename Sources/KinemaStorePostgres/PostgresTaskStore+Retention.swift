import Foundation
import KinemaCore
import KinemaStore
import PostgresNIO

/// Retention: which blobs are due for deletion, recording their deletion, and the maintenance claim (schema 12).
extension PostgresTaskStore {
    public func retentionCandidates(inputsEndedBy: Date?, resultsEndedBefore: Date?, limit: Int) async throws -> [RetentionCandidate] {
        var found: [RetentionCandidate] = []
        if let inputsEndedBy {
            let cutoff = PostgresTaskRow.millis(inputsEndedBy)
            for row in try await rows(
                """
                SELECT id, image_key, end_image_key, finished_at FROM tasks
                WHERE status IN ('succeeded', 'failed', 'canceled') AND inputs_deleted_at IS NULL AND finished_at <= \(cutoff)
                ORDER BY finished_at LIMIT \(limit)
                """)
            {
                let (id, image, end, finished) = try PostgresTaskRow.readable { try row.decode((UUID, String, String?, Int64).self) }
                found.append(
                    RetentionCandidate(
                        taskID: id, kind: .inputs, keys: [image] + (end.map { [$0] } ?? []), finishedAt: PostgresTaskRow.date(finished)))
            }
        }
        if let resultsEndedBefore {
            let cutoff = PostgresTaskRow.millis(resultsEndedBefore)
            for row in try await rows(
                """
                SELECT id, result_key, finished_at FROM tasks
                WHERE status = 'succeeded' AND result_deleted_at IS NULL AND finished_at < \(cutoff)
                ORDER BY finished_at LIMIT \(limit)
                """)
            {
                let (id, key, finished) = try PostgresTaskRow.readable { try row.decode((UUID, String, Int64).self) }
                found.append(RetentionCandidate(taskID: id, kind: .result, keys: [key], finishedAt: PostgresTaskRow.date(finished)))
            }
        }
        return Array(found.sorted { $0.finishedAt < $1.finishedAt }.prefix(limit))
    }

    public func markDeleted(_ candidate: RetentionCandidate, now: Date) async throws -> Bool {
        let at = PostgresTaskRow.millis(now)
        let query: PostgresQuery =
            candidate.kind == .inputs
            ? "UPDATE tasks SET inputs_deleted_at = \(at) WHERE id = \(candidate.taskID) AND inputs_deleted_at IS NULL RETURNING 1"
            : "UPDATE tasks SET result_deleted_at = \(at) WHERE id = \(candidate.taskID) AND result_deleted_at IS NULL RETURNING 1"
        return try await !rows(query).isEmpty
    }

    public func claimMaintenance(_ name: String, holder: String, seconds: TimeInterval, now: Date) async throws -> Bool {
        let until = PostgresTaskRow.millis(now.addingTimeInterval(seconds))
        let nowMs = PostgresTaskRow.millis(now)
        return try await !rows(
            """
            INSERT INTO maintenance_claims (name, holder, claimed_until) VALUES (\(name), \(holder), \(until))
            ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, claimed_until = EXCLUDED.claimed_until
            WHERE maintenance_claims.claimed_until <= \(nowMs) OR maintenance_claims.holder = EXCLUDED.holder
            RETURNING 1
            """
        ).isEmpty
    }
}
