import Foundation

/// Runs `body` on a thread of its own instead of Swift's cooperative pool, in the same task (so the test's
/// expectations and task-locals still belong to it). For tests that hold a CPU for a long time (fuzzers, decoders,
/// encoders, audio renders): on a 2-core machine the pool has two threads, and two such tests on it would stall
/// every async test beside them (their servers' I/O, their timeouts). They take turns on one serial queue, so
/// together they hold one core at most and leave the other to everything else (a wider queue let them load the
/// machine to 20 and starve the servers the end-to-end tests start).
public func offPool<T>(_ body: () async throws -> T) async throws -> T {
    try await withTaskExecutorPreference(BlockingWorkExecutor.shared, operation: body)
}

/// A task executor on one serial GCD queue, whose thread is not the cooperative pool's.
final class BlockingWorkExecutor: TaskExecutor, @unchecked Sendable {
    // SAFETY: the only state is a serial queue, which is thread-safe.
    static let shared = BlockingWorkExecutor()
    private let queue = DispatchQueue(label: "kinema.tests.blocking-work")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
