import Foundation
import KinemaStore
import PostgresNIO

extension PostgresTaskStore {
    /// Inserts the key; throws `.duplicateAPIKey` when its id or hash exists.
    public func insertAPIKey(_ key: APIKeyRecord) async throws {
        let logger = self.logger
        let createdMs = PostgresTaskRow.millis(key.createdAt)
        let revokedMs = key.revokedAt.map { PostgresTaskRow.millis($0) }
        _ = try await withConnection { connection in
            do {
                return try await connection.query("""
                    INSERT INTO api_keys (id, tenant, key_hash, prefix, created_at, revoked_at, default_engine)
                    VALUES (\(key.id), \(key.tenant), \(key.keyHash), \(key.prefix), \(createdMs), \(revokedMs), \(key.defaultEngine))
                    """, logger: logger).collect().count
            } catch where Self.isUniqueViolation(error) {
                throw StoreError(.duplicateAPIKey, "an API key with id \(key.id) or the same hash already exists")
            }
        }
    }

    /// The key with this hash, revoked or not.
    public func apiKey(hash keyHash: String) async throws -> APIKeyRecord? {
        try await rows("""
            SELECT id, tenant, key_hash, prefix, created_at, revoked_at, default_engine FROM api_keys WHERE key_hash = \(keyHash)
            """).first.map(PostgresTaskRow.apiKey)
    }

    /// Every key, oldest first.
    public func listAPIKeys() async throws -> [APIKeyRecord] {
        try await rows("SELECT id, tenant, key_hash, prefix, created_at, revoked_at, default_engine FROM api_keys ORDER BY created_at, seq")
            .map(PostgresTaskRow.apiKey)
    }

    /// Revokes the key with this id, or the only key with this prefix; `false` when none (or several) match.
    public func revokeAPIKey(idOrPrefix: String, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            // An exact id wins; a prefix must name exactly one key, so a short or shared prefix
            // can never revoke several tenants' keys at once.
            var ids = try await connection.query(
                "SELECT id FROM api_keys WHERE id = \(idOrPrefix) FOR UPDATE", logger: logger
            ).collect()
            if ids.isEmpty {
                ids = try await connection.query(
                    "SELECT id FROM api_keys WHERE prefix = \(idOrPrefix) LIMIT 2 FOR UPDATE", logger: logger
                ).collect()
            }
            guard ids.count == 1 else { return false }
            let id = try PostgresTaskRow.readable { try ids[0].decode(String.self) }
            _ = try await connection.query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, \(nowMs)) WHERE id = \(id)", logger: logger
            ).collect()
            return true
        }
    }
}
