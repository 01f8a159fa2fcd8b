/// Wake-ups for idle workers that cross process boundaries: "a task may have been queued somewhere".
///
/// A store that can tell (PostgreSQL through `LISTEN/NOTIFY`) conforms; workers find it through their work
/// source and stay idle until notified instead of only polling. It is a hint, never a guarantee: another worker
/// may claim the task first, and a notification can be missed (e.g. while a connection reconnects), so workers
/// keep polling as the correctness fallback.
public protocol WorkNotifications: Sendable {
    /// Returns `true` when work may have arrived, `false` after `timeout`, on cancellation, or once the source closed.
    ///
    /// Each notification wakes one waiter; one that arrives while nobody waits lets the next call return at once.
    func waitForWork(timeout: Duration) async -> Bool
}
