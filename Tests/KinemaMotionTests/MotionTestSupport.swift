import Foundation
import KinemaTestSupport
import KinemaCore
import KinemaMedia
import KinemaMotion
#if canImport(Glibc)
import Glibc
#endif

/// Helpers shared by the motion engine's tests: synthetic textured images, rendering into temp files,
/// decoding frames back and comparing them.
enum MotionTestSupport {
    /// A textured test picture: smooth gradients, a few coloured shapes and multi-scale seeded noise, so that
    /// motion estimation is well conditioned everywhere in the frame.
    static func texturedImage(width: Int, height: Int, seed: UInt32 = 1) -> RGBAImage {
        let noise = SeededNoise(seed: seed)
        var px = [UInt8](repeating: 255, count: width * height * 4)
        func lattice(_ stream: UInt64, _ x: Double, _ y: Double) -> Double {
            let ix = Int(floor(x)), iy = Int(floor(y))
            let fx = x - Double(ix), fy = y - Double(iy)
            func at(_ i: Int, _ j: Int) -> Double { noise.unit(stream, i &* 7919 &+ j &* 104_729) }
            return (at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx) * (1 - fy) + (at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx) * fy
        }
        let shapes: [(cx: Double, cy: Double, r: Double, color: (Double, Double, Double))] = (0..<7).map { i in
            (
                noise.unit(90, i), noise.unit(91, i), 0.05 + 0.1 * noise.unit(92, i),
                (noise.unit(93, i) * 255, noise.unit(94, i) * 255, noise.unit(95, i) * 255)
            )
        }
        for y in 0..<height {
            for x in 0..<width {
                let u = Double(x) / Double(width), v = Double(y) / Double(height)
                let n = 0.5 * lattice(1, u * 24, v * 16) + 0.3 * lattice(2, u * 60, v * 40) + 0.2 * lattice(3, u * 7, v * 5)
                var r = 40 + 150 * u + 60 * n, g = 60 + 120 * v + 50 * n, b = 200 - 120 * u * v + 40 * n
                for s in shapes {
                    let dx = (u - s.cx) * Double(width) / Double(height), dy = v - s.cy
                    if dx * dx + dy * dy < s.r * s.r {
                        r = s.color.0 * 0.8 + 50 * n; g = s.color.1 * 0.8 + 50 * n; b = s.color.2 * 0.8 + 50 * n
                    }
                }
                let i = (y * width + x) * 4
                px[i] = UInt8(max(0, min(255, r))); px[i + 1] = UInt8(max(0, min(255, g))); px[i + 2] = UInt8(max(0, min(255, b)))
            }
        }
        return RGBAImage(width: width, height: height, pixels: px)
    }

    /// A temporary directory, removed after `body`.
    static func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-motion-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try await body(dir)
    }

    /// Renders a request into `dir/name.mp4` with a reduced output size (short side `shortSide`) unless 720.
    static func render(
        _ request: GenerationRequest, image: RGBAImage, endImage: RGBAImage? = nil, in dir: URL, name: String = "out",
        shortSide: Int = 240
    ) async throws -> URL {
        let url = dir.appendingPathComponent("\(name).mp4")
        let job = RenderJob(request: request, image: try ImageEncoder.png(image), endImage: try endImage.map { try ImageEncoder.png($0) })
        try await MotionEngine(outputShortSide: shortSide).render(job, to: url) { _ in }
        return url
    }

    /// Every decoded frame of a (small) video.
    static func frames(of url: URL) throws -> [YUVFrame] {
        var frames: [YUVFrame] = []
        try MP4Reader.forEachFrame(url: url) { _, frame in frames.append(frame) }
        return frames
    }

    /// PSNR in dB between two equally sized 8-bit planes (infinity when identical).
    static func psnr(_ a: [UInt8], _ b: [UInt8]) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for i in 0..<a.count {
            let d = Double(a[i]) - Double(b[i])
            sum += d * d
        }
        let mse = sum / Double(a.count)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    /// PSNR over all three planes of two frames.
    static func psnr(_ a: YUVFrame, _ b: YUVFrame) -> Double {
        psnr(a.y + a.u + a.v, b.y + b.u + b.v)
    }

    /// Mean absolute luma difference between two frames.
    static func meanAbsoluteDifference(_ a: YUVFrame, _ b: YUVFrame) -> Double {
        var sum = 0
        for i in 0..<a.y.count { sum += abs(Int(a.y[i]) - Int(b.y[i])) }
        return Double(sum) / Double(a.y.count)
    }

    /// Where frame `b` sits on frame `a` (zoom > 1: b is magnified; centre < 0.5: the scene moved right).
    static func motion(from a: YUVFrame, to b: YUVFrame) -> GlobalAlignment.Estimate {
        GlobalAlignment.estimate(from: LumaImage(a), to: LumaImage(b))
    }
}
