import Foundation
import GRDB
import KinemaStore

extension SQLiteTaskStore {
    private static let workerTokenColumns = "id, name, token_hash, prefix, created_at, revoked_at"

    /// Inserts the token; throws `.duplicateWorkerToken` when its id or hash exists.
    public func insertWorkerToken(_ token: WorkerTokenRecord) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO worker_tokens (\(Self.workerTokenColumns)) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        token.id, token.name, token.hash, token.prefix, TaskRow.millis(token.createdAt),
                        token.revokedAt.map { TaskRow.millis($0) },
                    ]
                )
            }
        } catch let error as DatabaseError
            where [.SQLITE_CONSTRAINT_PRIMARYKEY, .SQLITE_CONSTRAINT_UNIQUE].contains(error.extendedResultCode) {
            throw StoreError(.duplicateWorkerToken, "a worker token with id \(token.id) or the same hash already exists")
        } catch {
            throw Self.storeError(error)
        }
    }

    /// The token with this hash, revoked or not.
    public func workerToken(hash: String) async throws -> WorkerTokenRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(Self.workerTokenColumns) FROM worker_tokens WHERE token_hash = ?", arguments: [hash]
            ).map(Self.workerTokenRecord)
        }
    }

    /// Every token, oldest first.
    public func listWorkerTokens() async throws -> [WorkerTokenRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.workerTokenColumns) FROM worker_tokens ORDER BY created_at, rowid"
            ).map(Self.workerTokenRecord)
        }
    }

    /// Revokes the token with this id, or the only token with this prefix; `false` when none (or several) match.
    public func revokeWorkerToken(idOrPrefix: String, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            // An exact id wins; a prefix must name exactly one token, so a short or shared prefix
            // can never revoke several workers at once.
            var ids = try String.fetchAll(db, sql: "SELECT id FROM worker_tokens WHERE id = ?", arguments: [idOrPrefix])
            if ids.isEmpty {
                ids = try String.fetchAll(db, sql: "SELECT id FROM worker_tokens WHERE prefix = ? LIMIT 2", arguments: [idOrPrefix])
            }
            guard ids.count == 1 else { return false }
            try db.execute(
                sql: "UPDATE worker_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                arguments: [nowMs, ids[0]]
            )
            return true
        }
    }

    private static func workerTokenRecord(_ row: Row) -> WorkerTokenRecord {
        WorkerTokenRecord(
            id: row["id"], name: row["name"], hash: row["token_hash"], prefix: row["prefix"],
            createdAt: TaskRow.date(row["created_at"]), revokedAt: TaskRow.optionalDate(row["revoked_at"])
        )
    }
}
