import Foundation

extension Soundtrack {
    /// Look-ahead peak limiter: afterwards no sample of either channel exceeds `ceiling` in magnitude.
    ///
    /// The gain each frame needs is `min(1, ceiling / peak)`. A sliding minimum over ±`attack` frames followed by a
    /// centred box average of half that width gives a smooth gain curve that is provably never above the need
    /// (every value averaged is a minimum over a window containing the frame), so peaks are caught without
    /// overshoot and the gain ramps down over ≈ 5 ms before a transient instead of clipping it. A one-pole release
    /// (≈ 60 ms), again clamped to the smoothed need, lets the gain recover without pumping at the bed's rate.
    static func limitPeaks(_ buffer: inout SoundtrackStereoBuffer, ceiling: Float) {
        let frames = buffer.frames
        guard frames > 0 else { return }
        var need = [Float](repeating: 1, count: frames)
        var anyOver = false
        for i in 0..<frames {
            let peak = max(abs(buffer.left[i]), abs(buffer.right[i]))
            if peak > ceiling {
                need[i] = ceiling / peak
                anyOver = true
            }
        }
        guard anyOver else { return }

        let attack = Int(0.005 * soundtrackSampleRate)
        let floor = slidingMinimum(need, radius: attack)
        let smooth = centredMean(floor, radius: attack / 2)

        let release = Float(1 - exp(-1 / (0.06 * soundtrackSampleRate)))
        var gain: Float = 1
        for i in 0..<frames {
            // Snapping the last 0.001 dB back to unity ends the release exactly, so audio after a limited transient
            // is bit-identical to the same audio without it.
            gain = min(gain > 0.9999 ? 1 : gain + release * (1 - gain), smooth[i])
            // The box mean is computed in Double; the min with `need` absorbs its last-bit rounding.
            let g = min(gain, need[i])
            buffer.left[i] = max(min(buffer.left[i] * g, ceiling), -ceiling)
            buffer.right[i] = max(min(buffer.right[i] * g, ceiling), -ceiling)
        }
    }

    /// Minimum of `values` over [i − radius, i + radius] for every i, in O(n) with a monotonic deque.
    static func slidingMinimum(_ values: [Float], radius: Int) -> [Float] {
        let count = values.count
        var result = [Float](repeating: 1, count: count)
        var deque = [Int](repeating: 0, count: count + radius + 1)
        var head = 0, tail = 0
        var next = 0
        for i in 0..<count {
            let windowEnd = min(i + radius, count - 1)
            while next <= windowEnd {
                while tail > head && values[deque[tail - 1]] >= values[next] { tail -= 1 }
                deque[tail] = next
                tail += 1
                next += 1
            }
            while deque[head] < i - radius { head += 1 }
            result[i] = values[deque[head]]
        }
        return result
    }

    /// Mean of `values` over [i − radius, i + radius] for every i, the window shrunk at the edges.
    static func centredMean(_ values: [Float], radius: Int) -> [Float] {
        let count = values.count
        var prefix = [Double](repeating: 0, count: count + 1)
        for i in 0..<count { prefix[i + 1] = prefix[i] + Double(values[i]) }
        var result = [Float](repeating: 1, count: count)
        for i in 0..<count {
            let low = max(i - radius, 0), high = min(i + radius, count - 1)
            result[i] = Float((prefix[high + 1] - prefix[low]) / Double(high - low + 1))
        }
        return result
    }
}
