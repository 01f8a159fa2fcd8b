import Foundation

/// Planar stereo samples: each bed and effect renders into one, the master stage interleaves at the end.
struct SoundtrackStereoBuffer {
    var left: [Float]
    var right: [Float]

    init(frames: Int) {
        left = [Float](repeating: 0, count: frames)
        right = [Float](repeating: 0, count: frames)
    }

    var frames: Int { left.count }

    mutating func clear() {
        for i in left.indices {
            left[i] = 0
            right[i] = 0
        }
    }

    /// Root mean square over both channels.
    func rms() -> Double {
        guard frames > 0 else { return 0 }
        var sum = 0.0
        for i in 0..<frames {
            let l = Double(left[i]), r = Double(right[i])
            sum += l * l + r * r
        }
        return (sum / Double(2 * frames)).squareRoot()
    }

    /// Adds `other * gain` sample by sample, `other` starting at frame `offset` of this buffer.
    mutating func add(_ other: SoundtrackStereoBuffer, gain: Float, at offset: Int = 0) {
        let start = max(offset, 0)
        let end = min(offset + other.frames, frames)
        guard start < end else { return }
        for i in start..<end {
            left[i] += other.left[i - offset] * gain
            right[i] += other.right[i - offset] * gain
        }
    }

    mutating func scale(by gain: Float) {
        for i in 0..<frames {
            left[i] *= gain
            right[i] *= gain
        }
    }

    /// Runs `body` over one channel's samples (0 left, 1 right) without per-sample bounds checks in release,
    /// which the per-sample synthesis loops need to stay fast.
    mutating func withChannel(_ channel: Int, _ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        if channel == 0 {
            left.withUnsafeMutableBufferPointer { body($0) }
        } else {
            right.withUnsafeMutableBufferPointer { body($0) }
        }
    }

    /// Runs `body` over both channels' samples at once, for loops that write a panned source into each.
    mutating func withChannels(
        _ body: (UnsafeMutableBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void
    ) {
        left.withUnsafeMutableBufferPointer { left in
            right.withUnsafeMutableBufferPointer { right in body(left, right) }
        }
    }

    /// Adds `sample` at `frame` with the given pan gains (see `soundtrackPanGains`), ignoring frames outside.
    @inline(__always)
    mutating func addPanned(_ sample: Float, frame: Int, gains: (left: Float, right: Float)) {
        guard frame >= 0 && frame < frames else { return }
        left[frame] += sample * gains.left
        right[frame] += sample * gains.right
    }
}

/// Constant-power pan gains for a position −1 (left) … 1 (right).
func soundtrackPanGains(_ pan: Double) -> (left: Float, right: Float) {
    let angle = (min(max(pan, -1), 1) + 1) * Double.pi / 4
    return (Float(cos(angle)), Float(sin(angle)))
}

/// Control-rate block length: modulations (filter cutoffs, envelopes) are updated once per block.
let soundtrackBlock = 32
