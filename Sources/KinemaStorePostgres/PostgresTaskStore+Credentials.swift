import Foundation
import KinemaCore
import KinemaStore
import PostgresNIO

extension PostgresTaskStore {
    private static let credentialColumns = "kind, id, owner, hash, prefix, created_at, revoked_at, default_engine"

    /// Inserts the credential; throws `.duplicateCredential` when its id or hash exists.
    public func insertCredential(_ record: CredentialRecord) async throws {
        let logger = self.logger
        let createdMs = PostgresTaskRow.millis(record.createdAt)
        let revokedMs = record.revokedAt.map { PostgresTaskRow.millis($0) }
        _ = try await withConnection { connection in
            do {
                return try await connection.query(
                    """
                    INSERT INTO credentials (\(unescaped: Self.credentialColumns))
                    VALUES (\(record.kind.rawValue), \(record.id), \(record.owner), \(record.hash), \(record.prefix), \(createdMs),
                            \(revokedMs), \(record.defaultEngine))
                    """, logger: logger
                ).collect().count
            } catch  where Self.isUniqueViolation(error) {
                throw StoreError(.duplicateCredential, "a credential with id \(record.id) or the same hash already exists")
            }
        }
    }

    /// The credential of `kind` with this hash, revoked or not.
    public func credential(_ kind: CredentialKind, hash: String) async throws -> CredentialRecord? {
        try await rows("SELECT \(unescaped: Self.credentialColumns) FROM credentials WHERE hash = \(hash) AND kind = \(kind.rawValue)")
            .first.map(PostgresTaskRow.credential)
    }

    /// Every credential of `kind`, oldest first.
    public func credentials(_ kind: CredentialKind) async throws -> [CredentialRecord] {
        try await rows("SELECT \(unescaped: Self.credentialColumns) FROM credentials WHERE kind = \(kind.rawValue) ORDER BY created_at, seq")
            .map(PostgresTaskRow.credential)
    }

    /// Revokes the credential of `kind` with this id, or the only one with this prefix; `false` when none (or several) match.
    public func revokeCredential(_ kind: CredentialKind, idOrPrefix: String, now: Date) async throws -> Bool {
        let nowMs = PostgresTaskRow.millis(now)
        let logger = self.logger
        return try await transaction { connection in
            // An exact id wins; a prefix must name exactly one credential, so a short or shared prefix
            // can never revoke several tenants' keys (or several workers) at once.
            var ids = try await connection.query(
                "SELECT id FROM credentials WHERE kind = \(kind.rawValue) AND id = \(idOrPrefix) FOR UPDATE", logger: logger
            ).collect()
            if ids.isEmpty {
                ids = try await connection.query(
                    "SELECT id FROM credentials WHERE kind = \(kind.rawValue) AND prefix = \(idOrPrefix) LIMIT 2 FOR UPDATE", logger: logger
                ).collect()
            }
            guard ids.count == 1 else { return false }
            let id = try PostgresTaskRow.readable { try ids[0].decode(String.self) }
            _ = try await connection.query(
                "UPDATE credentials SET revoked_at = COALESCE(revoked_at, \(nowMs)) WHERE id = \(id)", logger: logger
            ).collect()
            return true
        }
    }
}
