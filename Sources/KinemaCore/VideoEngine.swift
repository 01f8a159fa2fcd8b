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

    public init(request: GenerationRequest, image: Data, endImage: Data? = nil) {
        self.request = request
        self.image = image
        self.endImage = endImage
    }
}

/// Turns a validated request plus its images into a finished MP4 file.
///
/// Engines are selected by configuration; a task records which engine produced it.
/// Implementations honour task cancellation and report progress through `progress`.
public protocol VideoEngine: Sendable {
    /// A short stable name recorded with each task (`motion`, `gpu`, `upstream`).
    var name: String { get }

    /// Renders `job` into an MP4 at `output` (the file is created or replaced).
    func render(
        _ job: RenderJob,
        to output: URL,
        progress: @escaping @Sendable (RenderProgress) -> Void
    ) async throws
}
