import Foundation
import KinemaCore
import KinemaMedia
import Synchronization

/// Kinema's built-in, CPU-only engine: animates the given image(s) with camera moves, transitions and
/// procedural effects (it invents no new content), with an optional procedural soundtrack.
///
/// Pipeline: decode → fit to the 720p-class output → saliency and (with an end image) global alignment → shot
/// plan → source levels in YUV → frames warped in parallel on dedicated threads → x264 + AAC on another, through
/// a bounded queue. Deterministic: the same request and seed give the same MP4, byte for byte (on one platform).
public struct MotionEngine: VideoEngine {
    /// The x264 settings chosen for this engine (see docs/motion-engine.md for the trade-off).
    public static let defaultSettings = EncoderSettings(preset: "veryfast", crf: 20, threads: 4)

    /// Always "motion".
    public let name = "motion"
    /// Encoder settings for the video track.
    public let settings: EncoderSettings
    /// Number of threads that render frames (the encoder has its own).
    public let renderThreads: Int
    /// Short side of the output; 720 (the contract) unless reduced for previews and fast tests.
    public let outputShortSide: Int
    /// Where a render records when each of its phases ended (`kinema bench` prints it); `nil` records nothing.
    @_spi(Benchmark) public var timeline: RenderTimeline?

    /// Creates the engine.
    ///
    /// - Parameters:
    ///   - settings: x264 settings (defaults to `defaultSettings`).
    ///   - renderThreads: frame-rendering threads (defaults to the number of active cores).
    ///   - outputShortSide: 720 for the contract's geometry; a smaller even value scales the output down
    ///     proportionally (for previews and tests only).
    public init(
        settings: EncoderSettings = MotionEngine.defaultSettings,
        renderThreads: Int = ProcessInfo.processInfo.activeProcessorCount,
        outputShortSide: Int = 720
    ) {
        self.settings = settings
        self.renderThreads = max(1, renderThreads)
        self.outputShortSide = max(16, outputShortSide / 2 * 2)
    }

    /// Renders `job` into an MP4 at `output`; honours task cancellation and reports progress per encoded frame.
    public func render(
        _ job: RenderJob, to output: URL, progress: @escaping @Sendable (RenderProgress) -> Void
    ) async throws {
        try Task.checkCancellation()
        let flag = CancellationFlag()
        let engine = self
        do {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    // Blocking pixel and codec work stays off Swift's cooperative pool.
                    let thread = Thread {
                        do {
                            try engine.renderBlocking(job, to: output, flag: flag, progress: progress)
                            continuation.resume()
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    thread.name = "kinema-motion"
                    thread.start()
                }
            } onCancel: {
                flag.cancel()
            }
        } catch let error as MotionError where error.code == .cancelled {
            // A cancelled task ends the Swift way; the partial file was removed by the writer.
            throw CancellationError()
        }
    }

    /// Output size for an input image of `width`×`height`: `OutputGeometry`, scaled to `outputShortSide`.
    public func outputSize(forWidth width: Int, height: Int) -> (width: Int, height: Int) {
        let size = OutputGeometry.outputSize(forWidth: width, height: height)
        guard outputShortSide != 720 else { return size }
        let scale = Double(outputShortSide) / 720
        return (max(2, Int((Double(size.width) * scale / 2).rounded()) * 2), max(2, Int((Double(size.height) * scale / 2).rounded()) * 2))
    }

    /// Renders every frame of `job` without encoding, handing frames 0, 1, 2… to `consume` in order, on the
    /// calling thread (blocking). For the benchmark (`kinema bench`), which times rendering apart from encoding.
    /// - Returns: the output's width and height and the number of frames.
    @_spi(Benchmark)
    public func renderFrames(_ job: RenderJob, consume: (Int, YUVFrame) throws -> Void) throws -> (width: Int, height: Int, frames: Int) {
        let prepared = try prepare(job)
        let composer = prepared.composer
        try RenderPipeline(total: prepared.plan.frameCount, threads: renderThreads)
            .run(flag: CancellationFlag(), render: { composer.render(frame: $0) }, consume: consume)
        return (composer.width, composer.height, prepared.plan.frameCount)
    }

    /// Everything prepared before the first frame: plan and sources.
    struct Prepared: Sendable {
        let composer: FrameComposer
        let plan: ShotPlan
    }

    func prepare(_ job: RenderJob) throws -> Prepared {
        let request = job.request
        guard request.frameCount > 0 else {
            throw MotionError(code: .invalidRequest, message: "the request has no frames (duration \(request.duration) s)")
        }
        let original: RGBAImage
        do { original = try ImageDecoder.decode(job.image) } catch {
            throw MotionError(code: .invalidImage, message: "the image could not be decoded: \(Self.describe(error))", cause: "\(error)")
        }
        let size = outputSize(forWidth: original.width, height: original.height)
        let fitted = ImageResampler.coverFit(original, width: size.width, height: size.height)
        let aspect = Double(size.width) / Double(size.height)
        let salient = Saliency.points(in: fitted)

        var endFitted: RGBAImage?
        var endOriginal: RGBAImage?
        var endFraming: CameraPose?
        if let endData = job.endImage {
            let decoded: RGBAImage
            do { decoded = try ImageDecoder.decode(endData) } catch {
                throw MotionError(code: .invalidEndImage, message: "the end image could not be decoded: \(Self.describe(error))", cause: "\(error)")
            }
            let fittedB = ImageResampler.coverFit(decoded, width: size.width, height: size.height)
            // End images are often a detail of the first (or the reverse): search zooms up to 2.5× either way.
            let estimate = GlobalAlignment.estimate(from: LumaImage(fitted), to: LumaImage(fittedB), maxZoom: 2.5, maxShift: 0.4)
            // Unrelated pictures: no camera travel, the dissolve alone carries the change.
            endFraming = estimate.score >= 0.5 ? estimate.pose : .identity
            endFitted = fittedB
            endOriginal = decoded
        }

        let plan = ShotPlanner.plan(request: request, aspect: aspect, salient: salient, endFraming: endFraming)
        var maxZoom = 1.0, maxZoomB = 1.0
        for index in 0..<plan.frameCount {
            let shot = plan.shots[plan.shotIndex(containing: index)]
            let t = shot.frameCount > 1 ? Double(index - shot.firstFrame) / Double(shot.frameCount - 1) : 0
            let pose = shot.path.pose(at: t)
            maxZoom = max(maxZoom, pose.zoom)
            if shot.travelsToEndImage, let target = endFraming { maxZoomB = max(maxZoomB, pose.zoom / target.zoom) }
        }
        let margin = plan.shots.map(\.path.margin).max() ?? 0
        let source = SourceImage(original: original, fitted: fitted, maxZoom: maxZoom, margin: margin)
        var endSource: SourceImage?
        if let endFitted, let endOriginal, endFraming != nil {
            // The end image only contributes where its view lands inside it (see `FrameComposer.blend(coverage:)`),
            // so it needs no soft extension.
            endSource = SourceImage(original: endOriginal, fitted: endFitted, maxZoom: maxZoomB, margin: 0)
        }
        let composer = FrameComposer(plan: plan, source: source, endSource: endSource, width: size.width, height: size.height)
        return Prepared(composer: composer, plan: plan)
    }

    static func describe(_ error: any Error) -> String {
        if let media = error as? MediaError { return media.message }
        return "\(error)"
    }

    func soundEvents(_ plan: ShotPlan) -> [SoundEvent] {
        plan.cues.map { SoundEvent(time: $0.time, kind: $0.isCut ? .cut : .whoosh(intensity: $0.intensity)) }
    }

    /// The request's quoted dialogue (`Dialogue`) as speech: a prompt's lines from 0.25 s into its clip or shot,
    /// one after another; none when the negative prompt vetoes speech ("no dialogue", "voices"…).
    static func speechEvents(_ request: GenerationRequest) -> [SoundEvent] {
        guard !Dialogue.isVetoed(by: request.negativePrompt) else { return [] }
        var events: [SoundEvent] = []
        var start = 0.0
        for (prompt, duration) in request.clips {
            events += Dialogue.lines(in: prompt).map { SoundEvent(time: start + 0.25, kind: .speech($0)) }
            start += Double(duration)
        }
        return events
    }

    func renderBlocking(
        _ job: RenderJob, to output: URL, flag: CancellationFlag, progress: @escaping @Sendable (RenderProgress) -> Void
    ) throws {
        let started = Date()
        // After the last frame, frames, source levels and x264's pool are all freed: hand that memory back.
        defer { AllocatorTrim.releaseFreeMemory() }
        let prepared = try prepare(job)
        timeline?.mark("image decoded, fitted, planned", since: started)
        if flag.isCancelled { throw MotionError(code: .cancelled, message: "the render was cancelled") }
        let composer = prepared.composer
        let request = job.request
        let total = prepared.plan.frameCount

        // The soundtrack is synthesized on its own thread while frames render.
        let audio =
            request.sound
            ? AudioJob(start: {
                Soundtrack.synthesize(
                    prompt: [request.prompt, request.shots?.map(\.prompt).joined(separator: ". ")].compactMap { $0 }.joined(separator: ". "),
                    negativePrompt: request.negativePrompt, durationSeconds: Double(total) / Double(GenerationRequest.framesPerSecond),
                    events: soundEvents(prepared.plan) + Self.speechEvents(request), seed: request.seed)
            }) : nil

        let writer: MP4Writer
        do {
            writer = try MP4Writer(
                url: output, width: composer.width, height: composer.height,
                framesPerSecond: GenerationRequest.framesPerSecond, withAudio: request.sound, settings: settings)
        } catch {
            throw MotionError(code: .encodingFailed, message: "the MP4 could not be created: \(Self.describe(error))", cause: "\(error)")
        }
        timeline?.mark("x264 opened", since: started)
        var audioWritten = false
        var lastPercent = -1
        let pipeline = RenderPipeline(total: total, threads: renderThreads)
        do {
            try pipeline.run(flag: flag, render: { composer.render(frame: $0) }) { index, frame in
                if index == 0 { timeline?.mark("first frame rendered", since: started) }
                try writer.append(frame)
                if let audio, !audioWritten, let track = audio.resultIfReady() {
                    try writer.appendAudio(track)
                    audioWritten = true
                }
                let done = index + 1
                let percent = done * 100 / total
                if percent != lastPercent {
                    lastPercent = percent
                    let elapsed = Date().timeIntervalSince(started)
                    let eta = elapsed / Double(done) * Double(total - done)
                    progress(RenderProgress(percent: min(99, percent), etaSeconds: Int(eta.rounded(.up))))
                }
            }
            timeline?.mark("last frame handed to x264", since: started)
            if let audio, !audioWritten { try writer.appendAudio(audio.wait()) }
            try writer.finish()
            timeline?.mark("x264 flushed, MP4 written", since: started)
        } catch let error as MotionError {
            throw error
        } catch {
            throw MotionError(code: .encodingFailed, message: "encoding the MP4 failed: \(Self.describe(error))", cause: "\(error)")
        }
        progress(RenderProgress(percent: 100, etaSeconds: 0))
    }
}

/// When each phase of a render ended, in milliseconds from its start (for `kinema bench`'s timeline).
@_spi(Benchmark)
public final class RenderTimeline: Sendable {
    private let marks = Mutex<[(phase: String, milliseconds: Int)]>([])

    public init() {}

    func mark(_ phase: String, since start: Date) {
        let ms = Int((Date().timeIntervalSince(start) * 1000).rounded())
        marks.withLock { $0.append((phase, ms)) }
    }

    /// The phases so far, in order.
    public var phases: [(phase: String, milliseconds: Int)] { marks.withLock { $0 } }
}

/// A value computed once on a dedicated thread, collected later.
final class AudioJob: @unchecked Sendable {
    // SAFETY: `result` is written once by the worker thread and read by others, always under `condition`.
    private let condition = NSCondition()
    private var result: AudioTrack?

    init(start work: @escaping @Sendable () -> AudioTrack) {
        let thread = Thread { [self] in
            let track = work()
            condition.lock()
            result = track
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "kinema-soundtrack"
        thread.start()
    }

    func resultIfReady() -> AudioTrack? {
        condition.lock()
        defer { condition.unlock() }
        return result
    }

    func wait() -> AudioTrack {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return result!
    }
}
