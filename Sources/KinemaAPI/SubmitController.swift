import Foundation
import HTTPTypes
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaFetch
import Logging
import Metrics
import KinemaStore
import KinemaWorker
import NIOPosix

/// `POST /v3/async/kling-v3.0-std-i2v`: validate everything that can be validated now, store the inputs, queue the task.
///
/// Failure paths: a key over its rate answers 429 before the body is read; any validation problem answers
/// 400 and stores nothing; a tenant at its active-task cap (checked atomically with the insert) answers 429
/// and, like a store or blob failure (500, or 503 for a store that is down or a full disk), has the inputs it
/// wrote removed again; only a committed task gets a `task_id`.
struct SubmitController: Sendable {
    let store: any TaskStore
    let blobs: any BlobStore
    let auth: Authenticator
    let fetcher: SafeFetcher
    let validator: RequestValidator
    /// Decodes each image once at submit time (the media library's decoder in `kinema serve`).
    let imageVerifier: any ImageVerifier
    let maxBodyBytes: Int
    /// Seconds the whole body may take to arrive (408 after).
    let bodyTimeoutSeconds: Int
    let maxAttempts: Int
    /// Engines a task may be routed to; the first is the default.
    let engines: [String]
    /// Cap on a tenant's queued + running tasks (`nil`: none).
    let maxActiveTasks: Int?
    let signal: WorkSignal
    let draining: DrainState

    func submit(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let caller = try await auth.caller(for: request)
        let tenant = caller.tenant
        if draining.isDraining {
            throw APIError(
                .serviceUnavailable, "SERVICE_UNAVAILABLE",
                "This node is shutting down and accepts no new tasks; retry after the time in Retry-After.", retryAfter: 5)
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            throw APIError.requestBodyTooLarge
        }
        let idempotencyKey = try Self.idempotencyKey(request)
        // Everything the head can tell was checked: a client waiting on `Expect: 100-continue` may send its body now.
        await context.acceptBody()
        // A chunked body over the cap stops the collector (NIOTooManyBytesError), which answers 413 the same way.
        let body = try await BodyDeadline.collect(request.body, upTo: maxBodyBytes, within: bodyTimeoutSeconds)
        // The same key again: the same body answers the task it made (nothing is created), another body is refused.
        let claim = idempotencyKey.map { IdempotencyClaim(key: $0, requestHash: SHA256.hash(body.readableBytesView).hexString) }
        if let claim {
            let existing: IdempotentSubmit?
            do {
                existing = try await store.idempotentSubmit(tenant: tenant, key: claim.key, now: Date())
            } catch {
                context.logger.error("idempotency key lookup failed", metadata: ["error": "\(error)"])
                if let e = error as? StoreError, e.code == .unavailable { throw APIError.unavailable }
                throw APIError.createTaskFailed
            }
            if let existing { return try Self.replay(existing, of: claim) }
        }
        let draft: SubmitDraft
        do {
            draft = try validator.validate(body: Array(body.readableBytesView))
        } catch {
            throw APIError(error)
        }

        let engine = try route(draft.requestedEngine, keyDefault: caller.defaultEngine, logger: context.logger)
        let image = try await resolve(draft.image, field: "image")
        let endImage = try await draft.endImage.asyncMap { try await resolve($0, field: "end_image") }

        var generation = draft.request
        var rng = SystemRandomNumberGenerator()
        generation.seed = draft.requestedSeed ?? UInt32.random(in: 0...UInt32.max, using: &rng)

        let id = UUID()
        let imageKey = BlobKeys.input(taskID: id, ext: image.format == .png ? "png" : "jpg")
        let endImageKey = endImage.map { BlobKeys.input(taskID: id, ext: $0.format == .png ? "png" : "jpg", end: true) }
        do {
            try await blobs.put(image.data, key: imageKey)
            if let endImage, let endImageKey { try await blobs.put(endImage.data, key: endImageKey) }
            var task = NewTask(
                id: id, tenant: tenant, request: generation, imageKey: imageKey, endImageKey: endImageKey,
                engine: engine, maxAttempts: maxAttempts, etaSeconds: Self.estimateSeconds(generation),
                tenantActiveLimit: maxActiveTasks)
            task.idempotency = claim
            try await store.enqueue(task, now: Date())
        } catch {
            try? await blobs.delete(imageKey)
            if let endImageKey { try? await blobs.delete(endImageKey) }
            // A concurrent submit with the same key won: answer as if this one came second.
            if let conflict = error as? IdempotencyConflict, let claim { return try Self.replay(conflict.existing, of: claim) }
            if let e = error as? StoreError, e.code == .quotaExceeded, let maxActiveTasks {
                throw APIError.tooManyActiveTasks(limit: maxActiveTasks)
            }
            context.logger.error("submit failed", metadata: ["error": "\(error)"])
            if let e = error as? StoreError, e.code == .unavailable { throw APIError.unavailable }
            if let e = error as? BlobError, e.code == .noSpace { throw APIError.storageFull }
            if let e = error as? BlobError, e.code == .unavailable {
                throw APIError(
                    .serviceUnavailable, "SERVICE_UNAVAILABLE", "The file store is unreachable; nothing was stored. Retry shortly.", retryAfter: 5)
            }
            throw APIError.createTaskFailed
        }
        signal.notify(engine: engine)
        Counter(label: "kinema_tasks_submitted_total", dimensions: [("engine", engine)]).increment()
        return JSONWire.response(SubmitResponseBody(taskID: id.uuidString.lowercased()))
    }

    /// The `Idempotency-Key` header (ext), if sent: 1–255 printable ASCII characters, else 400 naming it.
    static func idempotencyKey(_ request: Request) throws -> String? {
        let values = request.headers[values: HTTPField.Name("Idempotency-Key")!]
        guard let value = values.first else { return nil }
        guard values.count == 1, (1...255).contains(value.utf8.count), value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw APIError(
                .badRequest, "INVALID_REQUEST_BODY",
                "Idempotency-Key must be sent once, with 1 to 255 printable ASCII characters (a UUID is a good choice).",
                metadata: ["field": "Idempotency-Key"])
        }
        return value
    }

    /// The answer to a submit whose key is taken: the same body gets the same task id, another body a 409.
    static func replay(_ existing: IdempotentSubmit, of claim: IdempotencyClaim) throws -> Response {
        guard existing.requestHash == claim.requestHash else {
            throw APIError(
                .conflict, "IDEMPOTENCY_KEY_REUSED",
                "This Idempotency-Key was used in the last 24 hours with a different request body; send a new key for a new request.",
                metadata: ["field": "Idempotency-Key"])
        }
        return JSONWire.response(SubmitResponseBody(taskID: existing.taskID.uuidString.lowercased()))
    }

    /// The engine a task goes to: the one asked for in `extra.engine` if the operator enabled it, else the key's
    /// default engine (when this node runs it), else the node's default.
    func route(_ requested: String?, keyDefault: String?, logger: Logger) throws -> String {
        guard let requested else {
            guard let keyDefault else { return engines[0] }
            if engines.contains(keyDefault) { return keyDefault }
            // The operator's configuration, not the caller's mistake: the node's default serves it, said in the log.
            logger.warning(
                "the API key's default engine is not enabled on this node; using the node's default",
                metadata: [
                    "key_engine": "\(keyDefault)", "engine": "\(engines[0])",
                ])
            return engines[0]
        }
        guard engines.contains(requested) else {
            throw APIError(
                ValidationError(
                    .invalidRequestBody, field: "extra.engine",
                    "extra.engine is \"\(requested)\", which this server does not run; it runs \(engines.map { "\"\($0)\"" }.joined(separator: ", "))."
                ))
        }
        return requested
    }

    /// A checked image: bytes plus the format read from them.
    struct CheckedImage {
        var data: Data
        var format: ImageFormat
    }

    /// Fetches URL inputs, then checks the bytes: header limits first, then a verifying decode to catch corrupt data.
    func resolve(_ input: ImageInput, field: String) async throws -> CheckedImage {
        let data: Data
        switch input {
        case .bytes(let d):
            data = d
        case .url(let url):
            do {
                data = try await fetcher.fetch(url)
            } catch {
                throw APIError(error.validationError(field: field))
            }
        }
        let header: ImageHeader
        do {
            header = try ImageValidation.validate(data, field: field, limits: validator.limits)
        } catch {
            throw APIError(error)
        }
        let limits = validator.limits
        let verifier = imageVerifier
        // Proves the data decodes (every check of a full decode, without the RGBA pixels); it runs on the
        // thread pool, not an event loop.
        if let problem = try await NIOThreadPool.singleton.runIfActive({ verifier.problem(with: data, format: header.format, limits: limits) }) {
            throw APIError(
                ValidationError(
                    .invalidImageFormat, field: field, "\(field) could not be decoded as \(header.format == .png ? "PNG" : "JPEG"): \(problem)."))
        }
        return CheckedImage(data: data, format: header.format)
    }

    /// A first ETA: the motion engine renders several times faster than real time on two cores.
    static func estimateSeconds(_ request: GenerationRequest) -> Int {
        max(2, request.duration / 2 + 1)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        switch self {
        case .some(let w): try await transform(w)
        case .none: nil
        }
    }
}
