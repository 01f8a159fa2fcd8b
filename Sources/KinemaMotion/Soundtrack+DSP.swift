import Foundation
import KinemaMedia

// Building blocks of the soundtrack: a seeded PRNG, filters, noise colours and a planar stereo buffer.
// Everything here is internal and prefixed `Soundtrack…` so it cannot clash with the rest of the module.

/// xoshiro256** seeded through SplitMix64: fast, good statistics, and bit-identical on every platform.
struct SoundtrackRandom {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Each part of the mix draws from its own `stream`, so adding an event or a bed never shifts the
    /// random numbers another part sees (a whoosh leaves the ambience bit-identical).
    init(seed: UInt32, stream: UInt64) {
        var state = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 ^ (stream &+ 1) &* 0xD1B5_4A32_D192_ED03
        func splitMix() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix()
        s1 = splitMix()
        s2 = splitMix()
        s3 = splitMix()
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = s3 << 45 | s3 >> 19
        return result
    }

    /// Uniform in [0, 1).
    @inline(__always)
    mutating func unit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in [low, high).
    @inline(__always)
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * unit()
    }

    /// White noise sample, uniform in [-1, 1).
    @inline(__always)
    mutating func noise() -> Float {
        Float(next() >> 40) * 0x1.0p-23 - 1
    }

    /// Waiting time of a Poisson process with the given mean.
    mutating func exponential(mean: Double) -> Double {
        -mean * log(1 - unit())
    }

    mutating func chance(_ probability: Double) -> Bool {
        unit() < probability
    }

    mutating func integer(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}

/// Random-stream identifiers: one per bed and purpose, so each part of the mix has its own numbers.
/// Effects use streams from `1 << 40` up, by event index.
enum SoundtrackStream {
    static func id(_ cue: AmbienceCue, _ purpose: UInt64) -> UInt64 {
        UInt64(AmbienceCue.allCases.firstIndex(of: cue) ?? 0) << 16 | purpose
    }
}

/// Sample rate as a Double, for the filter maths.
let soundtrackSampleRate = Double(AudioTrack.sampleRate)

/// Topology-preserving state-variable filter (Simper): stable while its cutoff moves every block, which the
/// modulated beds (gusts, swells, formant glides, whoosh sweeps) need.
struct SoundtrackSVF {
    private var ic1: Float = 0
    private var ic2: Float = 0
    private var a1: Float = 0
    private var a2: Float = 0
    private var a3: Float = 0
    private(set) var k: Float = 1

    init(cutoff: Double, q: Double) {
        tune(cutoff: cutoff, q: q)
    }

    mutating func tune(cutoff: Double, q: Double) {
        let fc = min(max(cutoff, 10), soundtrackSampleRate * 0.45)
        let g = Float(tan(Double.pi * fc / soundtrackSampleRate))
        k = Float(1 / max(q, 0.1))
        a1 = 1 / (1 + g * (g + k))
        a2 = g * a1
        a3 = g * a2
    }

    @inline(__always)
    private mutating func tick(_ v0: Float) -> (low: Float, band: Float) {
        let v3 = v0 - ic2
        let v1 = a1 * ic1 + a2 * v3
        let v2 = ic2 + a2 * ic1 + a3 * v3
        ic1 = 2 * v1 - ic1
        ic2 = 2 * v2 - ic2
        return (v2, v1)
    }

    @inline(__always)
    mutating func lowpass(_ x: Float) -> Float { tick(x).low }

    /// Band-pass with unity gain at the centre frequency, whatever the Q.
    @inline(__always)
    mutating func bandpass(_ x: Float) -> Float { k * tick(x).band }

    @inline(__always)
    mutating func highpass(_ x: Float) -> Float {
        let (low, band) = tick(x)
        return x - k * band - low
    }
}

/// One-pole low-pass, for smoothing and gentle tone shaping.
struct SoundtrackOnePole {
    private var y: Float = 0
    private let a: Float

    init(cutoff: Double) {
        a = Float(1 - exp(-2 * Double.pi * cutoff / soundtrackSampleRate))
    }

    @inline(__always)
    mutating func lowpass(_ x: Float) -> Float {
        y += a * (x - y)
        return y
    }
}

/// Pink (−3 dB/octave) noise from white, Paul Kellet's refined filter; gain ≈ unity around 1 kHz.
struct SoundtrackPinkNoise {
    private var b0: Float = 0, b1: Float = 0, b2: Float = 0, b3: Float = 0, b4: Float = 0, b5: Float = 0, b6: Float = 0

    @inline(__always)
    mutating func filter(_ white: Float) -> Float {
        b0 = 0.99886 * b0 + white * 0.0555179
        b1 = 0.99332 * b1 + white * 0.0750759
        b2 = 0.96900 * b2 + white * 0.1538520
        b3 = 0.86650 * b3 + white * 0.3104856
        b4 = 0.55000 * b4 + white * 0.5329522
        b5 = -0.7616 * b5 - white * 0.0168980
        let pink = b0 + b1 + b2 + b3 + b4 + b5 + b6 + white * 0.5362
        b6 = white * 0.115926
        return pink * 0.11
    }
}

/// A slow random curve in [0, 1]: random points every `period` seconds joined by smoothstep, for gusts,
/// flicker and level drift. Random access, so left and right can read it with a small time offset.
struct SoundtrackSmoothNoise {
    private let points: [Double]
    private let period: Double

    init(duration: Double, period: Double, random: inout SoundtrackRandom) {
        self.period = period
        let count = Int((max(duration, 0) + 2) / period) + 4
        points = (0..<count).map { _ in random.unit() }
    }

    func value(at time: Double) -> Double {
        let position = max(time + period, 0) / period
        let index = min(Int(position), points.count - 2)
        let f = min(position - Double(index), 1)
        let s = f * f * (3 - 2 * f)
        return points[index] + (points[index + 1] - points[index]) * s
    }
}

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

/// Gain that brings uniform white noise (RMS 1/√3) through a filter of the given noise bandwidth to unit RMS,
/// so the components of a bed can be balanced by intent rather than by their bandwidths.
func soundtrackBandNormaliser(bandwidth: Double) -> Float {
    let nyquist = soundtrackSampleRate / 2
    return Float(3.0.squareRoot() / (min(max(bandwidth, 1), nyquist) / nyquist).squareRoot())
}

/// Noise bandwidth of `SoundtrackSVF.bandpass` (π/2 · centre / Q).
func soundtrackBandpassBandwidth(centre: Double, q: Double) -> Double {
    Double.pi / 2 * centre / q
}

/// Control-rate block length: modulations (filter cutoffs, envelopes) are updated once per block.
let soundtrackBlock = 32

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
