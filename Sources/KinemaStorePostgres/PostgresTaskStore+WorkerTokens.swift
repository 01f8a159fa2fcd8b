import Foundation
import KinemaStore
import PostgresNIO

extension PostgresTaskStore {
    private static let workerTokenColumns = "id, name, token_hash, prefix, created_at, revoked_at"

    /// Inserts the token; throws `.duplicateWorkerToken` when its id or hash exists.
    public func insertWorkerToken(_ token: WorkerTokenRecord) async throws {
        let logger = self.logger
        let createdMs = PostgresTaskRow.millis(token.createdAt)
        let revokedMs = token.revokedAt.map { PostgresTaskRow.millis($0) }
        _ = try await withConnection { connection in
            do {
                return try await connection.query("""
                    INSERT INTO worker_tokens (\(unescaped: Self.workerTokenColumns))
                    VALUES (\(token.id), \(token.name), \(token.hash), \(token.prefix), \(createdMs), \(revokedMs))
                    """, logger: logger).collect().count
            } catch where Self.isUniqueViolation(error) {
                throw StoreError(.duplicateWorkerToken, "a worker token with id \(token.id) or the same hash already exists")
            }
        }
    }

    /// The token with this hash, revoked or not.
    public func workerToken(hash: String) async throws -> WorkerTokenRecord? {
        try await rows("SELECT \(unescaped: Self.workerTokenColumns) FROM worker_tokens WHERE token_hash = \(hash)")
            .first.map(Self.workerTokenRecord)
    }

    /// Every token, oldest first.
    public func listWorkerTokens() async throws -> [WorkerTokenRecord] {
        try await rows("SELECT \(unescaped: Self.workerTokenColumns) FROM worker_tokens ORDER BY created_at, seq")
            .map(Self.workerTokenRecord)
    }

    /// Revokes the token with this id, or the only token with this prefix; `false` when none (or several) match.
    public func revokeWorkerToken(idOrPrefix: String, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            // An exact id wins; a prefix must name exactly one token, so a short or shared prefix
            // can never revoke several workers at once.
            var ids = try await connection.query(
                "SELECT id FROM worker_tokens WHERE id = \(idOrPrefix) FOR UPDATE", logger: logger
            ).collect()
            if ids.isEmpty {
                ids = try await connection.query(
                    "SELECT id FROM worker_tokens WHERE prefix = \(idOrPrefix) LIMIT 2 FOR UPDATE", logger: logger
                ).collect()
            }
            guard ids.count == 1 else { return false }
            let id = try PostgresTaskRow.readable { try ids[0].decode(String.self) }
            _ = try await connection.query(
                "UPDATE worker_tokens SET revoked_at = COALESCE(revoked_at, \(nowMs)) WHERE id = \(id)", logger: logger
            ).collect()
            return true
        }
    }

    private static func workerTokenRecord(_ row: PostgresRow) throws -> WorkerTokenRecord {
        let row = row.makeRandomAccess()
        return try PostgresTaskRow.readable {
            WorkerTokenRecord(
                id: try row["id"].decode(String.self),
                name: try row["name"].decode(String.self),
                hash: try row["token_hash"].decode(String.self),
                prefix: try row["prefix"].decode(String.self),
                createdAt: PostgresTaskRow.date(try row["created_at"].decode(Int64.self)),
                revokedAt: try row["revoked_at"].decode(Int64?.self).map(PostgresTaskRow.date)
            )
        }
    }
}
