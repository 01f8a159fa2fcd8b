import Foundation
import KinemaCore
import KinemaMedia
@_spi(Benchmark) import KinemaMotion

/// The motion engine's benchmark: render-only, encode-only and end-to-end speed plus peak memory.
///
/// A command, not a test: `kinema bench` calls `run` and prints `report`. Inputs are synthetic textured PNGs
/// at 1.5× the output size (like a typical photo after decoding), rendered with a representative prompt.
public enum MotionBenchmark {
    /// One benchmark case.
    public struct Case: Sendable, Equatable {
        /// Output width.
        public var width: Int
        /// Output height.
        public var height: Int
        /// Clip length in seconds.
        public var seconds: Int
        /// Whether the clip has a soundtrack.
        public var sound: Bool

        /// Creates a case.
        public init(width: Int, height: Int, seconds: Int, sound: Bool) {
            self.width = width
            self.height = height
            self.seconds = seconds
            self.sound = sound
        }

        /// A short label such as `1280x720 5s +sound`.
        public var label: String { "\(width)x\(height) \(seconds)s\(sound ? " +sound" : "")" }

        /// The name `kinema bench --case` takes, such as `1280x720-5s-sound` or `1800x720-15s`.
        public var id: String { "\(width)x\(height)-\(seconds)s\(sound ? "-sound" : "")" }

        /// The standard case named `id`, or nil.
        public static func named(_ id: String) -> Case? {
            MotionBenchmark.standardCases.first { $0.id == id.lowercased() }
        }
    }

    /// Measurements of one case.
    public struct Result: Sendable {
        /// The case measured.
        public var benchCase: Case
        /// Frames per second of rendering alone (frames discarded).
        public var renderFramesPerSecond: Double
        /// Frames per second of x264 alone on the same frames with the same settings.
        public var encodeFramesPerSecond: Double
        /// Seconds of the encode-only pass.
        public var encodeOnlySeconds: Double
        /// Seconds from image bytes to finished MP4 (decode, plan, render, encode, audio, mux).
        public var endToEndSeconds: Double
        /// Clip seconds per wall-clock second, end to end.
        public var realTimeFactor: Double { Double(benchCase.seconds) / endToEndSeconds }
        /// End-to-end cost relative to encode-only (target ≤ 1.25).
        public var endToEndOverEncode: Double { endToEndSeconds / encodeOnlySeconds }
        /// Peak resident memory of the process during the end-to-end run, in MiB.
        public var peakRSSMiB: Double
        /// CPU seconds (all threads, user + system) of the render-only pass.
        public var renderCPUSeconds: Double
        /// CPU seconds of the encode-only pass.
        public var encodeCPUSeconds: Double
        /// CPU seconds of the end-to-end run.
        public var endToEndCPUSeconds: Double
    }

    /// The issue's matrix: 5 s and 15 s at 1280×720 with and without sound, and 15 s at 1800×720.
    public static let standardCases: [Case] = [
        Case(width: 1280, height: 720, seconds: 5, sound: false),
        Case(width: 1280, height: 720, seconds: 5, sound: true),
        Case(width: 1280, height: 720, seconds: 15, sound: false),
        Case(width: 1280, height: 720, seconds: 15, sound: true),
        Case(width: 1800, height: 720, seconds: 15, sound: false),
    ]

    /// The prompt every case renders (a push-in with water ripple: warp, effect and, with sound, two beds).
    public static let prompt = "slow push in on a harbour at dusk, gentle water ripples, light breeze"

    /// Runs `cases` (rendering `prompt`) and returns their measurements; `log` receives one line per finished case.
    public static func run(
        cases: [Case] = standardCases, engine: MotionEngine = MotionEngine(), prompt: String = MotionBenchmark.prompt,
        log: @Sendable (String) -> Void = { print($0) }
    ) async throws -> [Result] {
        var results: [Result] = []
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for benchCase in cases {
            let image = try ImageEncoder.png(syntheticPhoto(width: benchCase.width * 3 / 2, height: benchCase.height * 3 / 2))
            let request = GenerationRequest(prompt: prompt, duration: benchCase.seconds, sound: benchCase.sound, seed: 7)
            let job = RenderJob(request: request, image: image)
            let output = dir.appendingPathComponent("bench.mp4")

            // End to end first, with the peak-RSS counter reset so each case gets its own peak (after returning
            // what the allocator kept from earlier passes, which the reset would otherwise count as this case's).
            AllocatorTrim.releaseFreeMemory()
            resetPeakRSS()
            var timed = engine
            timed.timeline = RenderTimeline()
            let e2eStart = Date()
            let e2eCPU = cpuSeconds()
            try await timed.render(job, to: output) { _ in }
            let endToEnd = Date().timeIntervalSince(e2eStart)
            let endToEndCPU = cpuSeconds() - e2eCPU
            let peak = peakRSSMiB()

            let (renderFPS, encodeSeconds, renderCPU, encodeCPU) = try renderAndEncodeOnly(job, engine: engine, dir: dir)
            let frames = Double(request.frameCount)
            let result = Result(
                benchCase: benchCase, renderFramesPerSecond: renderFPS, encodeFramesPerSecond: frames / encodeSeconds,
                encodeOnlySeconds: encodeSeconds, endToEndSeconds: endToEnd, peakRSSMiB: peak,
                renderCPUSeconds: renderCPU, encodeCPUSeconds: encodeCPU, endToEndCPUSeconds: endToEndCPU)
            results.append(result)
            log(line(result))
            // Where the end-to-end run's time went, and how busy the cores were (CPU seconds over wall seconds).
            let phases = (timed.timeline?.phases ?? []).map { "\($0.phase) \($0.milliseconds) ms" }.joined(separator: " · ")
            log(
                "  timeline: \(phases) · cores busy \(String(format: "%.2f", endToEndCPU / endToEnd)) of "
                    + "\(ProcessInfo.processInfo.activeProcessorCount) end to end, "
                    + "\(String(format: "%.2f", encodeCPU / encodeSeconds)) encode-only")
        }
        return results
    }

    /// A Markdown table of results.
    public static func report(_ results: [Result], settings: EncoderSettings = MotionEngine.defaultSettings) -> String {
        var lines = [
            "x264 preset \(settings.preset), crf \(settings.crf), threads \(settings.threads == 0 ? "auto" : String(settings.threads)); \(ProcessInfo.processInfo.activeProcessorCount) cores",
            "",
            "| case | render-only fps | encode-only fps | end-to-end s | real-time × | e2e / encode | peak RSS MiB | CPU s: render / encode / e2e |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in results {
            lines.append(
                String(
                    format: "| %@ | %.0f | %.0f | %.2f | %.1f | %.2f | %.0f | %.2f / %.2f / %.2f |", r.benchCase.label,
                    r.renderFramesPerSecond, r.encodeFramesPerSecond, r.endToEndSeconds, r.realTimeFactor, r.endToEndOverEncode,
                    r.peakRSSMiB, r.renderCPUSeconds, r.encodeCPUSeconds, r.endToEndCPUSeconds))
        }
        return lines.joined(separator: "\n")
    }

    static func line(_ r: Result) -> String {
        String(
            format:
                "%@: render %.0f fps, encode %.0f fps, end-to-end %.2f s (%.1f× real time, %.2f× encode-only), peak RSS %.0f MiB; CPU s render %.2f encode %.2f e2e %.2f",
            r.benchCase.label, r.renderFramesPerSecond, r.encodeFramesPerSecond, r.endToEndSeconds, r.realTimeFactor,
            r.endToEndOverEncode, r.peakRSSMiB, r.renderCPUSeconds, r.encodeCPUSeconds, r.endToEndCPUSeconds)
    }

    /// Render-only (frames discarded after a checksum) and encode-only (the same frames, rendered into memory first,
    /// through the same x264 settings) measurements.
    static func renderAndEncodeOnly(_ job: RenderJob, engine: MotionEngine, dir: URL) throws -> (Double, Double, Double, Double) {
        var checksum = 0
        let renderStart = Date()
        let renderCPUStart = cpuSeconds()
        let (w, h, total) = try engine.renderFrames(job) { _, frame in
            checksum &+= Int(frame.y[frame.y.count / 2])
        }
        let renderSeconds = Date().timeIntervalSince(renderStart)
        let renderCPU = cpuSeconds() - renderCPUStart

        // The same frames, all in memory before the clock starts, then through x264 with the same settings: the
        // wall time from the first frame handed over to the finished file. (Until issue 16 the frames were read back
        // from a spool file and only the time inside x264's calls was counted, which left out the time x264's frame
        // threads kept encoding while the next frame was read: encode-only looked up to ≈15 % faster than it is.)
        var frames: [YUVFrame] = []
        frames.reserveCapacity(total)
        _ = try engine.renderFrames(job) { _, frame in frames.append(frame) }
        let writer = try MP4Writer(
            url: dir.appendingPathComponent("encode-only.mp4"), width: w, height: h, withAudio: false, settings: engine.settings)
        let encodeStart = Date()
        let encodeCPUStart = cpuSeconds()
        for frame in frames { try writer.append(frame) }
        try writer.finish()
        let encodeSeconds = Date().timeIntervalSince(encodeStart)
        let encodeCPU = cpuSeconds() - encodeCPUStart
        frames = []
        AllocatorTrim.releaseFreeMemory()
        _ = checksum
        return (Double(total) / renderSeconds, encodeSeconds, renderCPU, encodeCPU)
    }

    /// A photo-like synthetic picture: sky gradient, a horizon, hills, coloured blobs and multi-scale texture.
    public static func syntheticPhoto(width: Int, height: Int, seed: UInt32 = 3) -> RGBAImage {
        let noise = SeededNoise(seed: seed)
        var px = [UInt8](repeating: 255, count: width * height * 4)
        func lattice(_ stream: UInt64, _ x: Double, _ y: Double) -> Double {
            let ix = Int(floor(x)), iy = Int(floor(y))
            var fx = x - Double(ix), fy = y - Double(iy)
            fx = fx * fx * (3 - 2 * fx); fy = fy * fy * (3 - 2 * fy)
            func at(_ i: Int, _ j: Int) -> Double { noise.unit(stream, i &* 7919 &+ j &* 104_729) }
            return (at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx) * (1 - fy) + (at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx) * fy
        }
        for y in 0..<height {
            let v = Double(y) / Double(height)
            for x in 0..<width {
                let u = Double(x) / Double(width)
                let detail = 0.5 * lattice(1, u * 40, v * 22) + 0.3 * lattice(2, u * 120, v * 66) + 0.2 * lattice(3, u * 9, v * 5)
                let hill = 0.55 + 0.08 * sin(u * 7 + 1) + 0.04 * lattice(4, u * 6, 0)
                var r: Double, g: Double, b: Double
                if v < hill {
                    r = 90 + 120 * v + 30 * detail; g = 120 + 80 * v + 20 * detail; b = 200 - 40 * v + 20 * detail
                } else {
                    r = 40 + 60 * detail + 40 * u; g = 70 + 90 * detail; b = 60 + 50 * detail + 60 * (v - hill)
                }
                let i = (y * width + x) * 4
                px[i] = UInt8(max(0, min(255, r))); px[i + 1] = UInt8(max(0, min(255, g))); px[i + 2] = UInt8(max(0, min(255, b)))
            }
        }
        return RGBAImage(width: width, height: height, pixels: px)
    }

    /// CPU time of the whole process so far (user + system, all threads), in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// Resets the kernel's peak-RSS counter for this process (Linux `clear_refs` 5); a no-op elsewhere.
    static func resetPeakRSS() {
        if let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
            try? handle.write(contentsOf: Data("5".utf8))
            try? handle.close()
        }
    }

    /// Peak resident set size in MiB: `VmHWM` since the last reset on Linux, else `getrusage`'s `ru_maxrss`.
    static func peakRSSMiB() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kb = Double(line.split(separator: " ").dropFirst().first ?? "")
        {
            return kb / 1024
        }
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Double(usage.ru_maxrss) / 1_048_576
        #endif
    }
}
