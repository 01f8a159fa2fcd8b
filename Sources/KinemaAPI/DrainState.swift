import ServiceLifecycle
import Synchronization

/// Whether this node is shutting down: readiness turns false and submits answer 503 before anything stops.
public final class DrainState: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isDraining: Bool { flag.load(ordering: .relaxed) }

    func begin() { flag.store(true, ordering: .relaxed) }
}

/// The first service to hear about a graceful shutdown: it flips `DrainState` and returns.
struct DrainMonitor: Service {
    let state: DrainState

    func run() async throws {
        try? await gracefulShutdown()
        state.begin()
    }
}
