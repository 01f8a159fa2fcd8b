import Synchronization

/// Wakes idle workers when work arrives, so an in-process submit is picked up without waiting for a poll.
///
/// Waiters may say which engine they claim for: a task of engine E wakes a waiter of E (or one that takes any
/// engine), never a pool of another engine, which would find nothing while E's workers sleep out their poll. Polling
/// stays the correctness fallback: a missed signal only costs one poll interval.
public final class WorkSignal: Sendable {
    /// Signals kept for workers that were busy when they arrived; more would only cause empty claims.
    static let maxPending = 64

    private struct Waiter {
        var engine: String?
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var waiters: [UInt64: Waiter] = [:]
        var nextID: UInt64 = 0
        /// Kept signals per engine (`nil`: for whoever waits next).
        var pending: [String?: Int] = [:]

        /// Takes a kept signal a waiter for `engine` may use.
        mutating func takePending(for engine: String?) -> Bool {
            for key in engine == nil ? Array(pending.keys) : [engine, nil] where (pending[key] ?? 0) > 0 {
                pending[key]! -= 1
                return true
            }
            return false
        }
    }

    private let state = Mutex(State())

    public init() {}

    /// Work of `engine` arrived: wakes one idle worker of that engine (or one that takes any), or keeps the signal for
    /// the next one to wait. With no engine (a rescue, another node's notification): wakes one waiter of each engine.
    public func notify(engine: String? = nil) {
        let woken: [CheckedContinuation<Void, Never>] = state.withLock { s in
            if let engine {
                // Oldest first among those that may take it.
                if let id = s.waiters.filter({ $0.value.engine == engine || $0.value.engine == nil }).keys.min() {
                    return [s.waiters.removeValue(forKey: id)!.continuation]
                }
                s.pending[engine] = min((s.pending[engine] ?? 0) + 1, Self.maxPending)
                return []
            }
            var firstPerEngine: [String?: UInt64] = [:]
            for (id, waiter) in s.waiters where firstPerEngine[waiter.engine].map({ id < $0 }) ?? true {
                firstPerEngine[waiter.engine] = id
            }
            if firstPerEngine.isEmpty {
                s.pending[nil] = min((s.pending[nil] ?? 0) + 1, Self.maxPending)
                return []
            }
            return firstPerEngine.values.map { s.waiters.removeValue(forKey: $0)!.continuation }
        }
        for c in woken { c.resume() }
    }

    /// How many workers are waiting now (for tests and diagnostics).
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Wakes every idle worker (shutdown).
    public func notifyAll() {
        let all = state.withLock { s in
            defer { s.waiters.removeAll() }
            return Array(s.waiters.values)
        }
        for waiter in all { waiter.continuation.resume() }
    }

    /// Returns on a signal for `engine` (any signal when `nil`), after `timeout`, or when the calling task is cancelled.
    public func wait(timeout: Duration, engine: String? = nil) async {
        let id: UInt64? = state.withLock { s in
            if s.takePending(for: engine) { return nil }
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
                            if s.takePending(for: engine) { return true }
                            s.waiters[id] = Waiter(engine: engine, continuation: c)
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
                    waiter?.continuation.resume()
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
