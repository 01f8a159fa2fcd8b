import Foundation
import KinemaStore
import Logging
import PostgresNIO
import ServiceLifecycle

/// The shared `TaskStore`: one PostgreSQL database behind several API nodes and worker processes.
///
/// Behaves exactly like `SQLiteTaskStore` (the same conformance suite runs against both): the same
/// attempt counting, release un-counting, orphan and expiry rules (decided by `TaskStateMachine`),
/// reasons, CHECK invariants, times as integer milliseconds, and requests stored as sorted-key JSON.
/// What PostgreSQL adds:
/// - claims are one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …` statement, so
///   any number of connections claim at once without ever sharing a task;
/// - every worker write is fenced by `status = 'processing' AND lease_id = $lease`, under the row lock;
/// - rescue sweeps lock expired rows with `SKIP LOCKED`, so sweeps running on every node rescue a task once;
/// - enqueues and requeues `NOTIFY kinema_tasks`; `waitForWork(timeout:)` wakes idle workers on it.
///
/// Running: the store serves queries only while `run()` runs (PostgresNIO's client needs a long-lived
/// task). Either wrap the work in `withRunning { … }`, or put the store in a `ServiceGroup` *before*
/// the services that use it, so it shuts down after them (ServiceGroup stops services in reverse
/// order). Call `migrate()` once it runs, before the first other call (`kinema migrate`, or on start).
/// Operations that cannot get a connection within `timeout` (server down, wrong address, `run()` not
/// running) throw `StoreError(.unavailable)` instead of waiting forever.
public final class PostgresTaskStore: TaskStore, Service {
    /// How long an operation waits for a database connection by default, in seconds.
    public static let defaultTimeout: TimeInterval = 10
    /// The channel every enqueue and requeue notifies (payload: the task id).
    public static let notificationChannel = "kinema_tasks"

    let client: PostgresClient
    let logger: Logger
    /// `host:port/database`, for messages (never the password).
    let target: String
    let settings: PostgresURL
    let timeout: Duration
    let work = WorkWaiters()

    /// Creates a store for the database at `url` without connecting yet; nothing happens until `run()`.
    ///
    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database` (or `postgresql://`); the port defaults to 5432,
    ///     the user to `postgres`, the database to the user. `?sslmode=disable|prefer|require` picks TLS
    ///     (default `prefer`: TLS when the server offers it, with certificate verification).
    ///   - logger: Where connection problems and listener restarts are logged.
    ///   - maxConnections: Most connections this store opens for queries at once (`waitForWork` adds one).
    ///   - timeout: Seconds an operation may wait for a connection before failing as `.unavailable`.
    /// - Throws: `StoreError(.unavailable)` when `url` is not a usable PostgreSQL URL.
    public init(
        url: String, logger: Logger = Logger(label: "kinema.store.postgres"), maxConnections: Int = 20,
        timeout: TimeInterval = defaultTimeout
    ) throws {
        let settings = try PostgresURL(url)
        guard maxConnections >= 1 else {
            throw StoreError(.unavailable, "maxConnections is \(maxConnections); a PostgresTaskStore needs at least 1")
        }
        guard timeout > 0 else {
            throw StoreError(.unavailable, "timeout is \(timeout) s; it must be positive")
        }
        var configuration = settings.clientConfiguration
        // One more than asked for: `waitForWork`'s LISTEN holds a pooled connection for as long as it listens.
        configuration.options.maximumConnections = maxConnections + 1
        configuration.options.connectTimeout = .milliseconds(Int64(timeout * 1000))
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        self.target = settings.description
        self.settings = settings
        self.timeout = .milliseconds(Int64(timeout * 1000))
    }

    /// Serves the store's queries (and the LISTEN connection of `waitForWork`) until cancelled or shut down gracefully.
    ///
    /// Call it exactly once per store. When it returns, every later call fails as `.unavailable`.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask { await cancelWhenGracefulShutdown { await self.listenForWork() } }
            // Either ending means the store is closing: the listener is useless without the client.
            await group.next()
            group.cancelAll()
        }
        work.close()
    }

    /// Runs the store for as long as `body` runs, then closes it, whatever happens (instead of calling `run()`).
    ///
    /// The scoped way for one-shot commands (`kinema migrate`, `kinema keys create`) and for processes
    /// whose services all use the store:
    /// `try await store.withRunning { try await store.migrate(); try await serviceGroup.run() }`
    /// closes the store only after the service group (and its graceful shutdown) has finished.
    public func withRunning<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.run() }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// Runs `SELECT 1`; throws `.unavailable` when the server cannot be reached within the timeout.
    public func ping() async throws {
        _ = try await withConnection { connection in
            try await connection.query("SELECT 1", logger: self.logger).collect()
        }
    }
}
