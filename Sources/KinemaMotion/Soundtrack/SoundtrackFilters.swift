import Foundation
import KinemaMedia

// Filters of the soundtrack's beds and effects (internal, prefixed `Soundtrack…` so they cannot clash).

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
