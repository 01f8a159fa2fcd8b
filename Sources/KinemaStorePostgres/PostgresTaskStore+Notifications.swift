import Foundation
import KinemaStore
import Logging
import PostgresNIO
import Synchronization

/// Idle workers of every process sharing the database are woken by the enqueues and requeues of any node.
extension PostgresTaskStore: WorkNotifications {}

extension PostgresTaskStore {
    /// Waits until work may be available: returns `true` when a `NOTIFY kinema_tasks` arrived (a task was
    /// enqueued or requeued on any node), `false` after `timeout`, on cancellation, or once the store closed.
    ///
    /// For idle workers: claim; when `claim` returns `nil`, `await waitForWork(timeout: pollInterval)` and
    /// claim again, whatever it returned. Polling stays the correctness fallback: a notification is a hint
    /// (another worker may take the task first) and can be missed (before the first call starts listening,
    /// or while the listening connection reconnects). Each notification wakes one waiter; one that arrives
    /// while nobody waits lets the next call return at once. The first call opens one dedicated LISTEN
    /// connection for the rest of `run()`, so API-only nodes that never call this hold none.
    public func waitForWork(timeout: Duration) async -> Bool {
        work.requestListening()
        return await work.wait(timeout: timeout)
    }

    /// Listens on `notificationChannel` once someone waits for work, reconnecting until cancelled.
    func listenForWork() async {
        guard await work.listeningRequested() else { return }
        var backoff: Duration = .milliseconds(100)
        var reconnecting = false
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.notificationChannel) { notifications in
                        // Operators (and tests) can see when wake-ups start to flow; until then workers only poll.
                        logger.info(
                            "listening for task notifications", metadata: ["channel": "\(Self.notificationChannel)", "database": "\(target)"])
                        // Work may have arrived while the connection was down: let one waiter look.
                        if reconnecting { self.work.notify() }
                        backoff = .milliseconds(100)
                        for try await _ in notifications { self.work.notify() }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                // When the store shuts down, its client closes this connection a moment before the cancellation
                // reaches this task: not worth a warning (were it anything else, the loop reconnects as usual).
                let closing = (error as? PSQLError)?.code == .clientClosedConnection
                logger.log(
                    level: closing ? .debug : .warning,
                    "LISTEN \(Self.notificationChannel) failed; idle workers poll until it is back",
                    metadata: ["database": "\(target)", "error": "\(String(describing: Self.storeError(error, target: target)))"]
                )
            }
            reconnecting = true
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
    }
}

/// Idle workers waiting for a notification, woken one per notification.
final class WorkWaiters: Sendable {
    /// Notifications kept for workers that were busy when they arrived; more would only cause empty claims.
    static let maxPending = 64

    private struct State {
        var waiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var order: [UInt64] = []
        var nextID: UInt64 = 0
        var pending = 0
        var listenRequested = false
        var closed = false
    }

    private let state = Mutex(State())
    private let listenRequests: AsyncStream<Void>
    private let listenContinuation: AsyncStream<Void>.Continuation

    init() {
        (listenRequests, listenContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks `listenForWork` to start listening (once).
    func requestListening() {
        let first = state.withLock { s in
            defer { s.listenRequested = true }
            return !s.listenRequested
        }
        if first { listenContinuation.yield() }
    }

    /// Returns `true` once listening was requested, `false` when the store closed first.
    func listeningRequested() async -> Bool {
        for await _ in listenRequests { return true }
        return false
    }

    /// Wakes the longest-waiting worker, or remembers the notification for the next one to wait.
    func notify() {
        let waiter: CheckedContinuation<Bool, Never>? = state.withLock { s in
            while let id = s.order.first {
                s.order.removeFirst()
                if let waiter = s.waiters.removeValue(forKey: id) { return waiter }
            }
            s.pending = min(s.pending + 1, Self.maxPending)
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// Wakes every waiter with `false` and makes later waits return at once (the store closed).
    func close() {
        let all = state.withLock { s in
            s.closed = true
            s.order.removeAll()
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        listenContinuation.finish()
        for waiter in all { waiter.resume(returning: false) }
    }

    /// `true` when notified, `false` after `timeout`, on cancellation, or when closed.
    func wait(timeout: Duration) async -> Bool {
        let ticket: UInt64? = state.withLock { s in
            if s.pending > 0 {
                s.pending -= 1
                return nil
            }
            s.nextID += 1
            return s.nextID
        }
        guard let ticket else { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                        let answerNow: Bool? = self.state.withLock { s in
                            if s.closed || Task.isCancelled { return false }
                            // A notification that arrived between taking the ticket and getting here found
                            // no waiter and was kept as pending: it is this waiter's.
                            if s.pending > 0 {
                                s.pending -= 1
                                return true
                            }
                            s.waiters[ticket] = continuation
                            s.order.append(ticket)
                            return nil
                        }
                        if let answerNow { continuation.resume(returning: answerNow) }
                    }
                } onCancel: {
                    self.resume(ticket, with: false)
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            var notified = await group.next() ?? false
            group.cancelAll()
            // A notification may have resumed the waiter just as the timeout fired: it must not be lost.
            for await answer in group { notified = notified || answer }
            return notified
        }
    }

    private func resume(_ ticket: UInt64, with value: Bool) {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            s.order.removeAll { $0 == ticket }
            return s.waiters.removeValue(forKey: ticket)
        }
        waiter?.resume(returning: value)
    }
}
