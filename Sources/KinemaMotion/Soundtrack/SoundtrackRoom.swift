import Foundation

/// A small Schroeder/Moorer room (Freeverb's layout: four damped feedback combs and two all-passes per channel,
/// the right channel's delays offset): it puts voices and traffic in a shared space instead of a dry void, and
/// its tails differ between channels, which widens the image.
enum SoundtrackRoom {
    /// One delay line inside a shared scratch allocation; a raw pointer so the per-sample loop has no array
    /// uniqueness or bounds checks (this runs six times per sample per channel).
    private struct Line {
        let base: UnsafeMutablePointer<Float>
        let length: Int
        var index = 0
        var store: Float = 0

        @inline(__always)
        mutating func comb(_ input: Float, feedback: Float, damping: Float) -> Float {
            let output = base[index]
            store = output * (1 - damping) + store * damping
            base[index] = input + store * feedback
            index = index + 1 == length ? 0 : index + 1
            return output
        }

        @inline(__always)
        mutating func allPass(_ input: Float) -> Float {
            let delayed = base[index]
            base[index] = input + delayed * 0.5
            index = index + 1 == length ? 0 : index + 1
            return delayed - input
        }
    }

    /// Adds the room's response to `buffer` at `wet` relative to the dry signal; `size` 0…1 sets the decay.
    static func apply(to buffer: inout SoundtrackStereoBuffer, wet: Float, size: Double) {
        let scale = soundtrackSampleRate / 44_100
        let feedback = Float(0.7 + 0.28 * min(max(size, 0), 1))
        let damping: Float = 0.25
        let frames = buffer.frames
        // A tiny Nyquist-rate dither keeps the feedback lines out of subnormal floats in silent stretches.
        var input = [Float](repeating: 0, count: frames)
        for i in 0..<frames {
            let dither: Float = i & 1 == 0 ? 1e-15 : -1e-15
            input[i] = (buffer.left[i] + buffer.right[i]) * 0.015 + dither
        }
        for channel in 0..<2 {
            let spread = channel * 23
            let lengths = [1_116, 1_188, 1_277, 1_356, 556, 441].map { Int(Double($0 + spread) * scale) }
            var memory = [Float](repeating: 0, count: lengths.reduce(0, +))
            memory.withUnsafeMutableBufferPointer { memory in
                guard let start = memory.baseAddress else { return }
                var offset = 0
                let lines = lengths.map { length -> Line in
                    defer { offset += length }
                    return Line(base: start + offset, length: length)
                }
                var (c0, c1, c2, c3, a0, a1) = (lines[0], lines[1], lines[2], lines[3], lines[4], lines[5])
                input.withUnsafeBufferPointer { input in
                    buffer.withChannel(channel) { out in
                        for i in 0..<frames {
                            let x = input[i]
                            var sum = c0.comb(x, feedback: feedback, damping: damping)
                            sum += c1.comb(x, feedback: feedback, damping: damping)
                            sum += c2.comb(x, feedback: feedback, damping: damping)
                            sum += c3.comb(x, feedback: feedback, damping: damping)
                            out[i] += wet * 3 * a1.allPass(a0.allPass(sum))
                        }
                    }
                }
            }
        }
    }
}
