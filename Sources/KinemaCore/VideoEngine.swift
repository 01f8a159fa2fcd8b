import Foundation

/// Progress of one render, reported by an engine as it works.
public struct RenderProgress: Sendable, Equatable {
    /// 0…100.
    public var percent: Int
    /// Estimated seconds left.
    public var etaSeconds: Int

    /// The longest ETA Kinema reports (a day): a worker's estimate beyond it says nothing a client can use.
    public static let maxETASeconds = 86_400

    public init(percent: Int, etaSeconds: Int) {
        self.percent = max(0, min(100, percent))
        self.etaSeconds = max(0, min(Self.maxETASeconds, etaSeconds))
    }
}

/// Everything an engine needs for one task.
public struct RenderJob: Sendable {
    /// The validated request.
    public var request: GenerationRequest
    /// The first frame, as the PNG or JPEG bytes the caller sent.
    public var image: Data
    /// The last frame, if the request has one.
    public var endImage: Data?
    /// The task being run (upstream engines send it to providers that take an id of ours).
    public var taskID: UUID?
    /// What the store holds of this task at a hosted provider: set when an earlier attempt already submitted it.
    public var upstream: UpstreamHandle?
    /// Where an upstream engine records its handle before each paid or losable step; `nil` outside a worker.
    public var journal: (any UpstreamJournal)?
    /// The stored images' blob keys (an engine that hands a provider links instead of bytes signs these).
    public var imageKey: String?
    public var endImageKey: String?

    public init(
        request: GenerationRequest, image: Data, endImage: Data? = nil, taskID: UUID? = nil, upstream: UpstreamHandle? = nil,
        journal: (any UpstreamJournal)? = nil, imageKey: String? = nil, endImageKey: String? = nil
    ) {
        self.imageKey = imageKey
        self.endImageKey = endImageKey
        self.request = request
        self.image = image
        self.endImage = endImage
        self.taskID = taskID
        self.upstream = upstream
        self.journal = journal
    }
}

/// Turns a validated request plus its images into a finished MP4 file.
///
/// Engines are selected by configuration; a task records which engine produced it.
/// Implementations honour task cancellation and report progress through `progress`.
public protocol VideoEngine: Sendable {
    /// A short stable name recorded with each task (`EngineNames`).
    var name: String { get }

    /// Whether a render may be cancelled at any moment without losing work: true for engines that keep their state in
    /// the store (upstream providers), so a shutdown hands their tasks back at once instead of waiting out the grace.
    var resumable: Bool { get }

    /// The task this engine was running was canceled by its owner (its render was stopped already): an upstream engine
    /// tells the provider where it can. `upstream` is the task's last recorded handle.
    func canceled(taskID: UUID, upstream: UpstreamHandle?) async

    /// Returns when the engine can take another task (an upstream provider paused for an account problem waits here);
    /// workers call it before each claim, so a paused engine's tasks stay queued.
    func waitUntilReady() async

    /// Renders `job` into an MP4 at `output` (the file is created or replaced).
    func render(
        _ job: RenderJob,
        to output: URL,
        progress: @escaping @Sendable (RenderProgress) -> Void
    ) async throws
}

extension VideoEngine {
    public var resumable: Bool { false }
    public func waitUntilReady() async {}
    public func canceled(taskID: UUID, upstream: UpstreamHandle?) async {}
}

extension Duration {
    /// The duration in seconds, fractions included (for logs, dates and arithmetic with `TimeInterval`).
    public var timeInterval: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
