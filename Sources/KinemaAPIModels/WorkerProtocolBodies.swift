import Foundation
import KinemaCore

// Bodies of the remote worker protocol (`/internal/v1/worker/…`, docs/worker-protocol.md), shared by the
// server's controller and the Swift client. JSON keys are snake_case like the public contract.

/// Paths of the remote worker protocol, shared by server and client.
public enum WorkerProtocolPaths {
    /// Common prefix of every worker route.
    public static let base = "/internal/v1/worker"
    /// `POST`: claim the oldest queued task (long-poll).
    public static let claim = WorkerRoute.claim.template
    /// `POST`: requeue what a previous run of a worker left running.
    public static let orphans = WorkerRoute.orphans.template

    /// `GET`: an input image of a leased task (`name` is `image` or `end_image`).
    public static func input(taskID: UUID, name: String) -> String { WorkerRoute.input.path(taskID: taskID, name: name) }
    /// `POST`: extend the lease and report progress.
    public static func heartbeat(taskID: UUID) -> String { WorkerRoute.heartbeat.path(taskID: taskID) }
    /// `PUT`: upload the finished MP4 and complete the task.
    public static func result(taskID: UUID) -> String { WorkerRoute.result.path(taskID: taskID) }
    /// `POST`: the result was PUT to the claim's presigned URL; check it and complete the task.
    public static func uploaded(taskID: UUID) -> String { WorkerRoute.uploaded.path(taskID: taskID) }
    /// `POST`: end the attempt with an error.
    public static func fail(taskID: UUID) -> String { WorkerRoute.fail.path(taskID: taskID) }
    /// `POST`: give the task back without counting the attempt.
    public static func release(taskID: UUID) -> String { WorkerRoute.release.path(taskID: taskID) }
}

/// The remote worker protocol's routes, written once: the server registers these, the client builds its URLs from
/// them, and docs/worker-protocol.md lists them (a test compares).
public enum WorkerRoute: String, CaseIterable, Sendable {
    case claim, orphans, input, heartbeat, result, uploaded, fail, release

    /// The HTTP method, upper case.
    public var method: String {
        switch self {
        case .input: "GET"
        case .result: "PUT"
        case .claim, .orphans, .heartbeat, .uploaded, .fail, .release: "POST"
        }
    }

    /// The path with `{task_id}` and `{name}` placeholders, as the docs write it.
    public var template: String {
        let task = WorkerProtocolPaths.base + "/tasks/{task_id}"
        return switch self {
        case .claim: WorkerProtocolPaths.base + "/claim"
        case .orphans: WorkerProtocolPaths.base + "/orphans"
        case .input: task + "/inputs/{name}"
        case .heartbeat, .result, .uploaded, .fail, .release: task + "/" + rawValue
        }
    }

    /// The path for one task (and input name).
    public func path(taskID: UUID? = nil, name: String? = nil) -> String {
        var path = template
        if let taskID { path = path.replacingOccurrences(of: "{task_id}", with: taskID.uuidString.lowercased()) }
        if let name { path = path.replacingOccurrences(of: "{name}", with: name) }
        return path
    }
}

/// `POST …/claim` request.
public struct WorkerClaimRequest: Codable, Sendable, Equatable {
    /// The worker's own id, stable across restarts of the same worker (1–128 printable ASCII characters, no spaces).
    public var workerID: String
    /// The one engine this worker runs (shorthand for `engines: [engine]`); with neither, `motion`.
    public var engine: String?
    /// The engines this worker runs: only tasks routed to one of them are handed out.
    public var engines: [String]?
    /// Request features the worker's model honours (`end_image`, `multi_prompt`, `sound`); a task needing another
    /// one is left for a worker that has it. Absent: all of them.
    public var capabilities: [String]?
    /// The model the worker runs, for the node's log (e.g. `Wan2.2-TI2V-5B`).
    public var model: String?
    /// Lease length in seconds (default: the server's lease length).
    public var leaseSeconds: Int?
    /// How long to wait for a task when none is queued, 0…30 (default 0).
    public var waitSeconds: Int?
    /// Asks for a presigned URL to PUT the result straight into object storage (`result_upload` in the answer; only
    /// where the node's blob store makes them).
    public var directUpload: Bool?

    /// Creates a claim request.
    public init(
        workerID: String, engine: String? = nil, engines: [String]? = nil, capabilities: [String]? = nil, model: String? = nil,
        leaseSeconds: Int? = nil, waitSeconds: Int? = nil, directUpload: Bool? = nil
    ) {
        self.directUpload = directUpload
        self.workerID = workerID
        self.engine = engine
        self.engines = engines
        self.capabilities = capabilities
        self.model = model
        self.leaseSeconds = leaseSeconds
        self.waitSeconds = waitSeconds
    }

    enum CodingKeys: String, CodingKey {
        case workerID = "worker_id"
        case engine, engines, capabilities, model
        case leaseSeconds = "lease_seconds"
        case waitSeconds = "wait_seconds"
        case directUpload = "direct_upload"
    }
}

/// A lease as the worker protocol shows it.
public struct WorkerLeaseBody: Codable, Sendable, Equatable {
    /// The leased task.
    public var taskID: String
    /// Unique per claim; every later call for this run names it.
    public var leaseID: String
    /// The lease holder as the server records it (`remote/<token id>/<worker_id>`).
    public var workerID: String
    /// The attempt this claim runs (1-based).
    public var attempt: Int

    /// Creates a lease body.
    public init(taskID: String, leaseID: String, workerID: String, attempt: Int) {
        self.taskID = taskID
        self.leaseID = leaseID
        self.workerID = workerID
        self.attempt = attempt
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case leaseID = "lease_id"
        case workerID = "worker_id"
        case attempt
    }
}

/// The validated generation request as a worker receives it.
public struct WorkerRequestBody: Codable, Sendable, Equatable {
    /// One shot of a multi-shot request.
    public struct Shot: Codable, Sendable, Equatable {
        /// The shot's prompt.
        public var prompt: String
        /// The shot's length in seconds.
        public var duration: Int

        /// Creates a shot.
        public init(prompt: String, duration: Int) {
            self.prompt = prompt
            self.duration = duration
        }
    }

    /// Main prompt; `null` only with `multi_prompt`.
    public var prompt: String?
    /// Moves and effects to avoid, or `null`.
    public var negativePrompt: String?
    /// Total length in seconds.
    public var duration: Int
    /// Prompt adherence 0…1.
    public var cfgScale: Double
    /// Whether the MP4 must carry an audio track.
    public var sound: Bool
    /// Shots in order, or `null`.
    public var multiPrompt: [Shot]?
    /// The seed to use (0…2³²−1).
    public var seed: UInt32
    /// Whether an end image is among the inputs.
    public var hasEndImage: Bool
    /// Frames per second of the output.
    public var fps: Int
    /// Exact number of frames the output must have.
    public var frameCount: Int

    /// The wire form of a validated request.
    public init(_ request: GenerationRequest) {
        prompt = request.prompt
        negativePrompt = request.negativePrompt
        duration = request.duration
        cfgScale = request.cfgScale
        sound = request.sound
        multiPrompt = request.shots?.map { Shot(prompt: $0.prompt, duration: $0.duration) }
        seed = request.seed
        hasEndImage = request.hasEndImage
        fps = GenerationRequest.framesPerSecond
        frameCount = request.frameCount
    }

    /// The domain request this body describes (the server validated it at submit time).
    public var generationRequest: GenerationRequest {
        GenerationRequest(
            prompt: prompt, negativePrompt: negativePrompt, duration: duration, cfgScale: cfgScale, sound: sound,
            shots: multiPrompt?.map { KinemaCore.Shot(prompt: $0.prompt, duration: $0.duration) }, seed: seed,
            hasEndImage: hasEndImage
        )
    }

    enum CodingKeys: String, CodingKey {
        case prompt
        case negativePrompt = "negative_prompt"
        case duration
        case cfgScale = "cfg_scale"
        case sound
        case multiPrompt = "multi_prompt"
        case seed
        case hasEndImage = "has_end_image"
        case fps
        case frameCount = "frame_count"
    }

    public func encode(to encoder: any Encoder) throws {
        // Absent optionals are written as null, so a worker always finds every key.
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prompt, forKey: .prompt)
        try c.encode(negativePrompt, forKey: .negativePrompt)
        try c.encode(duration, forKey: .duration)
        try c.encode(cfgScale, forKey: .cfgScale)
        try c.encode(sound, forKey: .sound)
        try c.encode(multiPrompt, forKey: .multiPrompt)
        try c.encode(seed, forKey: .seed)
        try c.encode(hasEndImage, forKey: .hasEndImage)
        try c.encode(fps, forKey: .fps)
        try c.encode(frameCount, forKey: .frameCount)
    }
}

/// Where to download one input image of a leased task.
public struct WorkerInputBody: Codable, Sendable, Equatable {
    /// Path (relative to the server's base URL) of the download, lease included.
    public var url: String
    /// `image/png` or `image/jpeg`.
    public var contentType: String

    /// Creates an input reference.
    public init(url: String, contentType: String) {
        self.url = url
        self.contentType = contentType
    }

    enum CodingKeys: String, CodingKey {
        case url
        case contentType = "content_type"
    }
}

/// `POST …/claim` answer (HTTP 200): the task, its lease and its inputs.
public struct WorkerClaimResponse: Codable, Sendable, Equatable {
    /// The claimed task.
    public struct TaskBody: Codable, Sendable, Equatable {
        /// The task id.
        public var taskID: String
        /// What to render.
        public var request: WorkerRequestBody
        /// The attempt this claim runs.
        public var attempt: Int
        /// Attempts allowed before the task fails for good.
        public var maxAttempts: Int
        /// The server's first ETA estimate in seconds.
        public var etaSeconds: Int
        /// Submission time, milliseconds since 1970.
        public var createdAtMs: Int64

        /// Creates a task body.
        public init(taskID: String, request: WorkerRequestBody, attempt: Int, maxAttempts: Int, etaSeconds: Int, createdAtMs: Int64) {
            self.taskID = taskID
            self.request = request
            self.attempt = attempt
            self.maxAttempts = maxAttempts
            self.etaSeconds = etaSeconds
            self.createdAtMs = createdAtMs
        }

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id"
            case request
            case attempt
            case maxAttempts = "max_attempts"
            case etaSeconds = "eta_seconds"
            case createdAtMs = "created_at_ms"
        }
    }

    /// The input images.
    public struct Inputs: Codable, Sendable, Equatable {
        /// The first frame.
        public var image: WorkerInputBody
        /// The last frame, or `null`.
        public var endImage: WorkerInputBody?

        /// Creates the inputs.
        public init(image: WorkerInputBody, endImage: WorkerInputBody?) {
            self.image = image
            self.endImage = endImage
        }

        enum CodingKeys: String, CodingKey {
            case image
            case endImage = "end_image"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(image, forKey: .image)
            try c.encode(endImage, forKey: .endImage)
        }
    }

    /// The task.
    public var task: TaskBody
    /// The lease to name in every later call.
    public var lease: WorkerLeaseBody
    /// Seconds the lease lasts without a heartbeat.
    public var leaseSeconds: Int
    /// Where to download the inputs.
    public var inputs: Inputs
    /// Where to PUT the result directly (object storage), when the claim asked and the node can; absent otherwise.
    public var resultUpload: WorkerDirectUploadBody?

    /// Creates a claim answer.
    public init(task: TaskBody, lease: WorkerLeaseBody, leaseSeconds: Int, inputs: Inputs, resultUpload: WorkerDirectUploadBody? = nil) {
        self.task = task
        self.lease = lease
        self.leaseSeconds = leaseSeconds
        self.inputs = inputs
        self.resultUpload = resultUpload
    }

    enum CodingKeys: String, CodingKey {
        case task
        case lease
        case leaseSeconds = "lease_seconds"
        case inputs
        case resultUpload = "result_upload"
    }
}

/// A presigned URL for the result: PUT the MP4 there (no Authorization header; `Content-Type: video/mp4`), then
/// report it with `POST …/tasks/{task_id}/uploaded`.
public struct WorkerDirectUploadBody: Codable, Sendable, Equatable {
    /// The absolute URL to PUT to.
    public var url: String
    /// Seconds from the claim the URL stays valid.
    public var expiresSeconds: Int

    public init(url: String, expiresSeconds: Int) {
        self.url = url
        self.expiresSeconds = expiresSeconds
    }

    enum CodingKeys: String, CodingKey {
        case url
        case expiresSeconds = "expires_seconds"
    }
}

/// `POST …/tasks/{task_id}/uploaded` request: the result is in object storage at the claim's `result_upload` URL.
public struct WorkerUploadedRequest: Codable, Sendable, Equatable {
    /// The lease from the claim.
    public var leaseID: String
    /// The size of the uploaded file in bytes: the node checks the stored object has exactly this size.
    public var size: Int64

    public init(leaseID: String, size: Int64) {
        self.leaseID = leaseID
        self.size = size
    }

    enum CodingKeys: String, CodingKey {
        case leaseID = "lease_id"
        case size
    }
}

/// `POST …/tasks/{task_id}/heartbeat` request.
public struct WorkerHeartbeatRequest: Codable, Sendable, Equatable {
    /// The lease from the claim.
    public var leaseID: String
    /// Progress of the render, 0…100.
    public var progressPercent: Int
    /// Estimated seconds left (≥ 0).
    public var etaSeconds: Int
    /// New lease length from now, 2…3600 seconds (default: the server's lease length).
    public var leaseSeconds: Int?

    /// Creates a heartbeat.
    public init(leaseID: String, progressPercent: Int, etaSeconds: Int, leaseSeconds: Int? = nil) {
        self.leaseID = leaseID
        self.progressPercent = progressPercent
        self.etaSeconds = etaSeconds
        self.leaseSeconds = leaseSeconds
    }

    enum CodingKeys: String, CodingKey {
        case leaseID = "lease_id"
        case progressPercent = "progress_percent"
        case etaSeconds = "eta_seconds"
        case leaseSeconds = "lease_seconds"
    }
}

/// `POST …/tasks/{task_id}/fail` request.
public struct WorkerFailRequest: Codable, Sendable, Equatable {
    /// The lease from the claim.
    public var leaseID: String
    /// What went wrong, shown to the caller as the task's `reason` when the task fails for good (1–1000 characters).
    public var reason: String
    /// Whether another attempt could succeed (the task is requeued while attempts remain).
    public var retryable: Bool

    /// Creates a failure report.
    public init(leaseID: String, reason: String, retryable: Bool) {
        self.leaseID = leaseID
        self.reason = reason
        self.retryable = retryable
    }

    enum CodingKeys: String, CodingKey {
        case leaseID = "lease_id"
        case reason
        case retryable
    }
}

/// `POST …/tasks/{task_id}/release` request.
public struct WorkerReleaseRequest: Codable, Sendable, Equatable {
    /// The lease from the claim.
    public var leaseID: String

    /// Creates a release.
    public init(leaseID: String) {
        self.leaseID = leaseID
    }

    enum CodingKeys: String, CodingKey {
        case leaseID = "lease_id"
    }
}

/// `POST …/orphans` request.
public struct WorkerOrphansRequest: Codable, Sendable, Equatable {
    /// The worker id (as sent to `claim`) whose previous run's tasks go back to the queue.
    public var workerID: String
    /// `true` when the worker is leaving (shutdown, every loop ended): its tasks go back without counting an attempt.
    public var leaving: Bool?

    /// Creates an orphan sweep request.
    public init(workerID: String, leaving: Bool? = nil) {
        self.workerID = workerID
        self.leaving = leaving
    }

    enum CodingKeys: String, CodingKey {
        case workerID = "worker_id"
        case leaving
    }
}

/// `POST …/orphans` answer.
public struct WorkerOrphansResponse: Codable, Sendable, Equatable {
    /// Tasks put back to the queue.
    public var requeued: [String]
    /// Tasks that had used all their attempts and failed.
    public var failed: [String]

    /// Creates the answer.
    public init(requeued: [String], failed: [String]) {
        self.requeued = requeued
        self.failed = failed
    }
}

/// Answer of the fenced task calls (heartbeat, result, fail, release): the task's status afterwards.
public struct WorkerTaskStateResponse: Codable, Sendable, Equatable {
    /// The task.
    public var taskID: String
    /// The task's contract status after the call (`TASK_STATUS_…`).
    public var status: String
    /// Seconds the lease now lasts (heartbeat only; 0 otherwise).
    public var leaseSeconds: Int

    /// Creates the answer.
    public init(taskID: String, status: String, leaseSeconds: Int) {
        self.taskID = taskID
        self.status = status
        self.leaseSeconds = leaseSeconds
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
        case status
        case leaseSeconds = "lease_seconds"
    }
}
