import Foundation
import KinemaStore
import Logging
import Metrics
import ServiceLifecycle

/// Periodically puts tasks whose worker stopped heartbeating back in the queue (or fails them at max attempts).
///
/// Safe to run on every node at once: the store rescues each task once.
public struct LeaseRescuer: Service {
    let store: any TaskStore
    let interval: Duration
    let signal: WorkSignal
    let logger: Logger
    let now: @Sendable () -> Date

    public init(
        store: any TaskStore, interval: Duration = .seconds(5), signal: WorkSignal, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.interval = interval
        self.signal = signal
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        var lastSweep: ContinuousClock.Instant?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let report = try await store.rescueExpiredLeases(now: now())
                Counter(label: "kinema_lease_rescues_total", dimensions: [("outcome", "requeued")]).increment(by: report.requeued.count)
                Counter(label: "kinema_lease_rescues_total", dimensions: [("outcome", "attempts_exhausted")]).increment(by: report.failed.count)
                if !report.requeued.isEmpty || !report.failed.isEmpty {
                    logger.notice("rescued expired leases", metadata: ["requeued": "\(report.requeued.count)", "failed": "\(report.failed.count)"])
                    for _ in report.requeued { signal.notify() }
                }
            } catch {
                logger.error("lease rescue failed", metadata: ["error": "\(error)"])
            }
            // Idempotency keys older than 24 h are swept once a minute (a write; keys live a day, so no hurry).
            if lastSweep.map({ ContinuousClock.now - $0 >= .seconds(60) }) ?? true {
                lastSweep = ContinuousClock.now
                do {
                    _ = try await store.sweepIdempotencyKeys(now: now())
                } catch {
                    logger.error("sweeping expired idempotency keys failed", metadata: ["error": "\(error)"])
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
