import Foundation
import GRDB
import KinemaStore

/// The embedded `TaskStore`: one SQLite file in WAL mode, shared safely by several processes.
///
/// Every write runs in an IMMEDIATE transaction, so SQLite's single writer lock serializes claims,
/// lease writes and rescues across all connections and processes that open the same file; readers
/// never block thanks to WAL. Commits are fully synced (`synchronous = FULL`). Times are stored as
/// integer milliseconds since 1970.
///
/// Attempts: a claim increments `attempt` and inserts a `task_attempts` row keyed by its lease id;
/// a release decrements `attempt` again (so the next claim reuses the number) and marks its row
/// `released`. An attempt number can therefore appear on several rows, at most one of them running.
/// A requeued task keeps its `createdAt`, so it is the next one claimed (FIFO by submission).
public final class SQLiteTaskStore: TaskStore {
    /// How long a write waits for another connection's write lock before failing as `unavailable`.
    public static let busyTimeout: TimeInterval = 10

    let pool: DatabasePool
    /// Group commit: concurrent writes of this process share synced commits (see `SQLiteWriteBatcher`).
    let batcher: SQLiteWriteBatcher
    /// Read-only connections read on the calling thread, for polls (see `SQLiteInlineReaders`).
    let inline: SQLiteInlineReaders

    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    ///
    /// Missing parent directories are created. Throws `StoreError` with `.unavailable` when the file
    /// cannot be opened, `.corrupt` when it is not a database, `.migrationFailed` when the schema
    /// cannot be migrated or was written by a newer version.
    public init(path: String) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.unavailable, "cannot create the directory \(directory.path) for the task database: \(error.localizedDescription)")
        }

        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(Self.busyTimeout)
        configuration.label = "kinema.tasks"
        do {
            // DatabasePool switches the file to WAL mode.
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch let error as DatabaseError {
            throw Self.storeError(error, context: "cannot open the task database at \(path)")
        } catch {
            throw StoreError(.unavailable, "cannot open the task database at \(path): \(error)")
        }
        do {
            // GRDB picks NORMAL for WAL, which may drop the last commits on power loss; an accepted
            // submit or a finished task must survive that, so the (only) writing connection syncs fully.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        } catch {
            throw Self.storeError(error, context: "cannot configure the task database at \(path)")
        }
        try Self.migrate(pool, path: path)
        batcher = SQLiteWriteBatcher(pool: pool)
        inline = SQLiteInlineReaders(path: path)
    }

    /// The writing connection's journal mode and `synchronous` level (2 = FULL), for operators' checks and the test
    /// that keeps them as documented: WAL, and every commit synced.
    public func durabilitySettings() async throws -> (journalMode: String, synchronous: Int) {
        try await pool.write { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "", try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1)
        }
    }

    /// Closes every connection; later calls fail with `StoreError(.unavailable)`.
    ///
    /// Optional: connections also close when the store is released.
    public func close() throws {
        inline.close()
        do {
            try pool.close()
        } catch let error as DatabaseError {
            throw Self.storeError(error, context: "cannot close the task database")
        }
    }

    /// The schema version of the open file (the newest applied migration), e.g. for `kinema migrate`.
    public func schemaVersion() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT MAX(version) FROM schema_migrations") ?? 0 }
    }

    /// The schema version this build migrates files to.
    public static var currentSchemaVersion: Int { migrations.last?.version ?? 0 }

    /// Runs `SELECT 1` on a reader connection.
    public func ping() async throws {
        _ = try await read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Access with error mapping

    /// Runs `body` in an IMMEDIATE write transaction (shared with concurrent writes, in a savepoint of its own), mapping
    /// database errors to `StoreError`. Returns once the transaction committed.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await batcher.write(body)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// Runs `body` on a snapshot, mapping database errors to `StoreError`.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.storeError(error)
        }
    }

    /// `read` for one short, indexed read on the API's hot path: on the calling thread when an inline connection is
    /// idle (no thread hand-off), through the pool otherwise (see `SQLiteInlineReaders`).
    func quickRead<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            if let value = try inline.read(body) { return value }
        } catch {
            throw Self.storeError(error)
        }
        return try await read(body)
    }

    /// Translates anything thrown by GRDB or by decoding into a `StoreError`, so no GRDB type
    /// leaves this module. Cancellation passes through untouched.
    static func storeError(_ error: any Error, context: String = "task database") -> any Error {
        switch error {
        case is StoreError, is CancellationError:
            return error
        case let error as DatabaseError:
            let detail = "\(context): \(error.message ?? "SQLite error \(error.extendedResultCode.rawValue)")"
            switch error.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_FORMAT:
                return StoreError(.corrupt, detail)
            case .SQLITE_CONSTRAINT:
                // The store writes only valid rows; a constraint failing here means the file's data is off.
                return StoreError(.corrupt, "invariant violated, \(detail)")
            default:
                return StoreError(.unavailable, detail)
            }
        case is DecodingError:
            return StoreError(.corrupt, "\(context): unreadable stored value: \(error)")
        default:
            return StoreError(.unavailable, "\(context): \(error)")
        }
    }
}
