import Foundation
import KinemaMedia
import KinemaTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Detailed moving content (seeded noise, drifting and slowly zooming) at a width that is not a multiple of 16:
/// the kind of input on which x264's AVX-512 kernels were seen to read uninitialised memory.
private let movingNoiseFrames: [YUVFrame] = {
    var state: UInt32 = 12_345
    var px = [UInt8](repeating: 255, count: 400 * 260 * 4)
    for i in stride(from: 0, to: px.count, by: 4) {
        for c in 0..<3 {
            state = state &* 1_664_525 &+ 1_013_904_223
            px[i + c] = UInt8(truncatingIfNeeded: (state >> 24) / 2 + UInt32(i / 4 % 400) / 4)
        }
    }
    let base = RGBAImage(width: 400, height: 260, pixels: px)
    return (0..<36).map { i in
        let zoom = 1 + 0.01 * Double(i)
        let rect = PixelRect(x: 3.7 * Double(i), y: 1.3 * Double(i), width: 284 / zoom, height: 160 / zoom)
        return ColorConversion.yuv420(from: ImageResampler.resample(base, from: rect, width: 284, height: 160))
    }
}()

private func encode(_ frames: [YUVFrame], to url: URL, settings: EncoderSettings) throws -> Data {
    let writer = try MP4Writer(url: url, width: 284, height: 160, withAudio: false, settings: settings)
    for frame in frames { try writer.append(frame) }
    try writer.finish()
    return try Data(contentsOf: url)
}

/// The same frames and settings give the same MP4 bytes, whatever the heap held before (x264's AVX-512 kernels made
/// the output depend on it; `EncoderSettings.deterministic` keeps them out).
@Test(arguments: [0, 4])
func sameFramesEncodeToTheSameBytesWhateverTheHeapHeld(threads: Int) async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let settings = EncoderSettings(threads: threads)
            let plain = try encode(movingNoiseFrames, to: dir.appendingPathComponent("a.mp4"), settings: settings)
            let perturbed = try PerturbedHeap.with(0xA5) {
                try encode(movingNoiseFrames, to: dir.appendingPathComponent("b.mp4"), settings: settings)
            }
            let again = try PerturbedHeap.with(0x3C) {
                try encode(movingNoiseFrames, to: dir.appendingPathComponent("c.mp4"), settings: settings)
            }
            #expect(plain.count > 10_000)
            #expect(plain == perturbed && plain == again, "sizes \(plain.count), \(perturbed.count), \(again.count)")
        }
    }
}
