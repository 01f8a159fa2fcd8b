import Foundation
import GRDB
import Synchronization

/// Group commit for one process's writes: writes that arrive while a transaction is being committed wait and then
/// share the next one, so N concurrent writers pay for one synced commit instead of N.
///
/// Each write runs in a savepoint of its own, so a write that fails (an error it throws, a constraint it breaks) is
/// rolled back alone and the others commit. A failure that is the database's rather than one write's (a full disk, an
/// I/O error) fails the whole batch, and every write in it gets that error: none of them was committed. A caller is
/// resumed only after its transaction committed (or failed). With no write in flight a new write starts at once, so an
/// idle store adds no latency; a batch holds at most `maxBatch` writes.
final class SQLiteWriteBatcher: Sendable {
    /// One queued write: `run` executes it inside the batch transaction and keeps its result; `finish` resumes its
    /// caller once the transaction ended (`nil`: committed).
    struct Pending: Sendable {
        let run: @Sendable (Database) throws -> Void
        let finish: @Sendable ((any Error)?) -> Void
    }

    private let pool: DatabasePool
    private let state = Mutex<(queue: [Pending], running: Bool)>(([], false))
    let maxBatch = 64

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `body` in the next batch transaction and returns its result once that transaction committed. Errors are
    /// GRDB's or `body`'s own, unmapped.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let outcome = Mutex<Result<T, any Error>?>(nil)
            let pending = Pending(
                run: { db in
                    do {
                        var value: T?
                        try db.inSavepoint {
                            value = try body(db)
                            return .commit
                        }
                        outcome.withLock { $0 = .success(value!) }
                    } catch let error as DatabaseError where !Self.isLocal(error) {
                        throw error // the database's failure: the whole batch fails
                    } catch {
                        outcome.withLock { $0 = .failure(error) }
                    }
                },
                finish: { batchError in
                    if let batchError {
                        continuation.resume(throwing: batchError)
                    } else {
                        continuation.resume(with: outcome.withLock { $0 } ?? .failure(CancellationError()))
                    }
                })
            let start = state.withLock { s -> Bool in
                s.queue.append(pending)
                if s.running { return false }
                s.running = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Commits batches until the queue is empty.
    private func drain() async {
        while true {
            let batch = state.withLock { s -> [Pending] in
                let taken = Array(s.queue.prefix(maxBatch))
                s.queue.removeFirst(taken.count)
                if taken.isEmpty { s.running = false }
                return taken
            }
            if batch.isEmpty { return }
            do {
                try await pool.write { db in
                    for pending in batch { try pending.run(db) }
                }
                for pending in batch { pending.finish(nil) }
            } catch {
                for pending in batch { pending.finish(error) }
            }
        }
    }

    /// Whether a database error belongs to the one write that caused it (a broken constraint, a failed check) and
    /// leaves the transaction usable.
    static func isLocal(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_CONSTRAINT
    }
}
