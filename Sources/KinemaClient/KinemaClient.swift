import AsyncHTTPClient
import Foundation
import KinemaAPIModels
import NIOCore
import NIOHTTP1

/// A typed client for Kinema's public API, and for the hosted Kling v3.0 Standard image-to-video API it is compatible
/// with (point `baseURL` at either; the extensions — cancel, the event stream, webhooks, engines, idempotency keys —
/// work where the server has them, and `wait` falls back to polling where it does not).
///
/// ```swift
/// let kinema = KinemaClient(baseURL: "http://127.0.0.1:8080", apiKey: key)
/// let id = try await kinema.submit(SubmitRequestBody(image: try KinemaClient.dataURI(ofImageAt: photo), prompt: "slow push in"))
/// let done = try await kinema.wait(id) { print($0.task.status, $0.task.progressPercent) }
/// try await kinema.download(done, to: URL(fileURLWithPath: "clip.mp4"))
/// ```
public struct KinemaClient: Sendable {
    /// Where the API is, e.g. `http://127.0.0.1:8080` (no trailing slash needed).
    public var baseURL: String
    public var apiKey: String
    /// The cap on one request's answer (not on `wait`, which has its own).
    public var requestTimeout: Duration = .seconds(60)
    let http: HTTPClient

    /// The HTTP client used when none is given: one per process, that reports a refused connection at once (the
    /// shared default keeps retrying until the request's deadline) and gives a connection 10 s to open.
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .follow(max: 5, allowCycles: false))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public init(baseURL: String, apiKey: String, httpClient: HTTPClient = KinemaClient.defaultHTTPClient) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.apiKey = apiKey
        self.http = httpClient
    }

    /// The (method, path) of every operation this client uses: a test checks each against the server's OpenAPI document.
    public static let operations: [(method: String, path: String)] = [
        ("post", Paths.submit), ("get", Paths.taskResult), ("get", Paths.taskEvents), ("post", Paths.taskCancel), ("get", Paths.tasks),
    ]

    enum Paths {
        static let submit = "/v3/async/kling-v3.0-std-i2v"
        static let taskResult = "/v3/async/task-result"
        static let taskEvents = "/v3/async/task-events"
        static let taskCancel = "/v3/async/task-cancel"
        static let tasks = "/v3/async/tasks"
    }

    // MARK: Operations

    /// Submits a task and returns its id. `idempotencyKey` (ext) makes a retry safe: the same key and body within 24 h
    /// answer the same id.
    public func submit(_ request: SubmitRequestBody, idempotencyKey: String? = nil) async throws(KinemaError) -> String {
        let body: Data
        // Sorted keys: the same request always makes the same bytes, which an idempotency key is checked against.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do { body = try encoder.encode(request) } catch { throw KinemaError(.invalidAnswer, reason: "ENCODING_FAILED", message: "\(error)") }
        var headers = [("Content-Type", "application/json")]
        if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
        let answer = try await send(.POST, Paths.submit, headers: headers, body: body)
        return try decode(SubmitResponseBody.self, from: answer).taskID
    }

    /// The task as the Task Result API reports it now.
    public func task(_ id: String) async throws(KinemaError) -> TaskResultBody {
        try decode(TaskResultBody.self, from: try await send(.GET, Paths.taskResult + "?task_id=" + Self.escaped(id)))
    }

    /// (ext) One page of the caller's tasks, newest first; pass the page's `nextCursor` for the next one.
    public func tasks(limit: Int = 20, cursor: String? = nil) async throws(KinemaError) -> TaskListBody {
        var query = "?limit=\(limit)"
        if let cursor { query += "&cursor=" + Self.escaped(cursor) }
        return try decode(TaskListBody.self, from: try await send(.GET, Paths.tasks + query))
    }

    /// (ext) Cancels the task; answers the task afterwards (a finished task unchanged).
    public func cancel(_ id: String) async throws(KinemaError) -> TaskResultBody {
        let body = Data((try? JSONSerialization.data(withJSONObject: ["task_id": id])) ?? Data())
        return try decode(
            TaskResultBody.self, from: try await send(.POST, Paths.taskCancel, headers: [("Content-Type", "application/json")], body: body))
    }

    /// Waits until the task is finished and returns it. `onProgress` gets the task at once and on every change of
    /// status or progress, in order. Uses the event stream (ext) where the server has one, and polls (every second,
    /// slowing to every 5 s) where it has not or when a stream breaks off.
    public func wait(
        _ id: String, timeout: Duration = .seconds(3600), onProgress: @escaping @Sendable (TaskResultBody) -> Void = { _ in }
    ) async throws(KinemaError) -> TaskResultBody {
        let deadline = ContinuousClock.now + timeout
        let seen = ProgressDeduplicator(onProgress)
        if let done = try await followStream(id, deadline: deadline, seen: seen) { return done }
        var interval = Duration.seconds(1)
        while ContinuousClock.now < deadline {
            let now = try await task(id)
            seen.offer(now)
            if now.isFinished { return now }
            try? await Task.sleep(for: min(interval, deadline - ContinuousClock.now))
            interval = min(interval * 1.5, .seconds(5))
        }
        throw KinemaError(.timedOut, reason: "WAIT_TIMED_OUT", message: "task \(id) did not finish within \(timeout)")
    }

    /// Downloads a finished task's video to `file` (written beside it, then renamed into place).
    public func download(_ result: TaskResultBody, to file: URL) async throws(KinemaError) {
        guard result.isSucceeded, let link = result.videos.first?.videoURL else {
            throw KinemaError(
                .taskFailed, reason: "NO_VIDEO",
                message:
                    "task \(result.task.taskID) has no video: \(result.task.status)\(result.task.reason.isEmpty ? "" : " (\(result.task.reason))")")
        }
        let partial = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString).part")
        do {
            var request = HTTPClientRequest(url: link)
            request.method = .GET
            let response = try await http.execute(request, timeout: .seconds(600))
            guard response.status == .ok else {
                let text = try await response.body.collect(upTo: 64 * 1024)
                throw Self.error(status: Int(response.status.code), body: Data(text.readableBytesView))
            }
            FileManager.default.createFile(atPath: partial.path, contents: nil)
            let handle = try FileHandle(forWritingTo: partial)
            defer { try? handle.close() }
            for try await chunk in response.body { try handle.write(contentsOf: Data(chunk.readableBytesView)) }
            try handle.synchronize()
            if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
            try FileManager.default.moveItem(at: partial, to: file)
        } catch {
            try? FileManager.default.removeItem(at: partial)
            if let e = error as? KinemaError { throw e }
            throw KinemaError(.unreachable, reason: "DOWNLOAD_FAILED", message: "could not download \(link): \(error)")
        }
    }

    /// The task's video saved to `file` (a task that has not succeeded is an error); returns the task.
    @discardableResult
    public func download(_ id: String, to file: URL) async throws(KinemaError) -> TaskResultBody {
        let result = try await task(id)
        try await download(result, to: file)
        return result
    }

    /// A `data:` URI of the PNG or JPEG at `path` (the format read from its first bytes), for `image` / `end_image`.
    public static func dataURI(ofImageAt path: URL) throws(KinemaError) -> String {
        let data: Data
        do { data = try Data(contentsOf: path) } catch {
            throw KinemaError(.invalidRequest, reason: "IMAGE_NOT_READABLE", message: "cannot read \(path.path): \(error.localizedDescription)")
        }
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47], jpeg: [UInt8] = [0xFF, 0xD8, 0xFF]
        let type: String
        if data.starts(with: png) {
            type = "image/png"
        } else if data.starts(with: jpeg) {
            type = "image/jpeg"
        } else {
            throw KinemaError(.invalidRequest, reason: "INVALID_IMAGE_FORMAT", message: "\(path.path) is neither a PNG nor a JPEG")
        }
        return "data:\(type);base64," + data.base64EncodedString()
    }
}

extension TaskResultBody {
    /// `TASK_STATUS_SUCCEED` or `TASK_STATUS_FAILED`.
    public var isFinished: Bool { task.status == "TASK_STATUS_SUCCEED" || task.status == "TASK_STATUS_FAILED" }
    public var isSucceeded: Bool { task.status == "TASK_STATUS_SUCCEED" }
}

/// Hands on a task each time its status or progress changed (a stream and a poll may report the same state twice).
final class ProgressDeduplicator: Sendable {
    private let last = LockedValue<(String, Int)?>(nil)
    private let deliver: @Sendable (TaskResultBody) -> Void

    init(_ deliver: @escaping @Sendable (TaskResultBody) -> Void) {
        self.deliver = deliver
    }

    func offer(_ body: TaskResultBody) {
        let key = (body.task.status, body.task.progressPercent)
        let changed = last.update { value in
            if let value, value == key { return false }
            value = key
            return true
        }
        if changed { deliver(body) }
    }
}

/// A value behind a lock, for the client's few shared states.
final class LockedValue<Value: Sendable>: @unchecked Sendable {
    // SAFETY: every access holds `lock`.
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) {
        self.value = value
    }

    func update<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
