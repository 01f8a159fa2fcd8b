import Foundation
import GRDB
import Synchronization

/// A few read-only connections used on the calling thread, for the API's hottest reads (a poll's task status and
/// queue place).
///
/// A pool read (`DatabasePool.read`) hops from the caller's thread to a reader's queue and back: on a two-core machine
/// those thread hand-offs cost more than the indexed read itself (issue 16). These connections are read on the calling
/// thread instead, without a transaction (each statement reads one consistent snapshot; WAL readers never wait for
/// the writer). Nothing here ever waits: a connection is taken only when one is idle (or one more may open), and a
/// busy database (WAL recovery, a checkpoint restart) fails at once; in both cases the caller reads through the pool
/// as before. So a cooperative thread is held for the read's own microseconds, never for another thread.
final class SQLiteInlineReaders: Sendable {
    /// The database file.
    private let path: String
    /// Connections open at most (the cooperative pool has one thread per core; two spare for other callers).
    private let limit: Int
    /// Idle connections, and how many are open in all.
    private let state = Mutex<(idle: [DatabaseQueue], open: Int, closed: Bool)>(([], 0, false))

    init(path: String, limit: Int = ProcessInfo.processInfo.activeProcessorCount + 2) {
        self.path = path
        self.limit = limit
    }

    /// `body`'s result on an idle read-only connection, or `nil` when none is free (or the database is busy), for the
    /// caller to read through the pool instead. Other errors are thrown.
    func read<T>(_ body: (Database) throws -> T) throws -> T? {
        guard let connection = try take() else { return nil }
        defer { giveBack(connection) }
        do {
            return try connection.inDatabase(body)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            return nil
        }
    }

    /// Closes the idle connections; later reads go through the pool.
    func close() {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for connection in idle { try? connection.close() }
    }

    /// An idle connection, a new one while under the limit, or `nil`.
    private func take() throws -> DatabaseQueue? {
        enum Next {
            case reuse(DatabaseQueue)
            case open
            case none
        }
        let next = state.withLock { state -> Next in
            if state.closed { return .none }
            if let connection = state.idle.popLast() { return .reuse(connection) }
            guard state.open < limit else { return .none }
            state.open += 1
            return .open
        }
        switch next {
        case .reuse(let connection):
            return connection
        case .none:
            return nil
        case .open:
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .immediateError
            configuration.label = "kinema.tasks.inline"
            do {
                return try DatabaseQueue(path: path, configuration: configuration)
            } catch {
                state.withLock { $0.open -= 1 }
                throw error
            }
        }
    }

    /// Returns a connection after a read (closing it when the readers were closed meanwhile).
    private func giveBack(_ connection: DatabaseQueue) {
        let keep = state.withLock { state -> Bool in
            if state.closed {
                state.open -= 1
                return false
            }
            state.idle.append(connection)
            return true
        }
        if !keep { try? connection.close() }
    }
}
