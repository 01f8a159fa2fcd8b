import Foundation

/// Deterministic, order-independent randomness: every value is a pure function of (seed, stream, index),
/// so frames rendered in parallel, in any order, come out identical.
public struct SeededNoise: Sendable, Equatable {
    /// The request's seed.
    public var seed: UInt32

    /// Creates a noise source for one seed.
    public init(seed: UInt32) { self.seed = seed }

    /// A 64-bit hash of (seed, stream, index) (SplitMix64 finaliser over a mixed key).
    @inline(__always)
    public func hash(_ stream: UInt64, _ index: Int) -> UInt64 {
        var z = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 ^ stream &* 0xC2B2_AE3D_27D4_EB4F ^ UInt64(bitPattern: Int64(index)) &* 0x1656_67B1_9E37_79F9
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in 0..<1 for (stream, index).
    @inline(__always)
    public func unit(_ stream: UInt64, _ index: Int) -> Double {
        Double(hash(stream, index) >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniform value in -1..<1 for (stream, index).
    @inline(__always)
    public func signed(_ stream: UInt64, _ index: Int) -> Double {
        unit(stream, index) * 2 - 1
    }

    /// Smooth 1-D value noise in about -1…1: random knots `rate` per second, joined by a C¹ cubic (smoothstep) blend.
    public func smooth(_ stream: UInt64, time: Double, rate: Double) -> Double {
        let x = time * rate
        let i = Int(floor(x))
        let f = x - Double(i)
        let w = f * f * (3 - 2 * f)
        return signed(stream, i) * (1 - w) + signed(stream, i + 1) * w
    }

    /// Two octaves of `smooth`, for organic wobble (handheld, flicker).
    public func fractal(_ stream: UInt64, time: Double, rate: Double) -> Double {
        (smooth(stream, time: time, rate: rate) * 0.7 + smooth(stream &+ 1, time: time, rate: rate * 2.3) * 0.3)
    }
}
