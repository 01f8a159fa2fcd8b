import ArgumentParser
import Foundation
import KinemaCore
import KinemaStore
import KinemaStorePostgres
import KinemaStoreSQLite
import KinemaWorker
import Logging
import Synchronization

/// `kinema bench-store`: task store figures (not pass/fail): claim+complete throughput with concurrent
/// claimers, and submit→claim latency for an idle worker, on PostgreSQL (`--database`) and on SQLite.
///
/// It enqueues and completes throwaway tasks, so it refuses a PostgreSQL database that already holds tasks:
/// point it at a throwaway server (`scripts/test-postgres start`, as `make bench` does).
struct BenchStore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-store",
        abstract: "Benchmark the task stores: claim+complete throughput and idle submit→claim latency (PostgreSQL and SQLite)."
    )

    @Option(
        name: .customLong("database"),
        help: "URL of an empty, throwaway PostgreSQL database (e.g. from scripts/test-postgres); omit to measure SQLite only.")
    var database: String?

    @Option(
        name: .customLong("postgres-pid"),
        help: "PID of the PostgreSQL server (postmaster) when it runs on this machine: adds the server's CPU per task (Linux /proc).")
    var postgresPID: Int32?

    @Flag(name: .customLong("no-sqlite"), help: "Skip the SQLite measurements.")
    var noSQLite = false

    @Option(help: "Tasks claimed and completed in the PostgreSQL throughput run.")
    var tasks: Int = 4000

    @Option(
        name: .customLong("sqlite-tasks"), help: "Tasks claimed and completed in the SQLite throughput run (every commit is fsynced: keep it modest)."
    )
    var sqliteTasks: Int = 1000

    @Option(help: "Concurrent claimers in the throughput run.")
    var claimers: Int = 8

    @Option(help: "Submit→claim latency samples (after 20 warm-up samples).")
    var samples: Int = 300

    func run() async throws {
        guard tasks >= 1, sqliteTasks >= 1, (1...64).contains(claimers), samples >= 1 else {
            throw CLIError("--tasks and --sqlite-tasks must be ≥ 1, --claimers 1…64 and --samples ≥ 1.")
        }
        var logger = Logger(label: "kinema.bench-store")
        // PostgresNIO warns when a query races the client's start inside `withRunning`; harmless here.
        logger.logLevel = .error
        print("load average at start: \(Self.loadAverage())")
        if let url = database {
            try await benchPostgres(url: url, logger: logger)
        }
        if !noSQLite {
            try await benchSQLite()
        }
        print("load average at end: \(Self.loadAverage())")
    }

    // MARK: Backends

    func benchPostgres(url: String, logger: Logger) async throws {
        // Two stores, two connection pools: the submitter plays an API node, the claimer a worker process,
        // so every wake-up travels through the server's NOTIFY exactly as between processes.
        let api = try PostgresTaskStore(url: url, logger: logger, maxConnections: claimers + 2)
        let worker = try PostgresTaskStore(url: url, logger: logger, maxConnections: 4)
        try await api.withRunning {
            try await worker.withRunning {
                try await api.migrate()
                let existing = try await api.countByStatus().values.reduce(0, +)
                guard existing == 0 else {
                    throw CLIError(
                        "the database holds \(existing) tasks; bench-store enqueues and completes throwaway tasks, so give it an empty database (scripts/test-postgres start prints one)."
                    )
                }
                let serverBefore = postgresPID.flatMap(ServerCPU.seconds(ofTreeAt:))
                let throughput = try await Self.throughput(store: api, tasks: tasks, claimers: claimers)
                var line = Self.describe(backend: "postgresql", throughput)
                if let before = serverBefore, let after = postgresPID.flatMap(ServerCPU.seconds(ofTreeAt:)) {
                    line += String(format: "; server CPU %.0f µs per task", (after - before) / Double(tasks) * 1e6)
                }
                print(line)
                let latency = try await Self.idleLatency(
                    submitter: api, claimer: worker, samples: samples,
                    wake: .init(notify: {}, wait: { timeout in _ = await worker.waitForWork(timeout: timeout) })
                )
                print(
                    Self.describe(
                        backend: "postgresql", how: "woken by LISTEN/NOTIFY through the server; submitter and worker on separate connection pools",
                        latency))
            }
        }
    }

    func benchSQLite() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-bench-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteTaskStore(path: dir.appendingPathComponent("kinema.sqlite").path)
        let throughput = try await Self.throughput(store: store, tasks: sqliteTasks, claimers: claimers)
        print(Self.describe(backend: "sqlite", throughput))
        // One store shared by the API and its in-process workers, woken by the node's WorkSignal, as `kinema serve` does.
        let signal = WorkSignal()
        let latency = try await Self.idleLatency(
            submitter: store, claimer: store, samples: samples,
            wake: .init(notify: { signal.notify() }, wait: { timeout in await signal.wait(timeout: timeout) })
        )
        print(Self.describe(backend: "sqlite", how: "woken by the in-process WorkSignal after the submit commits, as in an embedded node", latency))
    }

    // MARK: Measurements

    struct Throughput {
        var tasks: Int
        var claimers: Int
        var seconds: Double
        /// CPU seconds this process (the claimers' side) used meanwhile: a figure the machine's load does not inflate.
        var cpuSeconds: Double
    }

    /// Enqueues `tasks` tasks (not timed), then times `claimers` concurrent loops of claim + complete until the queue is empty.
    static func throughput(store: any TaskStore, tasks: Int, claimers: Int) async throws -> Throughput {
        let ids = (0..<tasks).map { _ in UUID() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for lane in 0..<claimers {
                group.addTask {
                    for i in stride(from: lane, to: ids.count, by: claimers) {
                        try await store.enqueue(newTask(ids[i]), now: Date())
                    }
                }
            }
            try await group.waitForAll()
        }
        let start = ContinuousClock.now
        let cpuStart = clock()
        let done = try await withThrowingTaskGroup(of: Int.self) { group in
            for lane in 0..<claimers {
                group.addTask {
                    var count = 0
                    while let claimed = try await store.claim(workerID: "bench/w\(lane)", engine: "motion", leaseDuration: 60, now: Date()) {
                        guard try await store.complete(claimed.lease, resultKey: StoreWorkSource.resultKey(claimed.lease), now: Date()) else {
                            throw CLIError("a completion under a fresh lease was refused: the store is broken")
                        }
                        count += 1
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        let cpuSeconds = Double(clock() - cpuStart) / Double(CLOCKS_PER_SEC)
        // Every task claimed and completed exactly once: the figure is for correct work only.
        let succeeded = try await store.countByStatus()[.succeeded] ?? 0
        guard done == tasks, succeeded >= tasks else {
            throw CLIError("the claimers completed \(done) of \(tasks) tasks (\(succeeded) succeeded in the store): the store is broken")
        }
        return Throughput(tasks: tasks, claimers: claimers, seconds: seconds, cpuSeconds: cpuSeconds)
    }

    /// How the idle claimer is woken: `notify` after each submit (in-process signal), `wait` while idle.
    struct Wake: Sendable {
        var notify: @Sendable () -> Void
        var wait: @Sendable (Duration) async -> Void
    }

    struct Latency {
        /// Milliseconds from the start of each submit (the enqueue call) to the claim returning the task.
        var millis: [Double]
        /// Milliseconds from the enqueue's return (committed) to the claim returning the task: the wake-up alone.
        var afterCommitMillis: [Double]
        var warmUp: Int
    }

    static let warmUp = 20
    /// The idle worker's poll interval, as in `kinema serve` and `kinema worker`: the fallback when a wake-up is missed.
    static let pollInterval: Duration = .seconds(1)

    /// One idle claimer (claim; when empty wait for a wake-up or the poll); the submitter enqueues one task at a time,
    /// after the claimer has gone idle again, and measures until the claimer holds it.
    static func idleLatency(submitter: any TaskStore, claimer: any TaskStore, samples: Int, wake: Wake) async throws -> Latency {
        let (claims, claimed) = AsyncStream<(UUID, ContinuousClock.Instant)>.makeStream()
        return try await withThrowingTaskGroup(of: Latency?.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    if let task = try await claimer.claim(workerID: "bench/idle", engine: "motion", leaseDuration: 60, now: Date()) {
                        claimed.yield((task.task.id, .now))
                        _ = try await claimer.complete(task.lease, resultKey: StoreWorkSource.resultKey(task.lease), now: Date())
                    } else {
                        await wake.wait(pollInterval)
                    }
                }
                return nil
            }
            group.addTask {
                var iterator = claims.makeAsyncIterator()
                var millis: [Double] = []
                var afterCommit: [Double] = []
                for i in 0..<(warmUp + samples) {
                    // Long enough for the claimer to complete, find the queue empty and go idle.
                    try await Task.sleep(for: .milliseconds(Int.random(in: 15...25)))
                    let id = UUID()
                    let start = ContinuousClock.now
                    try await submitter.enqueue(newTask(id), now: Date())
                    let committed = ContinuousClock.now
                    wake.notify()
                    guard let next = await iterator.next() else { throw CancellationError() }
                    let (claimedID, at) = next
                    guard claimedID == id else {
                        throw CLIError("the idle worker claimed \(claimedID), not the task just submitted: the queue was not empty")
                    }
                    if i >= warmUp {
                        millis.append((at - start).inSeconds * 1000)
                        // A claim can beat the submitter's own clock reading after its commit.
                        afterCommit.append(max(0, (at - committed).inSeconds * 1000))
                    }
                }
                return Latency(millis: millis, afterCommitMillis: afterCommit, warmUp: warmUp)
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }

    static func newTask(_ id: UUID) -> NewTask {
        NewTask(
            id: id, tenant: "bench", request: GenerationRequest(prompt: "store benchmark", duration: 5, seed: 1),
            imageKey: BlobKeys.input(taskID: id, ext: "png"), endImageKey: nil, maxAttempts: 3, etaSeconds: 5
        )
    }

    // MARK: Report

    static func describe(backend: String, _ t: Throughput) -> String {
        let rate = Double(t.tasks) / max(t.seconds, 1e-9)
        return "\(backend.padding(toLength: 10, withPad: " ", startingAt: 0)) claim+complete, \(t.claimers) concurrent claimers: "
            + "\(t.tasks) tasks in \(String(format: "%.2f", t.seconds)) s = \(Int(rate.rounded())) tasks/s "
            + "(client CPU \(String(format: "%.0f", t.cpuSeconds / Double(t.tasks) * 1e6)) µs per task)"
    }

    static func describe(backend: String, how: String, _ l: Latency) -> String {
        func pct(_ values: [Double], _ p: Double) -> String {
            let sorted = values.sorted()
            return String(format: "%.2f ms", sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))])
        }
        return
            "\(backend.padding(toLength: 10, withPad: " ", startingAt: 0)) submit→claim, idle worker (\(l.millis.count) samples after \(l.warmUp) warm-up; \(how); poll fallback \(pollInterval)): "
            + "p50 \(pct(l.millis, 0.5)), p99 \(pct(l.millis, 0.99)), max \(pct(l.millis, 1)); "
            + "from the committed enqueue: p50 \(pct(l.afterCommitMillis, 0.5)), p99 \(pct(l.afterCommitMillis, 0.99))"
    }

    /// `/proc/loadavg`'s first three fields, so each run says how busy the machine was.
    static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }
}

/// CPU time of a local server's process tree, read from Linux's `/proc` (bench figures only).
enum ServerCPU {
    /// User + system seconds of `pid`, of its live children, and of the children it has already reaped; `nil` without `/proc`.
    static func seconds(ofTreeAt pid: Int32) -> Double? {
        guard let own = stat(pid) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = own.utime + own.stime + own.cutime + own.cstime
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let child = Int32(entry), child != pid, let s = stat(child), s.ppid == pid else { continue }
            total += s.utime + s.stime
        }
        return total / ticks
    }

    private struct Stat {
        var ppid: Int32
        var utime, stime, cutime, cstime: Double
    }

    private static func stat(_ pid: Int32) -> Stat? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Fields after the parenthesised command name: state, ppid, …; utime is the 14th field of the whole line.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let ppid = Int32(fields[1]) else { return nil }
        func number(_ i: Int) -> Double { Double(fields[i]) ?? 0 }
        return Stat(ppid: ppid, utime: number(11), stime: number(12), cutime: number(13), cstime: number(14))
    }
}

private extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
