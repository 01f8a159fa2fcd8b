import Foundation
import KinemaTestSupport
import KinemaCore
import KinemaStore
import KinemaStorePostgres
import Synchronization

/// The PostgreSQL server behind the suite's `.postgres` cases, and one fresh database per test.
///
/// Uses the server at `KINEMA_TEST_POSTGRES_URL` (a role that may CREATE DATABASE) when set; otherwise
/// the first test that needs one starts a throwaway server with `scripts/test-postgres start`, shared by
/// the whole test process and stopped by the script's watchdog once the process exits (even if it
/// crashes). No test depends on a server started by hand. Without PostgreSQL's binaries every
/// `.postgres` case fails with the script's message (install them with scripts/install-deps).
enum PostgresTestServer {
    static let environmentKey = "KINEMA_TEST_POSTGRES_URL"
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/test-postgres")

    private static let starter = ServerStarter()
    /// The server's URL once started, for the synchronous `open(database:)`.
    private static let startedURL = Mutex<String?>(nil)
    /// Stores opened by the suite, with the task that runs each (a store serves queries only while `run()` runs).
    private static let running = Mutex<[ObjectIdentifier: Task<Void, Never>]>([:])

    /// A database name no other test uses.
    static func newDatabaseName() -> String {
        "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
    }

    /// The server's URL (database `postgres`), starting the server on first use.
    static func serverURL() async throws -> String {
        let url = try await starter.url()
        startedURL.withLock { $0 = url }
        return url
    }

    /// The URL of `database` on the started server.
    static func url(database: String) throws -> String {
        guard let server = startedURL.withLock({ $0 }), var components = URLComponents(string: server) else {
            throw FixtureError(message: "the PostgreSQL test server was not started before opening database \(database)")
        }
        components.path = "/" + database
        guard let url = components.string else { throw FixtureError(message: "cannot build a URL for database \(database)") }
        return url
    }

    /// Creates `database` and brings its schema up to date.
    static func createDatabase(_ database: String, migrate: Bool = true) async throws {
        try await psql(serverURL(), "CREATE DATABASE \(database)")
        guard migrate else { return }
        try await withStore(database: database) { store in try await store.migrate() }
    }

    /// Drops `database`, disconnecting whoever is still connected.
    static func dropDatabase(_ database: String) async throws {
        try await psql(serverURL(), "DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
    }

    /// Opens a store on `database` and starts running it; `close(_:)` stops it.
    static func open(database: String, timeout: TimeInterval = 30) throws -> PostgresTaskStore {
        let store = try PostgresTaskStore(url: url(database: database), maxConnections: 10, timeout: timeout)
        // Unstructured because StoreLocation.open() is synchronous and the store outlives it; close() cancels it.
        let task = Task<Void, Never> { try? await store.run() }
        running.withLock { $0[ObjectIdentifier(store)] = task }
        return store
    }

    /// Stops a store opened by `open(database:)`.
    static func close(_ store: PostgresTaskStore) {
        running.withLock { $0.removeValue(forKey: ObjectIdentifier(store)) }?.cancel()
    }

    /// Stops a store opened by `open(database:)` and waits until it no longer serves queries.
    static func closeAndWait(_ store: PostgresTaskStore) async {
        guard let task = running.withLock({ $0.removeValue(forKey: ObjectIdentifier(store)) }) else { return }
        task.cancel()
        await task.value
    }

    /// Runs `body` with a running store on `database`, closing it afterwards.
    static func withStore<T>(database: String, _ body: (PostgresTaskStore) async throws -> T) async throws -> T {
        let store = try open(database: database)
        defer { close(store) }
        return try await body(store)
    }

    /// Runs SQL with `psql` against `url` and returns its unaligned, tuples-only output; throws when it fails.
    @discardableResult
    static func psql(_ url: String, _ sql: String) async throws -> String {
        let result = try await run("/usr/bin/env", ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        guard result.status == 0 else {
            throw FixtureError(message: "psql failed (\(result.status)) on \(sql): \(result.error)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs `psql` and returns its exit status and error output (for statements expected to fail).
    static func psqlStatus(_ url: String, _ sql: String) async throws -> (status: Int32, error: String) {
        let result = try await run("/usr/bin/env", ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        return (result.status, result.error)
    }

    /// Runs a program to its end without blocking a thread of the cooperative pool; a hung child (initdb, pg_ctl,
    /// psql) is killed after 180 s.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
        let result = try await ChildProcess.run(executable, arguments, timeout: .seconds(180))
        return (result.status, result.output, result.error)
    }
}

/// Starts the shared server once, however many tests ask at the same time; a failure is kept and reported to each.
private actor ServerStarter {
    private var start: Task<String, any Error>?

    func url() async throws -> String {
        if let start { return try await start.value }
        // Unstructured: the server outlives the test that happened to ask first.
        let task = Task<String, any Error> {
            if let url = ProcessInfo.processInfo.environment[PostgresTestServer.environmentKey], !url.isEmpty {
                return url
            }
            let script = PostgresTestServer.script.path
            guard FileManager.default.isExecutableFile(atPath: script) else {
                throw FixtureError(message: "\(script) is missing or not executable; cannot start PostgreSQL for the postgres cases")
            }
            let result = try await PostgresTestServer.run(script, ["start", "--owner-pid", "\(ProcessInfo.processInfo.processIdentifier)"])
            let url = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            guard result.status == 0, url.hasPrefix("postgres://") else {
                throw FixtureError(
                    message: """
                        cannot start a PostgreSQL server for the postgres cases (\(script) start exited \(result.status)): \
                        \(result.error.trimmingCharacters(in: .whitespacesAndNewlines)). Install PostgreSQL with \
                        scripts/install-deps, or point \(PostgresTestServer.environmentKey) at a server.
                        """)
            }
            return url
        }
        start = task
        return try await task.value
    }
}

/// Reads `handle` to its end (EINTR-safe; see `PipeReader`). Blocks: call it off Swift's cooperative pool.
func readToEnd(_ handle: FileHandle) -> Data {
    PipeReader.readToEnd(handle.fileDescriptor)
}
