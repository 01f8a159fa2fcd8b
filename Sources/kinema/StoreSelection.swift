import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaStore
import KinemaStoreSQLite
import KinemaStorePostgres
import Logging

/// `--data-dir` (embedded SQLite) or `--database` (shared PostgreSQL): the store a command works on.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Embedded data directory (env KINEMA_DATA_DIR, default ./data).")
    var dataDir: String?

    @Option(
        name: .customLong("database"),
        help: "Shared PostgreSQL URL postgres://user:pass@host:port/db (env KINEMA_DATABASE_URL); replaces --data-dir's SQLite.")
    var database: String?

    /// The PostgreSQL URL if one was given on the command line or in the environment.
    var databaseURL: String? { database ?? Env.string("KINEMA_DATABASE_URL") }

    /// Opens the store, runs `body` with it, and closes it: a PostgreSQL store is migrated first
    /// (unless `migrate` is false) and served only for as long as `body` runs.
    func withStore<T: Sendable>(
        logger: Logger = Logger(label: "kinema"), migrate: Bool = true, _ body: (any TaskStore) async throws -> T
    ) async throws -> T {
        if let url = databaseURL {
            let store = try PostgresTaskStore(url: url, logger: logger)
            return try await store.withRunning {
                if migrate { try await store.migrate() }
                return try await body(store)
            }
        }
        return try await body(try DataDirectory(Env.dataDirectory(dataDir), access: Env.fileAccess(groupAccess: false)).openStore())
    }
}

/// `kinema migrate`: brings a shared PostgreSQL database to the current schema (safe when several nodes do it at once).
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations (PostgreSQL; SQLite migrates itself on open).")

    @Option(name: .customLong("database"), help: "PostgreSQL URL (env KINEMA_DATABASE_URL).")
    var database: String?

    func run() async throws {
        guard let url = database ?? Env.string("KINEMA_DATABASE_URL") else {
            throw CLIError("--database (or KINEMA_DATABASE_URL) is required.")
        }
        let store = try PostgresTaskStore(url: url)
        try await store.withRunning { try await store.migrate() }
        print("Database schema is up to date.")
    }
}
