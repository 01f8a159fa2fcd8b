import Foundation
import GRDB
import KinemaStore

extension SQLiteTaskStore {
    /// Inserts the key; throws `.duplicateAPIKey` when its id or hash exists.
    public func insertAPIKey(_ key: APIKeyRecord) async throws {
        do {
            try await pool.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO api_keys (id, tenant, key_hash, prefix, created_at, revoked_at, default_engine)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        key.id, key.tenant, key.keyHash, key.prefix, TaskRow.millis(key.createdAt),
                        key.revokedAt.map { TaskRow.millis($0) }, key.defaultEngine,
                    ]
                )
            }
        } catch let error as DatabaseError
            where [.SQLITE_CONSTRAINT_PRIMARYKEY, .SQLITE_CONSTRAINT_UNIQUE].contains(error.extendedResultCode) {
            throw StoreError(.duplicateAPIKey, "an API key with id \(key.id) or the same hash already exists")
        } catch {
            throw Self.storeError(error)
        }
    }

    /// The key with this hash, revoked or not.
    public func apiKey(hash keyHash: String) async throws -> APIKeyRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT id, tenant, key_hash, prefix, created_at, revoked_at, default_engine FROM api_keys WHERE key_hash = ?",
                arguments: [keyHash]
            ).map(TaskRow.apiKey)
        }
    }

    /// Every key, oldest first.
    public func listAPIKeys() async throws -> [APIKeyRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, tenant, key_hash, prefix, created_at, revoked_at, default_engine FROM api_keys ORDER BY created_at, rowid"
            ).map(TaskRow.apiKey)
        }
    }

    /// Revokes the key with this id, or the only key with this prefix; `false` when none (or several) match.
    public func revokeAPIKey(idOrPrefix: String, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            // An exact id wins; a prefix must name exactly one key, so a short or shared prefix
            // can never revoke several tenants' keys at once.
            var ids = try String.fetchAll(db, sql: "SELECT id FROM api_keys WHERE id = ?", arguments: [idOrPrefix])
            if ids.isEmpty {
                ids = try String.fetchAll(db, sql: "SELECT id FROM api_keys WHERE prefix = ? LIMIT 2", arguments: [idOrPrefix])
            }
            guard ids.count == 1 else { return false }
            try db.execute(
                sql: "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                arguments: [nowMs, ids[0]]
            )
            return true
        }
    }
}
