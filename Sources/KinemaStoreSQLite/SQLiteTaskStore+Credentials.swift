import Foundation
import GRDB
import KinemaCore
import KinemaStore

extension SQLiteTaskStore {
    private static let credentialColumns = "kind, id, owner, hash, prefix, created_at, revoked_at, default_engine"

    /// Inserts the credential; throws `.duplicateCredential` when its id or hash exists.
    public func insertCredential(_ record: CredentialRecord) async throws {
        do {
            try await batcher.write { db in
                try db.execute(
                    sql: "INSERT INTO credentials (\(Self.credentialColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    arguments: [
                        record.kind.rawValue, record.id, record.owner, record.hash, record.prefix, TaskRow.millis(record.createdAt),
                        record.revokedAt.map { TaskRow.millis($0) }, record.defaultEngine,
                    ]
                )
            }
        } catch let error as DatabaseError
            where [.SQLITE_CONSTRAINT_PRIMARYKEY, .SQLITE_CONSTRAINT_UNIQUE].contains(error.extendedResultCode)
        {
            throw StoreError(.duplicateCredential, "a credential with id \(record.id) or the same hash already exists")
        } catch {
            throw Self.storeError(error)
        }
    }

    /// The credential of `kind` with this hash, revoked or not.
    public func credential(_ kind: CredentialKind, hash: String) async throws -> CredentialRecord? {
        try await read { db in
            try Row.fetchOne(
                db, sql: "SELECT \(Self.credentialColumns) FROM credentials WHERE hash = ? AND kind = ?",
                arguments: [hash, kind.rawValue]
            ).map(TaskRow.credential)
        }
    }

    /// Every credential of `kind`, oldest first.
    public func credentials(_ kind: CredentialKind) async throws -> [CredentialRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.credentialColumns) FROM credentials WHERE kind = ? ORDER BY created_at, rowid",
                arguments: [kind.rawValue]
            ).map(TaskRow.credential)
        }
    }

    /// Revokes the credential of `kind` with this id, or the only one with this prefix; `false` when none (or several) match.
    public func revokeCredential(_ kind: CredentialKind, idOrPrefix: String, now: Date) async throws -> Bool {
        let nowMs = TaskRow.millis(now)
        return try await write { db in
            // An exact id wins; a prefix must name exactly one credential, so a short or shared prefix
            // can never revoke several tenants' keys (or several workers) at once.
            var ids = try String.fetchAll(
                db, sql: "SELECT id FROM credentials WHERE kind = ? AND id = ?", arguments: [kind.rawValue, idOrPrefix])
            if ids.isEmpty {
                ids = try String.fetchAll(
                    db, sql: "SELECT id FROM credentials WHERE kind = ? AND prefix = ? LIMIT 2", arguments: [kind.rawValue, idOrPrefix])
            }
            guard ids.count == 1 else { return false }
            try db.execute(
                sql: "UPDATE credentials SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                arguments: [nowMs, ids[0]]
            )
            return true
        }
    }
}
