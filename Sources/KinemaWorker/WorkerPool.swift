import Foundation
import KinemaCore
import KinemaStore
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Settings of the in-process workers.
public struct WorkerConfiguration: Sendable {
    /// Number of tasks rendered at once (0 disables the pool).
    public var count: Int
    /// Stable identity prefix of this node's workers; a restart with the same prefix requeues its orphans at once.
    public var nodeID: String
    /// How long a claim holds a task without a heartbeat.
    public var leaseDuration: TimeInterval = 30
    /// How often a running task heartbeats (well under the lease).
    public var heartbeatInterval: Duration = .seconds(2)
    /// How long an idle worker sleeps between polls when no signal (in-process submit, or a notification
    /// from the source's store) arrives.
    public var pollInterval: Duration = .seconds(1)
    /// How long running renders may go on after a shutdown request before their leases are released.
    public var shutdownGrace: Duration = .seconds(30)
    /// Where renders write before the result is moved into the blob store.
    public var scratchDirectory: URL

    public init(count: Int, nodeID: String, scratchDirectory: URL) {
        self.count = count
        self.nodeID = nodeID
        self.scratchDirectory = scratchDirectory
    }

    /// The worker id of slot `index`.
    public func workerID(_ index: Int) -> String { "\(nodeID)/w\(index)" }
}

/// Claims tasks, renders them with the engine, stores results, and completes or fails them — while holding a lease.
///
/// Runs as a `Service`: on graceful shutdown it stops claiming, lets running renders finish within
/// `shutdownGrace`, and releases the leases of renders still running after that so no task is lost.
public struct WorkerPool: Service {
    let configuration: WorkerConfiguration
    let source: any WorkSource
    let engine: any VideoEngine
    let signal: WorkSignal
    let logger: Logger
    /// Where a cancel received by this process finds the render to stop (`nil`: cancels arrive by heartbeat only).
    let running: RunningTasks?

    public init(
        configuration: WorkerConfiguration, source: any WorkSource, engine: any VideoEngine, signal: WorkSignal, logger: Logger,
        running: RunningTasks? = nil
    ) {
        self.running = running
        self.configuration = configuration
        self.source = source
        self.engine = engine
        self.signal = signal
        self.logger = logger
    }

    private struct GraceExpired: Error {}

    public func run() async throws {
        guard configuration.count > 0 else { return }
        try FileManager.default.createDirectory(at: configuration.scratchDirectory, withIntermediateDirectories: true)
        // A previous run of this node that died left its tasks PROCESSING: put them back now, not after lease expiry.
        for i in 0..<configuration.count {
            let report = try await source.requeueOrphans(ofWorker: configuration.workerID(i))
            if !report.requeued.isEmpty || !report.failed.isEmpty {
                logger.notice(
                    "requeued orphaned tasks",
                    metadata: ["worker": "\(configuration.workerID(i))", "requeued": "\(report.requeued.count)", "failed": "\(report.failed.count)"])
            }
        }
        let loops = configuration.count
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<loops {
                    group.addTask {
                        await self.loop(workerID: self.configuration.workerID(i))
                        return true
                    }
                }
                if let notifications = source.notifications {
                    // Tasks queued by other processes wake an idle loop at once; polling stays the fallback.
                    group.addTask {
                        await WorkNotificationRelay(notifications: notifications, signal: self.signal).run()
                        return false
                    }
                }
                // Grace watchdog: after shutdown is requested and the grace has passed, cancel what still runs. An engine
                // whose tasks resume from the store (upstream providers) is handed back at once.
                group.addTask {
                    try await gracefulShutdown()
                    self.signal.notifyAll()
                    try await Task.sleep(for: self.engine.resumable ? .zero : self.configuration.shutdownGrace)
                    throw GraceExpired()
                }
                var finished = 0
                while let isLoop = try await group.next() {
                    if isLoop { finished += 1 }
                    if finished == loops { group.cancelAll() }
                }
            }
        } catch is GraceExpired {
            logger.notice("shutdown grace expired; running renders were released for another attempt")
        } catch is CancellationError {
            // Normal end of the watchdog when every loop finished first.
        }
        await releaseWhatIsStillHeld()
    }

    /// Every loop has ended, so a task still leased to one of this pool's workers is one whose claim answer was lost
    /// to the shutdown (a long-poll cut off just as the node answered it): give it back now, un-counted, rather than
    /// leave it PROCESSING until its lease expires.
    private func releaseWhatIsStillHeld() async {
        for i in 0..<configuration.count {
            let workerID = configuration.workerID(i)
            guard let report = await finish({ try await source.releaseLeases(ofWorker: workerID) }) else { continue }
            if !report.requeued.isEmpty {
                logger.notice(
                    "released tasks claimed as this worker stopped", metadata: ["worker": "\(workerID)", "released": "\(report.requeued.count)"])
            }
        }
    }

    /// One worker: claim, run, repeat until shutdown or cancellation.
    func loop(workerID: String) async {
        var announced: ContinuousClock.Instant?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            // Presence for queued tasks' ETA, at most every 15 s; a failure only leaves the record older.
            if announced.map({ ContinuousClock.now - $0 > .seconds(15) }) ?? true {
                try? await source.announce(workerID: workerID, engine: engine.name)
                announced = ContinuousClock.now
            }
            // A paused engine (an upstream provider refusing the account) leaves its tasks queued.
            await cancelWhenGracefulShutdown { await engine.waitUntilReady() }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            let claimed: ClaimedTask?
            do {
                claimed = try await source.claim(workerID: workerID, engine: engine.name, leaseDuration: configuration.leaseDuration)
            } catch {
                logger.error("claim failed", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                await cancelWhenGracefulShutdown { await signal.wait(timeout: configuration.pollInterval, engine: engine.name) }
                continue
            }
            guard let claimed else {
                await cancelWhenGracefulShutdown { await signal.wait(timeout: configuration.pollInterval, engine: engine.name) }
                continue
            }
            await run(claimed)
        }
    }

    /// Runs one claimed task to a fenced end: complete, fail, or release.
    func run(_ claimed: ClaimedTask) async {
        let lease = claimed.lease
        let task = claimed.task
        var meta: Logger.Metadata = ["task": "\(task.id)", "attempt": "\(lease.attempt)", "worker": "\(lease.workerID)"]
        let started = ContinuousClock.now
        logger.info("render started", metadata: meta)
        let output = configuration.scratchDirectory.appendingPathComponent(
            "\(task.id.uuidString.lowercased())-\(lease.leaseID.uuidString.lowercased()).mp4")
        defer { try? FileManager.default.removeItem(at: output) }

        let state = RenderState(eta: task.etaSeconds)
        let canceledHere = OneShot()
        running?.register(task.id) { canceledHere.fire() }
        defer { running?.remove(task.id) }
        let outcome: Result<Void, any Error>
        do {
            // Heartbeats go on while the inputs are fetched (retried while object storage is down).
            let inputs = try await Self.heartbeating(
                lease, progress: RenderProgress(percent: 0, etaSeconds: task.etaSeconds), source: source, configuration: configuration
            ) {
                try await source.inputs(of: claimed)
            }
            let job = RenderJob(
                request: task.request, image: inputs.image, endImage: inputs.endImage, taskID: task.id, upstream: task.upstream,
                journal: SourceJournal(source: source, lease: lease), imageKey: task.imageKey, endImageKey: task.endImageKey)
            outcome = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
                group.addTask {
                    do {
                        try await engine.render(job, to: output) { p in state.pacer.record(p) }
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
                group.addTask {
                    // A cancel received by this process: the record was canceled already, stop now.
                    await canceledHere.wait()
                    if canceledHere.fired { state.leaseLost.store(true, ordering: .relaxed) }
                    return nil
                }
                group.addTask {
                    // Heartbeat until the render ends, with its progress; a lost lease cancels the render.
                    let alive = await Self.heartbeats(lease, pacer: state.pacer, source: source, configuration: configuration)
                    if !alive { state.leaseLost.store(true, ordering: .relaxed) }
                    return nil
                }
                var result: Result<Void, any Error> = .failure(CancellationError())
                while let next = await group.next() {
                    if let r = next {
                        result = r
                        group.cancelAll()
                    } else if state.leaseLost.load(ordering: .relaxed) {
                        group.cancelAll()
                    }
                }
                return result
            }
        } catch {
            outcome = .failure(error)
        }

        meta["seconds"] = "\(String(format: "%.2f", (ContinuousClock.now - started).timeInterval))"
        if state.leaseLost.load(ordering: .relaxed) {
            // Canceled by its owner, or rescued for another worker: either way this render's output is not the result.
            if canceledHere.fired {
                logger.notice("task canceled during render; stopped at once, result discarded", metadata: meta)
                await engine.canceled(taskID: task.id, upstream: try? await source.task(id: task.id)?.upstream)
            } else if let now = try? await source.task(id: task.id), now.status == .canceled {
                logger.notice("task canceled during render; result discarded", metadata: meta)
                await engine.canceled(taskID: task.id, upstream: now.upstream)
            } else {
                logger.warning("lease lost during render; result discarded", metadata: meta)
            }
            return
        }
        switch outcome {
        case .success:
            do {
                // Heartbeats go on while the result is stored: an upload retried while object storage is down keeps
                // the lease instead of letting the task be rescued and rendered again.
                let completed = try await detached {
                    try await Self.heartbeating(
                        lease, progress: RenderProgress(percent: 99, etaSeconds: 0), source: source, configuration: configuration
                    ) {
                        try await source.complete(lease, resultFile: output)
                    }
                }
                if completed {
                    logger.info("render succeeded", metadata: meta)
                    let seconds = ContinuousClock.now - started
                    Timer(label: "kinema_render_seconds", dimensions: [("engine", engine.name)]).recordNanoseconds(
                        seconds.components.seconds * 1_000_000_000 + seconds.components.attoseconds / 1_000_000_000)
                    Recorder(label: "kinema_render_seconds_per_video_second", dimensions: [("engine", engine.name)]).record(
                        seconds.timeInterval / Double(max(1, task.request.duration)))
                    Counter(label: "kinema_renders_total", dimensions: [("engine", engine.name), ("outcome", "succeeded")]).increment()
                } else {
                    logger.warning("completion refused: lease no longer held", metadata: meta)
                }
            } catch {
                // Storing the result failed (disk full, network): another attempt may succeed.
                let (reason, retryable) = Self.classify(error)
                logger.error("finishing the task failed", metadata: meta.merging(["error": "\(error)"]) { $1 })
                await finish { try await source.fail(lease, reason: reason, retryable: retryable) }
            }
        case .failure(let error as EnginePostponed):
            // Nothing is wrong with the task: it goes back un-counted, and the engine holds further claims.
            await finish { try await source.release(lease) }
            logger.notice("engine postponed the task; lease released", metadata: meta.merging(["why": "\(error.message)"]) { $1 })
        case .failure(let error):
            if Task.isCancelled || error is CancellationError {
                // Shutdown past the grace period: the task goes back untouched for another process.
                await finish { try await source.release(lease) }
                logger.notice("render interrupted by shutdown; lease released", metadata: meta)
                return
            }
            let (reason, retryable) = Self.classify(error)
            await finish { try await source.fail(lease, reason: reason, retryable: retryable) }
            Counter(label: "kinema_renders_total", dimensions: [("engine", engine.name), ("outcome", "failed")]).increment()
            logger.warning("render failed", metadata: meta.merging(["reason": "\(reason)", "retryable": "\(retryable)"]) { $1 })
        }
    }

    /// Heartbeats `lease` until cancelled: every interval to keep it, and at each further 10 % of `pacer`'s progress
    /// (at most one per 250 ms) for whoever watches. Returns `false` as soon as the lease is found lost, `true` when
    /// cancelled. A heartbeat that could not be sent counts as alive (the next one tries again).
    static func heartbeats(_ lease: TaskLease, pacer: ProgressPacer, source: any WorkSource, configuration: WorkerConfiguration) async -> Bool {
        var lastSent = ContinuousClock.now
        while !Task.isCancelled {
            await pacer.waitForStep(upTo: configuration.heartbeatInterval - (ContinuousClock.now - lastSent))
            let since = ContinuousClock.now - lastSent
            if since < ProgressPacer.minimumSpacing { try? await Task.sleep(for: ProgressPacer.minimumSpacing - since) }
            if Task.isCancelled { break }
            lastSent = ContinuousClock.now
            let alive = (try? await source.heartbeat(lease, progress: pacer.take(), leaseDuration: configuration.leaseDuration)) ?? true
            if !alive { return false }
        }
        return true
    }

    /// Runs `body` while heartbeating `lease` with a fixed `progress`; a lost lease cancels `body`.
    static func heartbeating<T: Sendable>(
        _ lease: TaskLease, progress: RenderProgress, source: any WorkSource, configuration: WorkerConfiguration,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                let pacer = ProgressPacer(progress)
                guard await heartbeats(lease, pacer: pacer, source: source, configuration: configuration) else { throw CancellationError() }
                return nil
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }

    /// The caller-visible reason and retry decision for an engine error.
    static func classify(_ error: any Error) -> (String, Bool) {
        if let e = error as? EngineError { return (e.message, e.retryable) }
        return ("the render failed unexpectedly", true)
    }

    /// Runs a write without inheriting the caller's cancellation: a finished render must be recorded, and a
    /// lease must never be left dangling, even while the pool is being shut down.
    private func detached<T: Sendable>(_ write: @escaping @Sendable () async throws -> T) async throws -> T {
        // Detached on purpose: it must not inherit the cancellation that brought us here.
        try await Task.detached { try await write() }.value
    }

    /// Like `detached`, logging (not throwing) a failure.
    @discardableResult
    private func finish<T: Sendable>(_ write: @escaping @Sendable () async throws -> T) async -> T? {
        let result = await Task.detached { try await write() }.result
        if case .failure(let error) = result {
            logger.error("store write after render failed", metadata: ["error": "\(error)"])
        }
        return try? result.get()
    }
}

/// An engine's upstream handle goes to the work source's store; a refused write is an error, so the engine never goes
/// on to a paid step whose record did not land.
private struct SourceJournal: UpstreamJournal {
    let source: any WorkSource
    let lease: TaskLease

    func record(_ handle: UpstreamHandle?) async throws {
        // Detached: the record must land even when the render is being cancelled (shutdown, lost lease).
        let source = self.source
        let lease = self.lease
        let stored = try await Task.detached { try await source.recordUpstream(lease, handle: handle) }.value
        guard stored else { throw EngineError("the task ended while its upstream state was being recorded", retryable: false) }
    }
}

/// What the render and its heartbeat share while a task runs.
private final class RenderState: Sendable {
    let pacer: ProgressPacer
    let leaseLost = Atomic<Bool>(false)

    init(eta: Int) {
        pacer = ProgressPacer(RenderProgress(percent: 0, etaSeconds: eta))
    }
}
