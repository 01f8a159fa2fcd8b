import KinemaStore
import ServiceLifecycle

/// Wakes one idle in-process worker (through `signal`) for every cross-process work notification
/// (PostgreSQL `LISTEN/NOTIFY`), so a task queued on another node is claimed at once instead of at the next poll.
///
/// The pool runs one whenever its work source offers notifications; a node could run one beside its
/// remote-worker long-polls too, since they wait on the same `WorkSignal`. Polling stays the fallback.
public struct WorkNotificationRelay: Service {
    let notifications: any WorkNotifications
    let signal: WorkSignal
    /// How long one wait lasts before it is renewed; it only bounds how long a stale wait may linger.
    let renewal: Duration

    /// Relays `notifications` to `signal`.
    public init(notifications: any WorkNotifications, signal: WorkSignal, renewal: Duration = .seconds(30)) {
        self.notifications = notifications
        self.signal = signal
        self.renewal = renewal
    }

    /// Relays until cancelled or shut down gracefully.
    public func run() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let notified = await cancelWhenGracefulShutdown { await notifications.waitForWork(timeout: renewal) }
            if notified { signal.notify() }
        }
    }
}
