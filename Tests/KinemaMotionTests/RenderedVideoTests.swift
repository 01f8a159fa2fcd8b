import Foundation
import KinemaTestSupport
import Testing
import KinemaCore
import KinemaMedia
import KinemaMotion

/// Videos are checked by decoding the MP4 (not by trusting the renderer). Clips use a reduced output size
/// (short side 240 or less) except where the contract geometry itself is under test.
@Suite struct RenderedVideoTests {
    typealias S = MotionTestSupport
    let image = S.texturedImage(width: 480, height: 320)

    @Test(arguments: [3, 5, 15])
    func exactFrameCountAndRate(seconds: Int) async throws {
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(GenerationRequest(prompt: "slow pan right", duration: seconds), image: image, in: dir, shortSide: 120)
            let info = try MP4Reader.info(url: url)
            #expect(info.frameRate == 24)
            #expect(info.frameCount == seconds * 24)
            #expect(abs(info.durationSeconds - Double(seconds)) < 0.001)
            #expect(info.videoCodec == "h264" && info.pixelFormat == "yuv420p")
            var decoded = 0
            try MP4Reader.forEachFrame(url: url) { _, _ in decoded += 1 }
            #expect(decoded == seconds * 24)
            #expect(!info.hasAudio)
        }
    }

    @Test func contractGeometryAndFirstFrameIsTheFittedInput() async throws {
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(GenerationRequest(prompt: "zoom in", duration: 3), image: image, in: dir, shortSide: 720)
            let info = try MP4Reader.info(url: url)
            let expected = OutputGeometry.outputSize(forWidth: 480, height: 320)
            #expect(info.width == expected.width && info.height == expected.height)
            #expect(info.width == 1080 && info.height == 720)
            var first: YUVFrame?
            try MP4Reader.forEachFrame(url: url) { index, frame in if index == 0 { first = frame } }
            let fitted = ColorConversion.yuv420(from: ImageResampler.coverFit(image, width: 1080, height: 720))
            #expect(S.psnr(try #require(first), fitted) >= 35)
        }
    }

    @Test(arguments: ["pan left", "zoom out", "roll right", "a quiet lake with ripples, fog and rain", "handheld"])
    func firstFrameIsTheFittedInput(prompt: String) async throws {
        let portrait = S.texturedImage(width: 300, height: 400, seed: 4)
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(GenerationRequest(prompt: prompt, duration: 3), image: portrait, in: dir)
            let frames = try S.frames(of: url)
            let fitted = ColorConversion.yuv420(from: ImageResampler.coverFit(portrait, width: frames[0].width, height: frames[0].height))
            #expect(frames[0].width == 240 && frames[0].height == 320)
            #expect(S.psnr(frames[0], fitted) >= 35, "\(prompt)")
        }
    }

    @Test(arguments: [true, false])
    func lastFrameIsTheEndImage(related: Bool) async throws {
        // A related end image: a closer, shifted view of the same scene; an unrelated one: another picture.
        let end =
            related
            ? ImageResampler.resample(image, from: PixelRect(x: 120, y: 60, width: 320, height: 213), width: 480, height: 320)
            : S.texturedImage(width: 480, height: 320, seed: 77)
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(
                GenerationRequest(prompt: "travel to the end", duration: 3, hasEndImage: true), image: image, endImage: end, in: dir)
            let frames = try S.frames(of: url)
            #expect(frames.count == 72)
            let w = frames[0].width, h = frames[0].height
            let fittedEnd = ColorConversion.yuv420(from: ImageResampler.coverFit(end, width: w, height: h))
            let fittedStart = ColorConversion.yuv420(from: ImageResampler.coverFit(image, width: w, height: h))
            #expect(S.psnr(frames[71], fittedEnd) >= 35)
            #expect(S.psnr(frames[0], fittedStart) >= 35)
            // The middle is a blend of the journey, neither endpoint.
            #expect(S.psnr(frames[36], fittedEnd) < 30 && S.psnr(frames[36], fittedStart) < 30)
            if related {
                // The camera travels toward the end framing: the middle frame is already magnified.
                #expect(S.motion(from: frames[0], to: frames[30]).pose.zoom > 1.05)
            }
        }
    }

    @Test(arguments: [
        ("pan left", "left"), ("pan right", "right"), ("tilt up", "up"), ("tilt down", "down"), ("zoom in", "in"), ("zoom out", "out"),
        ("truck left", "left"), ("pedestal up", "up"),
    ])
    func motionDirectionFollowsFilmConvention(prompt: String, expected: String) async throws {
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(GenerationRequest(prompt: prompt, duration: 3, cfgScale: 1), image: image, in: dir)
            let frames = try S.frames(of: url)
            let m = S.motion(from: frames[18], to: frames[54])
            #expect(m.score > 0.9)
            let dx = m.pose.centerX - 0.5, dy = m.pose.centerY - 0.5, logZoom = log(m.pose.zoom)
            switch expected {
            // Pan left: the view moves left on the earlier frame, i.e. the scene slides right.
            case "left": #expect(dx < -0.015, "\(m)")
            case "right": #expect(dx > 0.015, "\(m)")
            // Tilt up: the view moves up, the scene slides down.
            case "up": #expect(dy < -0.015, "\(m)")
            case "down": #expect(dy > 0.015, "\(m)")
            case "in": #expect(logZoom > 0.05, "\(m)")
            default: #expect(logZoom < -0.05, "\(m)")
            }
        }
    }

    @Test func staticCameraFramesAreNearlyIdentical() async throws {
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(GenerationRequest(prompt: "static shot, locked-off camera", duration: 3, cfgScale: 1), image: image, in: dir)
            let frames = try S.frames(of: url)
            for frame in frames.dropFirst() { #expect(S.psnr(frame, frames[0]) >= 38) }
        }
    }

    @Test func vetoedMoveIsAbsent() async throws {
        try await S.withTemporaryDirectory { dir in
            let allowed = try S.frames(
                of: try await S.render(GenerationRequest(prompt: "zoom in", duration: 3, cfgScale: 1), image: image, in: dir, name: "a"))
            let vetoed = try S.frames(
                of: try await S.render(
                    GenerationRequest(prompt: "zoom in", negativePrompt: "zoom, camera shake", duration: 3, cfgScale: 1), image: image, in: dir,
                    name: "b"))
            #expect(log(S.motion(from: allowed[0], to: allowed[71]).pose.zoom) > 0.15)
            let m = S.motion(from: vetoed[0], to: vetoed[71])
            #expect(abs(log(m.pose.zoom)) < 0.01 && abs(m.pose.centerX - 0.5) < 0.01 && abs(m.pose.centerY - 0.5) < 0.01, "\(m)")
        }
    }

    @Test func fullCfgMovesVisiblyMoreThanZero() async throws {
        try await S.withTemporaryDirectory { dir in
            var shifts: [Double] = []
            for cfg in [0.0, 1.0] {
                let frames = try S.frames(
                    of: try await S.render(
                        GenerationRequest(prompt: "pan right", duration: 3, cfgScale: cfg), image: image, in: dir, name: "cfg\(cfg)"))
                shifts.append(S.motion(from: frames[0], to: frames[71]).pose.centerX - 0.5)
            }
            #expect(shifts[0] > 0.005)
            #expect(shifts[1] > 2 * shifts[0], "\(shifts)")
        }
    }

    @Test func cutsLandExactlyOnShotBoundaries() async throws {
        let shots = [
            Shot(prompt: "wide shot of the bay", duration: 3), Shot(prompt: "pan left", duration: 3), Shot(prompt: "close-up, zoom in", duration: 3),
        ]
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(GenerationRequest(prompt: nil, duration: 9, shots: shots), image: image, in: dir, shortSide: 160)
            let info = try MP4Reader.info(url: url)
            #expect(info.frameCount == 9 * 24)
            let frames = try S.frames(of: url)
            #expect(frames.count == 216)
            let diffs = (1..<frames.count).map { S.meanAbsoluteDifference(frames[$0 - 1], frames[$0]) }
            let boundaries: Set<Int> = [72, 144]
            let insideMax = diffs.enumerated().filter { !boundaries.contains($0.offset + 1) }.map(\.element).max() ?? 0
            for b in boundaries { #expect(diffs[b - 1] > 4 * insideMax, "cut at \(b): \(diffs[b - 1]) vs inside max \(insideMax)") }
            // Virtual coverage: the second shot is a medium framing, the third a close-up of the same picture.
            let medium = GlobalAlignment.estimate(from: LumaImage(frames[0]), to: LumaImage(frames[73]), maxZoom: 3, maxShift: 0.45)
            let close = GlobalAlignment.estimate(from: LumaImage(frames[0]), to: LumaImage(frames[145]), maxZoom: 3, maxShift: 0.45)
            #expect(medium.pose.zoom > 1.35 && medium.pose.zoom < 1.9, "\(medium)")
            #expect(close.pose.zoom > 2.1, "\(close)")
        }
    }

    @Test func dissolveTransitionHasNoCut() async throws {
        let shots = [Shot(prompt: "wide", duration: 3), Shot(prompt: "dissolve to a close-up", duration: 3)]
        try await S.withTemporaryDirectory { dir in
            let frames = try S.frames(
                of: try await S.render(GenerationRequest(prompt: nil, duration: 6, shots: shots), image: image, in: dir, shortSide: 160))
            let diffs = (1..<frames.count).map { S.meanAbsoluteDifference(frames[$0 - 1], frames[$0]) }
            let cutLike = try #require(diffs.max())
            let wideToClose = S.meanAbsoluteDifference(frames[71], frames[95])
            #expect(cutLike < wideToClose / 3, "largest step \(cutLike) vs whole change \(wideToClose)")
        }
    }

    @Test(arguments: [true, false])
    func audioIsPresentExactlyWhenSoundIsAsked(sound: Bool) async throws {
        try await S.withTemporaryDirectory { dir in
            let url = try await S.render(
                GenerationRequest(prompt: "storm: heavy rain on a lake, wind, fast pan left", duration: 3, sound: sound, seed: 2),
                image: image, in: dir, shortSide: 120)
            let info = try MP4Reader.info(url: url)
            #expect(info.hasAudio == sound)
            let audio = try MP4Reader.decodeAudio(url: url)
            if sound {
                let track = try #require(audio)
                let peak = track.samples.map(abs).max() ?? 0
                let rms = (track.samples.reduce(0) { $0 + Double($1 * $1) } / Double(max(1, track.samples.count))).squareRoot()
                #expect(rms > 0.005)
                // Unclipped as heard: the decoded AAC (not the PCM handed to the encoder) stays under −1 dBFS. The
                // soundtrack limits its PCM to −3 dBFS so the codec's overshoot on dense noise fits in the margin.
                #expect(peak < 0.891, "decoded peak \(peak) (\(20 * log10(Double(peak))) dBFS)")
                #expect(abs(track.frameCount - 3 * AudioTrack.sampleRate) <= 1024, "\(track.frameCount)")
                #expect(info.audioSampleRate == 48_000 && info.audioChannels == 2)
            } else {
                #expect(audio == nil)
            }
        }
    }

    /// Same request and seed → the same MP4, byte for byte, with the production encoder settings (lossy x264, fixed
    /// threads) and a soundtrack whose arrival time varies; the second render runs with a perturbed heap, which made
    /// x264's AVX-512 kernels change the stream before `EncoderSettings.deterministic`. Another seed changes the frames.
    @Test func sameSeedGivesTheSameFileAndAnotherSeedDiffers() async throws {
        try await S.withTemporaryDirectory { dir in
            func render(_ seed: UInt32, _ name: String) async throws -> (frames: [YUVFrame], bytes: Data) {
                let url = dir.appendingPathComponent("\(name).mp4")
                let job = RenderJob(
                    request: GenerationRequest(
                        prompt: "handheld orbit left, heavy rain, snow, fog, candle flicker", duration: 3, sound: true, seed: seed),
                    image: try ImageEncoder.png(image))
                try await MotionEngine(outputShortSide: 160).render(job, to: url) { _ in }
                return (try S.frames(of: url), try Data(contentsOf: url))
            }
            let a = try await render(5, "a")
            let b = try await PerturbedHeap.with(0xA5) { try await render(5, "b") }
            let c = try await render(6, "c")
            let differing = zip(a.frames, b.frames).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            #expect(a.frames.count == 72 && b.frames.count == 72 && differing.isEmpty, "frames differing between identical runs: \(differing)")
            #expect(a.bytes == b.bytes, "file sizes \(a.bytes.count) and \(b.bytes.count)")
            #expect(zip(a.frames, c.frames).filter { $0 != $1 }.count > 36, "handheld, rain and snow follow the seed")
        }
    }

    @Test func waterRippleMovesOnlyTheLowerPart() async throws {
        try await S.withTemporaryDirectory { dir in
            let frames = try S.frames(
                of: try await S.render(
                    GenerationRequest(prompt: "static camera, rippling water", duration: 3, cfgScale: 1), image: image, in: dir))
            let w = frames[0].width, h = frames[0].height
            func rowsDiff(_ a: YUVFrame, _ b: YUVFrame, _ rows: Range<Int>) -> Double {
                var sum = 0
                for y in rows { for x in 0..<w { sum += abs(Int(a.y[y * w + x]) - Int(b.y[y * w + x])) } }
                return Double(sum) / Double(rows.count * w)
            }
            let top = rowsDiff(frames[30], frames[60], 0..<(h / 2)), bottom = rowsDiff(frames[30], frames[60], (h * 3 / 4)..<h)
            // Ripples are a few pixels at 720 rows, under one at 240: a small but clearly non-zero change.
            #expect(bottom > 0.25 && top < 0.05, "top \(top) bottom \(bottom)")
        }
    }

    @Test(arguments: ["", "heavy rain", "snow", "thick fog", "flickering neon light"])
    func ambientEffectsAreVisibleAfterTheFirstFrame(effect: String) async throws {
        try await S.withTemporaryDirectory { dir in
            let frames = try S.frames(
                of: try await S.render(
                    GenerationRequest(prompt: "static camera, \(effect)", duration: 3, cfgScale: 1, seed: 3), image: image, in: dir, shortSide: 240))
            let fitted = ColorConversion.yuv420(from: ImageResampler.coverFit(image, width: frames[0].width, height: frames[0].height))
            #expect(S.psnr(frames[0], fitted) >= 35)
            // Share of luma pixels changed by more than 16 levels in the most affected frame after the fade-in.
            // Local effects: share of luma pixels changed by more than 16 levels in the most affected frame after the
            // fade-in. Global ones (flicker): relative range of the frames' mean luma.
            var changed = 0.0
            var means: [Double] = []
            for frame in frames[15...] {
                var count = 0, sum = 0
                for i in 0..<frame.y.count {
                    if abs(Int(frame.y[i]) - Int(fitted.y[i])) > 16 { count += 1 }
                    sum += Int(frame.y[i])
                }
                changed = max(changed, Double(count) / Double(frame.y.count))
                means.append(Double(sum) / Double(frame.y.count))
            }
            let range = ((means.max() ?? 0) - (means.min() ?? 0)) / (means.max() ?? 1)
            if effect.isEmpty {
                #expect(changed < 0.0001 && range < 0.005, "a static shot without effects changed: \(changed), \(range)")
            } else {
                #expect(changed > 0.0003 || range > 0.04, "\(effect): \(changed), \(range)")
            }
        }
    }

    @Test func progressIsReportedUpToCompletion() async throws {
        try await S.withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("p.mp4")
            let seen = ProgressLog()
            let job = RenderJob(request: GenerationRequest(prompt: "zoom in", duration: 3), image: try ImageEncoder.png(image))
            try await MotionEngine(outputShortSide: 120).render(job, to: url) { seen.append($0) }
            let values = seen.values
            #expect(values.last == RenderProgress(percent: 100, etaSeconds: 0))
            #expect(values.count > 10)
            #expect(zip(values, values.dropFirst()).allSatisfy { $0.percent <= $1.percent })
        }
    }

    @Test func cancellationStopsTheRender() async throws {
        try await S.withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("c.mp4")
            let job = RenderJob(request: GenerationRequest(prompt: "zoom in", duration: 15), image: try ImageEncoder.png(image))
            let started = ProgressLog()
            let box = TaskBox()
            // Cancelled from the progress callback, so the test does not depend on when it gets scheduled.
            let task = Task {
                try await MotionEngine(outputShortSide: 240).render(job, to: url) { p in
                    started.append(p)
                    if p.percent >= 2 { box.cancel() }
                }
            }
            box.set(task)
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect((started.values.last?.percent ?? 0) < 100)
            #expect(!FileManager.default.fileExists(atPath: url.path))
        }
    }

    @Test(arguments: [
        Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]), Data("not an image at all".utf8), Data(),
    ])
    func corruptImageFailsWithAClearError(bytes: Data) async throws {
        try await S.withTemporaryDirectory { dir in
            let job = RenderJob(request: GenerationRequest(prompt: "zoom in", duration: 3), image: bytes)
            do {
                try await MotionEngine(outputShortSide: 120).render(job, to: dir.appendingPathComponent("x.mp4")) { _ in }
                Issue.record("a corrupt image rendered")
            } catch let error as MotionError {
                #expect(error.code == .invalidImage)
                #expect(error.message.contains("image could not be decoded"))
            }
        }
    }

    @Test func truncatedEndImageFailsWithAClearError() async throws {
        let png = try ImageEncoder.png(image)
        try await S.withTemporaryDirectory { dir in
            let job = RenderJob(
                request: GenerationRequest(prompt: "x", duration: 3, hasEndImage: true), image: png, endImage: png.prefix(png.count / 2))
            await #expect(throws: MotionError.self) {
                try await MotionEngine(outputShortSide: 120).render(job, to: dir.appendingPathComponent("x.mp4")) { _ in }
            }
            do { try await MotionEngine(outputShortSide: 120).render(job, to: dir.appendingPathComponent("x.mp4")) { _ in } } catch let e
                as MotionError
            {
                #expect(e.code == .invalidEndImage)
            }
        }
    }
}

/// Holds a task so another thread can cancel it once it is known.
final class TaskBox: @unchecked Sendable {
    // SAFETY: `task` is only touched under `lock`.
    private let lock = NSLock()
    private var task: Task<Void, any Error>?
    func set(_ t: Task<Void, any Error>) { lock.lock(); task = t; lock.unlock() }
    func cancel() { lock.lock(); task?.cancel(); lock.unlock() }
}

/// Collects progress reports from the engine's thread.
final class ProgressLog: @unchecked Sendable {
    // SAFETY: `items` is only touched under `lock`.
    private let lock = NSLock()
    private var items: [RenderProgress] = []
    func append(_ p: RenderProgress) { lock.lock(); items.append(p); lock.unlock() }
    var values: [RenderProgress] { lock.lock(); defer { lock.unlock() }; return items }
}
