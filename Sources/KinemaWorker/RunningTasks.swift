import Foundation
import Synchronization

/// The tasks this process is running, so a cancel received here stops its render at once instead of at the render's
/// next heartbeat (which is how other processes and remote workers learn of it).
public final class RunningTasks: Sendable {
    private let stops = Mutex<[UUID: @Sendable () -> Void]>([:])

    public init() {}

    /// Stops the render of `id` if it runs here (its store record was canceled already).
    public func cancel(_ id: UUID) {
        let stop = stops.withLock { $0[id] }
        stop?()
    }

    func register(_ id: UUID, stop: @escaping @Sendable () -> Void) {
        stops.withLock { $0[id] = stop }
    }

    func remove(_ id: UUID) {
        _ = stops.withLock { $0.removeValue(forKey: id) }
    }
}

/// Fires once; `wait` returns when it fired or when the waiting task is cancelled.
final class OneShot: Sendable {
    private let state = Mutex<(fired: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func fire() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.fired = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }

    var fired: Bool { state.withLock { $0.fired } }

    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.fired || Task.isCancelled { return true }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }
    }
}
