import Foundation

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
