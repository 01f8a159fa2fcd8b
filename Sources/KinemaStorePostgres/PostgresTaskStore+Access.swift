import Foundation
import KinemaStore
import Logging
import PostgresNIO
import Synchronization

// Connection access with a deadline, transactions, and the mapping of PostgresNIO's errors to StoreError,
// so no PostgresNIO type leaves this module.
extension PostgresTaskStore {
    /// Runs `body` on a pooled connection. Fails as `.unavailable` when no connection is had within
    /// `timeout`: PostgresClient keeps retrying an unreachable server and would otherwise wait forever.
    /// Once `body` has started it is never cut short (a query cut short could still commit).
    func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let gate = StartGate()
        let timeout = self.timeout
        let target = self.target
        let late = "no connection to PostgreSQL at \(target) within \(timeout)"
        do {
            return try await withThrowingTaskGroup(of: Leg<T>.self) { group in
                group.addTask {
                    .done(
                        try await self.client.withConnection { connection in
                            // A connection that arrives after the deadline gave up must not run the body.
                            guard gate.start() else { throw StoreError(.unavailable, late) }
                            return try await body(connection)
                        })
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    guard !gate.hasStarted else { return .deadlinePassedAfterStart }
                    let reason = await self.diagnose()
                    // The body may have started while diagnosing: then it runs to its end.
                    guard gate.timeOut() else { return .deadlinePassedAfterStart }
                    throw StoreError(.unavailable, "\(late): \(reason)")
                }
                while let leg = try await group.next() {
                    if case let .done(value) = leg {
                        group.cancelAll()
                        return value
                    }
                }
                throw CancellationError()
            }
        } catch {
            throw Self.storeError(error, target: target)
        }
    }

    /// Why the pool could not hand out a connection, found with one direct connection attempt:
    /// the pool itself only retries and never reports the cause to waiting callers.
    func diagnose() async -> String {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: settings.connectionConfiguration(timeout: timeout), id: 0, logger: logger
            )
            try? await connection.close()
            return "the server accepts connections, so every pooled connection stayed busy, or PostgresTaskStore.run() is not running"
        } catch let error as PSQLError where error.code == .server {
            return error.serverInfo?[.message] ?? "the server refused the connection"
        } catch let error as PSQLError {
            return "\(error.code)\(Self.underlying(error)); is the server up and reachable at that address?"
        } catch {
            return "\(error)"
        }
    }

    /// Runs `body` in one transaction (READ COMMITTED), committing when it returns and rolling back when it throws.
    func transaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let logger = self.logger
        return try await withConnection { connection in
            _ = try await connection.query("BEGIN", logger: logger).collect()
            do {
                let value = try await body(connection)
                _ = try await connection.query("COMMIT", logger: logger).collect()
                return value
            } catch {
                // If ROLLBACK fails too the connection is broken: the pool drops it and the server rolls back.
                _ = try? await connection.query("ROLLBACK", logger: logger).collect()
                throw error
            }
        }
    }

    /// Runs one statement on a pooled connection and returns its rows.
    func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let logger = self.logger
        return try await withConnection { connection in try await connection.query(query, logger: logger).collect() }
    }

    /// Translates anything thrown by PostgresNIO or by decoding into a `StoreError`; cancellation passes through.
    static func storeError(_ error: any Error, target: String) -> any Error {
        switch error {
        case is StoreError, is CancellationError, is IdempotencyConflict:
            return error
        case let error as PSQLError:
            guard error.code == .server, let info = error.serverInfo else {
                return StoreError(.unavailable, "PostgreSQL at \(target): \(error.code)\(underlying(error))")
            }
            let state = info[.sqlState] ?? "?????"
            var detail = "PostgreSQL at \(target): \(info[.message] ?? "error") (SQLSTATE \(state))"
            if let constraint = info[.constraintName] { detail += " [\(constraint)]" }
            switch state {
            case "42P01", "42703":
                return StoreError(.migrationFailed, "\(detail); the schema is missing or older than this build: run migrate() (kinema migrate)")
            case _ where state.hasPrefix("23"):
                // The store writes only valid rows; a constraint failing here means the stored data is off.
                return StoreError(.corrupt, "invariant violated, \(detail)")
            case _ where state.hasPrefix("22"):
                return StoreError(.corrupt, "unusable stored value, \(detail)")
            default:
                // Connection loss, shutdown, too many connections, serialization failures: try again later.
                return StoreError(.unavailable, detail)
            }
        case let error as PostgresDecodingError:
            return StoreError(
                .corrupt,
                "PostgreSQL at \(target): column \(error.columnName) holds a value of type \(error.postgresType) that cannot be read as \(error.targetType)"
            )
        default:
            return StoreError(.unavailable, "PostgreSQL at \(target): \(error)")
        }
    }

    static func underlying(_ error: PSQLError) -> String {
        error.underlying.map { " (\($0))" } ?? ""
    }

    /// Whether `error` is PostgreSQL's unique violation (SQLSTATE 23505).
    static func isUniqueViolation(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server else { return false }
        return error.serverInfo?[.sqlState] == "23505"
    }
}

/// What finished first in `withConnection`: the work, or the deadline after the work had already started.
enum Leg<T: Sendable>: Sendable {
    case done(T)
    case deadlinePassedAfterStart
}

/// Decides, once, whether an operation's body started or its deadline gave up first.
final class StartGate: Sendable {
    private enum State { case waiting, started, timedOut }
    private let state = Mutex(State.waiting)

    /// Whether the body may run: `true` unless the deadline already gave up.
    func start() -> Bool {
        state.withLock { state in
            if state == .waiting { state = .started }
            return state == .started
        }
    }

    /// Whether the deadline may give up: `true` unless the body already started.
    func timeOut() -> Bool {
        state.withLock { state in
            if state == .waiting { state = .timedOut }
            return state == .timedOut
        }
    }

    var hasStarted: Bool { state.withLock { $0 == .started } }
}
