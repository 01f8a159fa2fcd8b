import Synchronization

/// Wakes idle workers when work arrives, so an in-process submit is picked up without waiting for a poll.
///
/// Polling stays the correctness fallback: a missed signal only costs one poll interval.
public final class WorkSignal: Sendable {
    /// Signals kept for workers that were busy when they arrived; more would only cause empty claims.
    static let maxPending = 64

    private struct State {
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
        var pending = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes one idle worker (or lets the next one to wait return at once).
    public func notify() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { s in
            if let (id, c) = s.waiters.first {
                s.waiters.removeValue(forKey: id)
                return c
            }
            s.pending = min(s.pending + 1, Self.maxPending)
            return nil
        }
        waiter?.resume()
    }

    /// Wakes every idle worker (shutdown).
    public func notifyAll() {
        let all = state.withLock { s in
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for c in all { c.resume() }
    }

    /// Returns when notified, after `timeout`, or when the task is cancelled, whichever comes first.
    public func wait(timeout: Duration) async {
        let id: UInt64? = state.withLock { s in
            if s.pending > 0 {
                s.pending -= 1
                return nil
            }
            s.nextID += 1
            return s.nextID
        }
        guard let id else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { s -> Bool in
                            if Task.isCancelled { return true }
                            // A signal that arrived between taking the id and getting here found no waiter
                            // and was kept as pending: it is this waiter's.
                            if s.pending > 0 {
                                s.pending -= 1
                                return true
                            }
                            s.waiters[id] = c
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    let c = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                    c?.resume()
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
            }
            await group.next()
            group.cancelAll()
        }
    }
}
