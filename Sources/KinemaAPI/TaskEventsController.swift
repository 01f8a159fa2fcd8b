import Foundation
import HTTPTypes
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import Logging
import NIOCore
import Synchronization

/// `GET /v3/async/task-events?task_id=` (ext): a `text/event-stream` of the task. The first event is sent at once,
/// then one on every change of `status` or `progress_percent`; each is `event: task` with the Task Result body on one
/// `data:` line; the stream ends after the terminal event; a comment line every `keepAlive` keeps proxies from
/// closing it. Streams are capped per API key and per node (429 over either), so they never take every connection.
struct TaskEventsController: Sendable {
    let store: any TaskStore
    let auth: Authenticator
    let links: ResultLinks
    let watch: TaskWatch
    let limits: Limits
    let open: OpenStreams

    struct Limits: Sendable {
        /// Comment line interval.
        var keepAlive: Duration
        /// Most streams one API key (tenant) may hold open on a node.
        var perKey: Int
        /// Most streams a node holds open (a share of its connections).
        var total: Int
    }

    func events(_ request: Request, context: some RequestContext) async throws -> Response {
        let caller = try await auth.caller(for: request)
        let tenant = caller.tenant
        let raw: String? = request.uri.queryParameters.get("task_id").map { String($0) }
        let id = try TaskResultController.taskID(raw, where: "as a query parameter: /v3/async/task-events?task_id=<id>")
        guard let stored = try await TaskResultController.storeCall(context, { try await store.taskStatus(id: id, tenant: tenant) }) else {
            throw APIError.taskNotFound
        }
        // The eta a poll would show (a queued task's place in its queue), not the submit-time estimate.
        let first = await TaskResultController.withQueueETA(stored, store: store)
        guard let slot = open.take(key: caller.id, perKey: limits.perKey, total: limits.total) else {
            throw APIError(
                .tooManyRequests, "RATE_LIMIT_EXCEEDED",
                "Too many event streams are open for this API key (at most \(limits.perKey)) or on this server; close one, or poll task-result.",
                retryAfter: 5)
        }
        let links = self.links
        let taskStore = self.store
        let watch = self.watch
        let keepAlive = limits.keepAlive
        let body = ResponseBody { writer in
            defer { slot.release() }
            try await writer.write(Self.event(first, links: links))
            if first.status.isTerminal {
                try await writer.finish(nil)
                return
            }
            var last = (first.status, first.progressPercent)
            let (updates, stop) = watch.watch(id)
            defer { stop() }
            // Updates and keep-alive ticks in one sequence, so one loop writes both.
            let ticks = AsyncStream<TaskStatusRecord?> { continuation in
                let feeder = Task {
                    for await update in updates { continuation.yield(update) }
                    continuation.finish()
                }
                let beat = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: keepAlive)
                        continuation.yield(nil)
                    }
                }
                continuation.onTermination = { _ in
                    feeder.cancel()
                    beat.cancel()
                }
            }
            for await next in ticks {
                guard let task = next else {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    continue
                }
                guard (task.status, task.progressPercent) != last else { continue }
                last = (task.status, task.progressPercent)
                let shown = await TaskResultController.withQueueETA(task, store: taskStore)
                try await writer.write(Self.event(shown, links: links))
                if task.status.isTerminal { break }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }

    /// `event: task` with the Task Result body (a fresh signed URL once done) on one `data:` line.
    static func event(_ task: TaskStatusRecord, links: ResultLinks) -> ByteBuffer {
        var buffer = ByteBuffer(string: "event: task\ndata: ")
        buffer.writeBytes(TaskResultBody(task, links: links, now: Date()).jsonBytes())
        buffer.writeString("\n\n")
        return buffer
    }
}

/// How many event streams are open, per API key and in all.
final class OpenStreams: Sendable {
    private let counts = Mutex<(total: Int, byKey: [String: Int])>((0, [:]))

    /// A slot for one more stream of API key `key` (its credential id), or `nil` at either cap.
    func take(key: String, perKey: Int, total: Int) -> Slot? {
        let taken = counts.withLock { c in
            guard c.total < total, c.byKey[key, default: 0] < perKey else { return false }
            c.total += 1
            c.byKey[key, default: 0] += 1
            return true
        }
        return taken ? Slot(streams: self, key: key) : nil
    }

    fileprivate func release(_ key: String) {
        counts.withLock { c in
            c.total -= 1
            c.byKey[key, default: 1] -= 1
            if c.byKey[key] == 0 { c.byKey[key] = nil }
        }
    }

    /// One open stream's place under the caps: given back by `release()`, or when it is dropped unreleased (a
    /// response whose body never ran, because the client went away before the head was written).
    final class Slot: Sendable {
        private let streams: OpenStreams
        private let key: String
        private let released = Atomic(false)

        fileprivate init(streams: OpenStreams, key: String) {
            self.streams = streams
            self.key = key
        }

        func release() {
            if !released.exchange(true, ordering: .relaxed) { streams.release(key) }
        }

        deinit { release() }
    }
}
