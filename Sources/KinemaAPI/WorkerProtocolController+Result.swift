import Foundation
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import Synchronization
import Logging
import KinemaWorker

extension WorkerProtocolController {
    /// `PUT …/tasks/{task_id}/result?lease_id=`: streams the MP4 to a temp file under the size cap, checks it is
    /// an MP4, then stores it under the lease's own result key and completes the task, fenced by the lease.
    func result(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let taskID = try Self.taskID(context)
        let limit = configuration.maxResultBytes
        let tooLarge = APIError(
            .contentTooLarge, "RESULT_TOO_LARGE", "The uploaded result is larger than this server accepts (\(limit) bytes).",
            metadata: ["limit_bytes": String(limit)])
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge }
        // Fence before reading the body, so a zombie's upload is refused without being stored.
        let lease = try await resolveLease(taskID: taskID, leaseID: request.uri.queryParameters.get("lease_id"), token: token)

        try FileManager.default.createDirectory(at: uploadDirectory, withIntermediateDirectories: true)
        let file = uploadDirectory.appendingPathComponent("upload-\(lease.leaseID.uuidString.lowercased())-\(UUID().uuidString.lowercased()).mp4")
        // Removed on every path; a completed upload has already been moved into the blob store.
        defer { try? FileManager.default.removeItem(at: file) }
        await context.acceptBody()
        let capped = CappedBody(base: request.body, limit: limit)
        let fileIO = self.fileIO
        do {
            // A whole result must arrive within the upload timeout, however steadily it trickles.
            try await BodyDeadline.run(within: configuration.uploadTimeoutSeconds) {
                try await fileIO.writeFile(contents: capped, path: file.path, context: context)
            }
        } catch  where capped.overLimit.isSet {
            // The file layer may wrap the sequence's error, so the flag (not the error type) decides.
            throw tooLarge
        } catch {
            // Likewise a client's mistake while streaming (bad chunk framing, a client gone mid-upload) is recorded
            // by the sequence itself, so it answers 4xx however the file layer reports it.
            if let failure = capped.failure.error, let clientError = APIError(clientError: failure) { throw clientError }
            throw error
        }
        guard Self.looksLikeMP4(file) else {
            throw APIError(
                .badRequest, "INVALID_RESULT", "The uploaded result is not an MP4 file (it must start with an ISO BMFF 'ftyp' box).",
                metadata: ["field": "body"])
        }
        let completed: Bool
        do {
            completed = try await source.complete(lease, resultFile: file)
        } catch let error as StoreError where error.code == .unavailable {
            throw APIError.unavailable
        } catch let error as EngineError {
            // The blob store could not take the file: the worker may retry the upload while its lease holds.
            context.logger.error("storing a remote result failed", metadata: ["task": "\(taskID)", "error": "\(error)"])
            throw APIError.unavailable
        }
        guard completed else { throw Self.leaseLost }
        context.logger.info("remote result stored", metadata: ["task": "\(taskID)", "worker": "\(lease.workerID)"])
        return JSONWire.response(
            WorkerTaskStateResponse(taskID: taskID.uuidString.lowercased(), status: TaskStatus.succeeded.contractName, leaseSeconds: 0))
    }

    /// `POST …/uploaded`: the worker PUT its result to the claim's presigned URL. The node checks the object (the size
    /// the worker reports, under the cap, an ISO BMFF `ftyp` box first) and completes the task with it; a bad object
    /// is deleted and answered 400, and the lease stays held (the worker may upload again, through the node).
    func uploaded(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let token = try await auth.token(for: request)
        let taskID = try Self.taskID(context)
        let body = try await decode(WorkerUploadedRequest.self, from: request, context: context)
        let lease = try await resolveLease(taskID: taskID, leaseID: body.leaseID, token: token)
        let key = BlobKeys.result(taskID: taskID, leaseID: lease.leaseID)
        func refuse(_ message: String) async throws -> Never {
            try? await blobs.delete(key)
            throw APIError(.badRequest, "INVALID_RESULT", message, metadata: ["field": "size"])
        }
        let size: Int64?
        let head: Data
        do {
            size = try await blobs.size(of: key)
            var bytes = Data()
            if let size, size >= 12, let stream = try await blobs.stream(key, range: 0...11) {
                for try await chunk in stream { bytes.append(chunk) }
            }
            head = bytes
        } catch let error as BlobError where error.code == .unavailable {
            throw APIError.unavailable
        }
        guard let size else {
            throw APIError(.badRequest, "INVALID_RESULT", "No result was uploaded to the claim's result_upload URL.", metadata: ["field": "size"])
        }
        guard size == body.size else { try await refuse("The uploaded result has \(size) bytes, not the \(body.size) reported.") }
        guard size <= Int64(configuration.maxResultBytes) else {
            try await refuse("The uploaded result has \(size) bytes; the limit is \(configuration.maxResultBytes) bytes.")
        }
        guard Self.startsWithFileType(head) else {
            try await refuse("The uploaded result is not an MP4 file (it must start with an ISO BMFF 'ftyp' box).")
        }
        let completed: Bool
        do {
            completed = try await source.completeStored(lease, key: key)
        } catch let error as StoreError where error.code == .unavailable {
            throw APIError.unavailable
        }
        guard completed else { throw Self.leaseLost }
        context.logger.info("remote result stored directly", metadata: ["task": "\(taskID)", "worker": "\(lease.workerID)", "bytes": "\(size)"])
        return JSONWire.response(
            WorkerTaskStateResponse(taskID: taskID.uuidString.lowercased(), status: TaskStatus.succeeded.contractName, leaseSeconds: 0))
    }

    /// Whether the first 12 bytes hold an ISO BMFF `ftyp` box header (size ≥ 8, then the type at bytes 4…7).
    static func startsWithFileType(_ head: Data) -> Bool {
        guard head.count >= 12 else { return false }
        let size = head.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        return head[head.startIndex + 4..<head.startIndex + 8].elementsEqual("ftyp".utf8) && size >= 8
    }

    /// Whether the file starts with an ISO BMFF `ftyp` box (size, then the type at bytes 4…7).
    static func looksLikeMP4(_ file: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return false }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 12), head.count >= 12 else { return false }
        let size = head.prefix(4).reduce(0) { $0 << 8 | Int($1) }
        return head[head.startIndex + 4..<head.startIndex + 8].elementsEqual("ftyp".utf8) && size >= 8
    }
}

/// A request body that stops with an error (and sets `overLimit`) once more than `limit` bytes have arrived.
struct CappedBody<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer

    /// Thrown while streaming once the body passed the limit.
    struct LimitExceeded: Error {}

    let base: Base
    let limit: Int
    /// Set when the limit was passed, whatever error the consumer then reports.
    let overLimit = Flag()
    /// The error the underlying body threw, whatever error the consumer then reports.
    let failure = FailureBox()

    /// The first error of the underlying sequence, kept for the code that consumed it.
    final class FailureBox: Sendable {
        private let value = Mutex<(any Error)?>(nil)
        /// The recorded error, if any.
        var error: (any Error)? { value.withLock { $0 } }
        /// Records `error` unless one was recorded already.
        func record(_ error: any Error) { value.withLock { if $0 == nil { $0 = error } } }
    }

    /// A one-way flag shared between the sequence and its iterator.
    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set() { value.store(true, ordering: .relaxed) }
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let limit: Int
        let overLimit: Flag
        let failure: FailureBox
        var count = 0

        mutating func next() async throws -> ByteBuffer? {
            let next: ByteBuffer?
            do {
                next = try await base.next()
            } catch {
                failure.record(error)
                throw error
            }
            guard let chunk = next else { return nil }
            count += chunk.readableBytes
            if count > limit {
                overLimit.set()
                throw LimitExceeded()
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), limit: limit, overLimit: overLimit, failure: failure)
    }
}

extension CappedBody: Sendable where Base: Sendable {}
