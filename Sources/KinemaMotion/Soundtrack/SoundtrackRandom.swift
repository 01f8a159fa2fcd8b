import Foundation

/// Sequential draws for the soundtrack: xoshiro256** whose state is taken from `SeededNoise`, the module's one
/// seeded family (pure (seed, stream, index) hashes), so picture and sound randomness share one definition.
/// Fast, good statistics, and bit-identical on every platform.
struct SoundtrackRandom {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Each part of the mix draws from its own `stream`, so adding an event or a bed never shifts the
    /// random numbers another part sees (a whoosh leaves the ambience bit-identical).
    init(seed: UInt32, stream: UInt64) {
        let noise = SeededNoise(seed: seed)
        s0 = noise.hash(stream, 0)
        s1 = noise.hash(stream, 1)
        s2 = noise.hash(stream, 2)
        s3 = noise.hash(stream, 3)
        // xoshiro's one forbidden state; four independent 64-bit hashes are all zero with probability 2^-256.
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }
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
