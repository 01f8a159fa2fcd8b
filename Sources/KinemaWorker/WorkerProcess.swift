import Foundation
import KinemaCore
import Logging
import ServiceLifecycle
import UnixSignals

/// A worker-only process (`kinema worker`): a `WorkerPool` over any `WorkSource`, run as a `ServiceGroup`
/// that drains on SIGTERM/SIGINT (running renders finish within the grace, or their leases are released).
public struct WorkerProcess: Sendable {
    /// The pool's settings (count, worker ids, lease, heartbeat, grace, scratch directory).
    public let configuration: WorkerConfiguration
    /// Where tasks come from (`RemoteWorkSource` over HTTP, or a store).
    public let source: any WorkSource
    /// The engine that renders.
    public let engine: any VideoEngine
    /// Further services to run beside the pool (e.g. a lease rescuer when the source is a shared database).
    public let services: [any Service]
    /// Where the pool and the service group log.
    public let logger: Logger

    /// Wires a worker process.
    public init(configuration: WorkerConfiguration, source: any WorkSource, engine: any VideoEngine, services: [any Service] = [], logger: Logger) {
        self.configuration = configuration
        self.source = source
        self.engine = engine
        self.services = services
        self.logger = logger
    }

    /// Runs until the pool stops after a shutdown signal.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let pool = WorkerPool(configuration: configuration, source: source, engine: engine, signal: WorkSignal(), logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: pool, successTerminationBehavior: .gracefullyShutdownGroup)]
                    + services.map { .init(service: $0, successTerminationBehavior: .ignore) },
                gracefulShutdownSignals: gracefulShutdownSignals,
                logger: logger
            ))
        try await group.run()
    }
}
