import Foundation
import GRDB
import KinemaCore
import KinemaStore

/// Retention: which blobs are due for deletion, recording their deletion, and the maintenance claim (schema 12).
extension SQLiteTaskStore {
    public func retentionCandidates(inputsEndedBy: Date?, resultsEndedBefore: Date?, limit: Int) async throws -> [RetentionCandidate] {
        try await read { db in
            var found: [RetentionCandidate] = []
            if let inputsEndedBy {
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, image_key, end_image_key, finished_at FROM tasks
                        WHERE status IN ('succeeded', 'failed', 'canceled') AND inputs_deleted_at IS NULL AND finished_at <= ?
                        ORDER BY finished_at LIMIT ?
                        """,
                    arguments: [TaskRow.millis(inputsEndedBy), limit])
                for row in rows {
                    let keys = [row["image_key"] as String?, row["end_image_key"] as String?].compactMap { $0 }
                    found.append(
                        RetentionCandidate(
                            taskID: try Self.uuid(row["id"]), kind: .inputs, keys: keys, finishedAt: TaskRow.date(row["finished_at"])))
                }
            }
            if let resultsEndedBefore {
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT id, result_key, finished_at FROM tasks
                        WHERE status = 'succeeded' AND result_deleted_at IS NULL AND finished_at < ?
                        ORDER BY finished_at LIMIT ?
                        """,
                    arguments: [TaskRow.millis(resultsEndedBefore), limit])
                for row in rows {
                    found.append(
                        RetentionCandidate(
                            taskID: try Self.uuid(row["id"]), kind: .result, keys: [row["result_key"]], finishedAt: TaskRow.date(row["finished_at"])))
                }
            }
            return Array(found.sorted { $0.finishedAt < $1.finishedAt }.prefix(limit))
        }
    }

    public func markDeleted(_ candidate: RetentionCandidate, now: Date) async throws -> Bool {
        let column = candidate.kind == .inputs ? "inputs_deleted_at" : "result_deleted_at"
        return try await write { db in
            try db.execute(
                sql: "UPDATE tasks SET \(column) = ? WHERE id = ? AND \(column) IS NULL",
                arguments: [TaskRow.millis(now), candidate.taskID.uuidString])
            return db.changesCount == 1
        }
    }

    public func claimMaintenance(_ name: String, holder: String, seconds: TimeInterval, now: Date) async throws -> Bool {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO maintenance_claims (name, holder, claimed_until) VALUES (?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, claimed_until = excluded.claimed_until
                    WHERE maintenance_claims.claimed_until <= ? OR maintenance_claims.holder = excluded.holder
                    """,
                arguments: [name, holder, TaskRow.millis(now.addingTimeInterval(seconds)), TaskRow.millis(now)])
            return db.changesCount == 1
        }
    }

    static func uuid(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw StoreError(.invalidRecord, "task row with id '\(text)'") }
        return id
    }
}
