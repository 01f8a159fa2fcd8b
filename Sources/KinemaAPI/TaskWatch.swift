import Foundation
import KinemaStore
import Logging
import Synchronization

/// Follows the tasks that live event streams watch with **one** store read per interval for all of them (whatever
/// node or worker changes a task, the shared store has it), and hands each stream its task's status. No stream reads
/// the store on its own; with no stream open, nothing runs.
final class TaskWatch: Sendable {
    private struct State {
        var watchers: [UUID: [Int: AsyncStream<TaskStatusRecord>.Continuation]] = [:]
        var nextID = 0
        var polling = false
    }

    private let state = Mutex(State())
    private let store: any TaskStore
    private let interval: Duration
    private let logger: Logger

    init(store: any TaskStore, interval: Duration, logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    /// The statuses of task `id` as they are read (each read, changed or not); `stop` ends the watch.
    func watch(_ id: UUID) -> (updates: AsyncStream<TaskStatusRecord>, stop: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<TaskStatusRecord>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let (token, startPolling) = state.withLock { s -> (Int, Bool) in
            s.nextID += 1
            s.watchers[id, default: [:]][s.nextID] = continuation
            defer { s.polling = true }
            return (s.nextID, !s.polling)
        }
        if startPolling { Task { await self.poll() } }
        let stop: @Sendable () -> Void = { [weak self] in
            let ended = self?.state.withLock { s -> AsyncStream<TaskStatusRecord>.Continuation? in
                let c = s.watchers[id]?.removeValue(forKey: token)
                if s.watchers[id]?.isEmpty == true { s.watchers[id] = nil }
                return c
            }
            ended?.finish()
        }
        continuation.onTermination = { _ in stop() }
        return (stream, stop)
    }

    /// Number of open watches (streams).
    var count: Int { state.withLock { $0.watchers.values.reduce(0) { $0 + $1.count } } }

    /// Reads every watched task once per interval while any is watched.
    private func poll() async {
        while true {
            try? await Task.sleep(for: interval)
            let ids: [UUID]? = state.withLock { s in
                if s.watchers.isEmpty {
                    s.polling = false
                    return nil
                }
                return Array(s.watchers.keys)
            }
            guard let ids else { return }
            let records: [TaskStatusRecord]
            do {
                records = try await store.taskStatuses(ids: ids)
            } catch {
                logger.warning("reading watched tasks failed; trying again", metadata: ["error": "\(error)"])
                continue
            }
            for record in records {
                let targets = state.withLock { Array(($0.watchers[record.id] ?? [:]).values) }
                for continuation in targets { continuation.yield(record) }
            }
        }
    }
}
