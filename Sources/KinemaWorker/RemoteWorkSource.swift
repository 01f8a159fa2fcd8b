import AsyncHTTPClient
import Foundation
import KinemaAPIModels
import KinemaCore
import KinemaStore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Works through a Kinema API node over HTTP with a worker token (`docs/worker-protocol.md`), for workers
/// that cannot reach the database. The server applies the same lease fencing as for local workers.
///
/// The `imageKey`/`endImageKey` of a task claimed here are the server-relative download paths of its inputs.
public struct RemoteWorkSource: WorkSource {
    /// Where and how to reach the server.
    public struct Configuration: Sendable {
        /// Base URL of an API node, e.g. `http://10.0.0.5:8080` (no trailing slash needed).
        public var serverURL: String
        /// The worker token (`kwt_…`).
        public var token: String
        /// How long one claim waits on the server for work (long-poll), 0…30 seconds.
        public var claimWaitSeconds: Int = 20
        /// Timeout of the small JSON calls.
        public var requestTimeout: Duration = .seconds(30)
        /// Timeout of a result upload.
        public var uploadTimeout: Duration = .seconds(600)
        /// Ask for presigned URLs and PUT results straight into object storage (`--direct-upload`), where the node's
        /// blob store makes them; otherwise, or when the direct PUT fails, results go through the node.
        public var directUpload = false

        /// Creates a configuration with the defaults above.
        public init(serverURL: String, token: String) {
            var url = serverURL
            while url.hasSuffix("/") { url.removeLast() }
            self.serverURL = url
            self.token = token
        }
    }

    let configuration: Configuration
    let client: HTTPClient
    /// The presigned result URL of each lease claimed with `directUpload`, taken when its result is uploaded.
    let uploadURLs = UploadURLs()

    /// Presigned result URLs by lease, shared by the copies of this source the worker loops hold.
    final class UploadURLs: Sendable {
        private let urls = Mutex<[UUID: String]>([:])

        func put(_ url: String, for lease: UUID) { urls.withLock { $0[lease] = url } }
        func take(_ lease: UUID) -> String? { urls.withLock { $0.removeValue(forKey: lease) } }
    }

    /// A source that talks to `configuration.serverURL` through `client`.
    public init(configuration: Configuration, client: HTTPClient = .shared) {
        self.configuration = configuration
        self.client = client
    }

    /// Runs `body` with a source on its own HTTP client, sized for `concurrency` worker loops and shut down afterwards.
    ///
    /// Each loop holds one request at a time (a long-poll claim, or a heartbeat while it renders), so the pool
    /// allows that many connections plus spares; the shared client's default of 8 would queue heartbeats of a
    /// larger pool behind idle long-polls.
    public static func withSource<T: Sendable>(
        configuration: Configuration, concurrency: Int, _ body: (RemoteWorkSource) async throws -> T
    ) async throws -> T {
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, concurrency + 2))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        let result: Result<T, any Error>
        do {
            result = .success(try await body(RemoteWorkSource(configuration: configuration, client: client)))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        return try result.get()
    }

    public func claim(workerID: String, engine: String, leaseDuration: TimeInterval) async throws -> ClaimedTask? {
        let body = WorkerClaimRequest(
            workerID: workerID, engine: engine, leaseSeconds: Int(leaseDuration.rounded()), waitSeconds: configuration.claimWaitSeconds,
            directUpload: configuration.directUpload ? true : nil
        )
        let timeout = configuration.requestTimeout + .seconds(configuration.claimWaitSeconds)
        // A long-poll must not hold up shutdown: the node stops waiting when the connection closes, and a claim it
        // made just before is given back by the pool's release of what it still holds as it stops.
        let answer: (status: HTTPResponseStatus, body: ByteBuffer)
        do {
            answer = try await cancelWhenGracefulShutdown {
                try await send(.POST, WorkerProtocolPaths.claim, json: body, timeout: timeout)
            }
        } catch  where Task.isShuttingDownGracefully {
            return nil
        }
        switch answer.status {
        case .noContent:
            return nil
        case .ok:
            let response = try decode(WorkerClaimResponse.self, answer.body)
            let claimed = try Self.claimedTask(response, engine: engine)
            if let upload = response.resultUpload { uploadURLs.put(upload.url, for: claimed.lease.leaseID) }
            return claimed
        default:
            throw Self.unexpected(answer, doing: "claim a task")
        }
    }

    /// The domain view of a claim answer.
    static func claimedTask(_ response: WorkerClaimResponse, engine: String) throws -> ClaimedTask {
        guard let taskID = UUID(uuidString: response.task.taskID), let leaseID = UUID(uuidString: response.lease.leaseID) else {
            throw WorkerError(.invalidResponse, "the claim answer's task_id or lease_id is not a UUID")
        }
        let now = Date()
        let task = TaskRecord(
            id: taskID, tenant: "", status: .processing, request: response.task.request.generationRequest,
            imageKey: response.inputs.image.url, endImageKey: response.inputs.endImage?.url, resultKey: nil, reason: "",
            progressPercent: 0, etaSeconds: response.task.etaSeconds, attempt: response.lease.attempt,
            maxAttempts: response.task.maxAttempts, engine: engine,
            createdAt: Date(timeIntervalSince1970: TimeInterval(response.task.createdAtMs) / 1000), startedAt: now,
            finishedAt: nil, updatedAt: now, leaseOwner: response.lease.workerID,
            leaseExpiresAt: now.addingTimeInterval(TimeInterval(response.leaseSeconds))
        )
        return ClaimedTask(
            task: task, lease: TaskLease(taskID: taskID, leaseID: leaseID, workerID: response.lease.workerID, attempt: response.lease.attempt))
    }

    public func inputs(of claimed: ClaimedTask) async throws -> (image: Data, endImage: Data?) {
        let image = try await download(claimed.task.imageKey)
        var endImage: Data?
        if let path = claimed.task.endImageKey { endImage = try await download(path) }
        return (image, endImage)
    }

    private func download(_ path: String) async throws -> Data {
        let answer = try await send(.GET, path, timeout: configuration.requestTimeout, maxBytes: 64 * 1024 * 1024)
        guard answer.status == .ok else { throw Self.unexpected(answer, doing: "download an input") }
        return Data(answer.body.readableBytesView)
    }

    public func heartbeat(_ lease: TaskLease, progress: RenderProgress, leaseDuration: TimeInterval) async throws -> Bool {
        let body = WorkerHeartbeatRequest(
            leaseID: Self.text(lease.leaseID), progressPercent: progress.percent, etaSeconds: progress.etaSeconds,
            leaseSeconds: Int(leaseDuration.rounded())
        )
        return try await fenced(WorkerProtocolPaths.heartbeat(taskID: lease.taskID), body: body, doing: "heartbeat")
    }

    public func complete(_ lease: TaskLease, resultFile: URL) async throws -> Bool {
        let size: Int64
        do {
            size = (try FileManager.default.attributesOfItem(atPath: resultFile.path)[.size] as? NSNumber)?.int64Value ?? 0
        } catch {
            throw WorkerError(.io, "cannot read the result file \(resultFile.path): \(error.localizedDescription)")
        }
        if let direct = uploadURLs.take(lease.leaseID) {
            switch try await uploadDirectly(lease, resultFile: resultFile, size: size, to: direct) {
            case .some(let completed): return completed
            case .none: break // the direct PUT failed: through the node, below
            }
        }
        // A node whose blob store is down answers 503: the upload is sent again (1 s, doubling to 30 s, for up to
        // 10 minutes) while the pool heartbeats the lease.
        let giveUp = ContinuousClock.now + .seconds(600)
        var delay = Duration.seconds(1)
        var answer: (status: HTTPResponseStatus, body: ByteBuffer)
        while true {
            var request = HTTPClientRequest(url: url(WorkerProtocolPaths.result(taskID: lease.taskID) + "?lease_id=" + Self.text(lease.leaseID)))
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(configuration.token)")
            request.headers.add(name: "Content-Type", value: "video/mp4")
            request.body = .stream(FileChunks(url: resultFile), length: .known(size))
            let response = try await client.execute(request, timeout: Self.timeAmount(configuration.uploadTimeout))
            answer = (status: response.status, body: try await response.body.collect(upTo: 1024 * 1024))
            guard answer.status == .serviceUnavailable, ContinuousClock.now + delay < giveUp else { break }
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(30))
        }
        switch answer.status {
        case .ok: return true
        case .conflict: return false
        case .payloadTooLarge, .badRequest:
            // The server will never take this file: no other attempt would do better.
            throw EngineError("the server refused the result: \(Self.serverMessage(answer.body))", retryable: false)
        default:
            throw Self.unexpected(answer, doing: "upload the result")
        }
    }

    /// PUTs the result to its presigned URL, then reports it: whether the task completed (`false`: lease lost), or
    /// `nil` when the object store did not take the file (the caller uploads through the node instead).
    func uploadDirectly(_ lease: TaskLease, resultFile: URL, size: Int64, to target: String) async throws -> Bool? {
        var put = HTTPClientRequest(url: target)
        put.method = .PUT
        put.headers.add(name: "Content-Type", value: "video/mp4")
        put.body = .stream(FileChunks(url: resultFile), length: .known(size))
        do {
            let response = try await client.execute(put, timeout: Self.timeAmount(configuration.uploadTimeout))
            let body = try await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(Int(response.status.code)) else {
                Logger(label: "kinema.worker").warning(
                    "direct upload refused; uploading through the node",
                    metadata: ["task": "\(lease.taskID)", "status": "\(response.status.code)", "answer": "\(String(buffer: body).prefix(200))"])
                return nil
            }
        } catch {
            try Task.checkCancellation()
            Logger(label: "kinema.worker").warning(
                "direct upload failed; uploading through the node", metadata: ["task": "\(lease.taskID)", "error": "\(error)"])
            return nil
        }
        let report = WorkerUploadedRequest(leaseID: Self.text(lease.leaseID), size: size)
        let answer = try await send(.POST, WorkerProtocolPaths.uploaded(taskID: lease.taskID), json: report, timeout: configuration.requestTimeout)
        switch answer.status {
        case .ok: return true
        case .conflict: return false
        case .badRequest: return nil // the node found the object wrong and deleted it: send the file through the node
        default: throw Self.unexpected(answer, doing: "report the uploaded result")
        }
    }

    public func fail(_ lease: TaskLease, reason: String, retryable: Bool) async throws -> Bool {
        let body = WorkerFailRequest(leaseID: Self.text(lease.leaseID), reason: String(reason.unicodeScalars.prefix(1000)), retryable: retryable)
        return try await fenced(WorkerProtocolPaths.fail(taskID: lease.taskID), body: body, doing: "report a failure")
    }

    public func release(_ lease: TaskLease) async throws -> Bool {
        try await fenced(
            WorkerProtocolPaths.release(taskID: lease.taskID), body: WorkerReleaseRequest(leaseID: Self.text(lease.leaseID)), doing: "release a task")
    }

    public func requeueOrphans(ofWorker workerID: String) async throws -> RescueReport {
        try await orphans(WorkerOrphansRequest(workerID: workerID), doing: "requeue orphaned tasks")
    }

    public func releaseLeases(ofWorker workerID: String) async throws -> RescueReport {
        try await orphans(WorkerOrphansRequest(workerID: workerID, leaving: true), doing: "release the tasks it still holds")
    }

    private func orphans(_ body: WorkerOrphansRequest, doing: String) async throws -> RescueReport {
        let answer = try await send(.POST, WorkerProtocolPaths.orphans, json: body, timeout: configuration.requestTimeout)
        guard answer.status == .ok else { throw Self.unexpected(answer, doing: doing) }
        let body = try decode(WorkerOrphansResponse.self, answer.body)
        return RescueReport(requeued: body.requeued.compactMap(UUID.init(uuidString:)), failed: body.failed.compactMap(UUID.init(uuidString:)))
    }

    /// Upstream engines run inside API nodes and store workers, never behind the remote protocol.
    public func recordUpstream(_ lease: TaskLease, handle: UpstreamHandle?) async throws -> Bool {
        throw WorkerError(.unexpectedResponse, "upstream engines do not run in remote workers; enable them with kinema serve --engine")
    }

    // MARK: HTTP

    /// A fenced JSON call: `true` on 200, `false` on 409 (lease lost).
    private func fenced(_ path: String, body: some Encodable, doing: String) async throws -> Bool {
        let answer = try await send(.POST, path, json: body, timeout: configuration.requestTimeout)
        switch answer.status {
        case .ok: return true
        case .conflict: return false
        default: throw Self.unexpected(answer, doing: doing)
        }
    }

    private func send(
        _ method: HTTPMethod, _ path: String, json: (some Encodable)? = Optional<Int>.none, timeout: Duration, maxBytes: Int = 1024 * 1024
    ) async throws -> (status: HTTPResponseStatus, body: ByteBuffer) {
        var request = HTTPClientRequest(url: url(path))
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.token)")
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try encoder.encode(json)))
        }
        let response = try await client.execute(request, timeout: Self.timeAmount(timeout))
        let body = try await response.body.collect(upTo: maxBytes)
        if response.status == .unauthorized || response.status == .forbidden {
            throw WorkerError(.unauthorized, "the server refused the worker token: \(Self.serverMessage(body))")
        }
        return (response.status, body)
    }

    private func url(_ path: String) -> String { configuration.serverURL + path }

    private func decode<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw WorkerError(.invalidResponse, "the server's answer is not a valid \(T.self): \(error)")
        }
    }

    private static func unexpected(_ answer: (status: HTTPResponseStatus, body: ByteBuffer), doing: String) -> WorkerError {
        WorkerError(.unexpectedResponse, "could not \(doing): HTTP \(answer.status.code): \(serverMessage(answer.body))")
    }

    /// `REASON: message` from a contract error body, or the raw text.
    private static func serverMessage(_ body: ByteBuffer) -> String {
        if let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(body.readableBytesView)) {
            return "\(error.reason): \(error.message)"
        }
        return String(buffer: body).prefix(200).description
    }

    private static func text(_ id: UUID) -> String { id.uuidString.lowercased() }

    private static func timeAmount(_ d: Duration) -> TimeAmount {
        .nanoseconds(d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
    }
}

/// A file's bytes in 1 MiB chunks, read as the upload consumes them (results may be large).
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let url: URL

    struct AsyncIterator: AsyncIteratorProtocol {
        let url: URL
        var handle: FileHandle?
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            if finished { return nil }
            if handle == nil {
                do {
                    handle = try FileHandle(forReadingFrom: url)
                } catch {
                    throw WorkerError(.io, "cannot open the result file \(url.path): \(error.localizedDescription)")
                }
            }
            guard let data = try handle?.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle?.close()
                finished = true
                return nil
            }
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(url: url) }
}
