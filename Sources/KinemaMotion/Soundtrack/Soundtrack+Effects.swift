import Foundation

/// Something in the picture that the soundtrack reacts to.
public struct SoundEvent: Sendable, Equatable {
    /// What happens in the picture.
    public enum Kind: Sendable, Equatable {
        /// A fast camera move; `intensity` 0…1 (clamped) sets the whoosh's length (0.35–1.2 s), pitch and level.
        case whoosh(intensity: Double)
        /// A hard cut between shots: a short, soft swish that lands on the cut.
        case cut
        /// A line of dialogue, spoken by eSpeak NG from `time`, or as soon as the previous line has ended.
        case speech(String)
    }

    /// Seconds from the start of the track: the whoosh peaks, the cut swish lands, a line starts, at this time.
    public var time: Double
    /// What happens.
    public var kind: Kind

    /// An event at `time` seconds.
    public init(time: Double, kind: Kind) {
        self.time = time
        self.kind = kind
    }
}

extension Soundtrack {
    static let whooshLoudDBFS = -17.0
    static let whooshQuietDBFS = -24.0
    static let cutDBFS = -20.0

    /// Adds every event at its fixed level (RMS over the event's own length), independent of the bed's level.
    /// Each event has its own random stream (by its index), so events never disturb the ambience or each other.
    static func renderEffects(_ events: [SoundEvent], into mix: inout SoundtrackStereoBuffer, seed: UInt32) {
        let duration = Double(mix.frames) / soundtrackSampleRate
        // Effects last at most 1.2 s around their time; events further outside cannot be heard.
        for (index, event) in events.enumerated() where event.time > -2 && event.time < duration + 2 {
            var random = SoundtrackRandom(seed: seed, stream: 1 << 40 | UInt64(index))
            let rendered: (segment: SoundtrackStereoBuffer, start: Double, level: Double)
            switch event.kind {
            case .whoosh(let intensity):
                let strength = intensity.isFinite ? min(max(intensity, 0), 1) : 0
                let length = 0.35 + 0.85 * strength
                let level = whooshQuietDBFS + (whooshLoudDBFS - whooshQuietDBFS) * strength
                rendered = (
                    whoosh(length: length, strength: strength, random: &random),
                    event.time - whooshPeak * length, level
                )
            case .cut:
                rendered = (cutSwish(random: &random), event.time - cutLead, cutDBFS)
            case .speech:
                continue // mixed by `renderSpeech`, over the ducked bed
            }
            var segment = rendered.segment
            bandLimit(&segment)
            let rms = segment.rms()
            guard rms > 1e-12 else { continue }
            segment.scale(by: Float(decibelsToGain(rendered.level) / rms))
            mix.add(segment, gain: 1, at: Int((rendered.start * soundtrackSampleRate).rounded()))
        }
    }

    /// Where in its length a whoosh peaks: it builds for 55 % and falls away faster.
    static let whooshPeak = 0.55

    /// Band-passed noise whose centre rises from 250 Hz to 1.8–4.5 kHz (higher when stronger) at the peak and falls
    /// to 350 Hz, under a sin² swell, with a low body under it, panned across the stereo field as it passes.
    static func whoosh(length: Double, strength: Double, random: inout SoundtrackRandom) -> SoundtrackStereoBuffer {
        let count = max(Int(length * soundtrackSampleRate), 2)
        var segment = SoundtrackStereoBuffer(frames: count)
        let low = 250.0, high = 1_800 + 2_700 * strength, end = 350.0
        let direction = random.chance(0.5) ? 1.0 : -1.0
        let q = 1.6
        let bodyLevel = 0.5 * soundtrackBandNormaliser(bandwidth: 1.11 * 180)
        var noise = (
            left: SoundtrackRandom(seed: UInt32(truncatingIfNeeded: random.next()), stream: 1),
            right: SoundtrackRandom(seed: UInt32(truncatingIfNeeded: random.next()), stream: 2)
        )
        var band = (left: SoundtrackSVF(cutoff: low, q: q), right: SoundtrackSVF(cutoff: low, q: q))
        var body = (left: SoundtrackSVF(cutoff: 180, q: 0.7), right: SoundtrackSVF(cutoff: 180, q: 0.7))
        var start = 0
        while start < count {
            let blockEnd = min(start + soundtrackBlock, count)
            let u = Double(start) / Double(count - 1)
            let centre: Double
            let envelope: Double
            if u < whooshPeak {
                let x = u / whooshPeak
                centre = low * pow(high / low, x * x * (3 - 2 * x))
                envelope = pow(sin(Double.pi / 2 * x), 2)
            } else {
                let x = (u - whooshPeak) / (1 - whooshPeak)
                centre = high * pow(end / high, x * x * (3 - 2 * x))
                envelope = pow(cos(Double.pi / 2 * x), 2)
            }
            band.left.tune(cutoff: centre, q: q)
            band.right.tune(cutoff: centre, q: q)
            let norm = soundtrackBandNormaliser(bandwidth: soundtrackBandpassBandwidth(centre: centre, q: q))
            let gains = soundtrackPanGains(direction * (-0.7 + 1.4 * u))
            let amp = Float(envelope)
            for i in start..<blockEnd {
                let l = noise.left.noise(), r = noise.right.noise()
                segment.left[i] = amp * gains.left * (norm * band.left.bandpass(l) + bodyLevel * body.left.lowpass(l))
                segment.right[i] = amp * gains.right * (norm * band.right.bandpass(r) + bodyLevel * body.right.lowpass(r))
            }
            start = blockEnd
        }
        return segment
    }

    /// Seconds of a cut swish before the cut itself.
    static let cutLead = 0.09

    /// A short swish that swells for 90 ms into the cut and decays over ≈ 0.2 s after it (noise falling from
    /// 1.4 kHz to 700 Hz), with a soft low thump on the cut (a decaying 70 → 45 Hz sine).
    static func cutSwish(random: inout SoundtrackRandom) -> SoundtrackStereoBuffer {
        let lead = Int(cutLead * soundtrackSampleRate)
        let count = lead + Int(0.22 * soundtrackSampleRate)
        var segment = SoundtrackStereoBuffer(frames: count)
        var noise = (
            left: SoundtrackRandom(seed: UInt32(truncatingIfNeeded: random.next()), stream: 1),
            right: SoundtrackRandom(seed: UInt32(truncatingIfNeeded: random.next()), stream: 2)
        )
        var band = (left: SoundtrackSVF(cutoff: 1_400, q: 1.2), right: SoundtrackSVF(cutoff: 1_400, q: 1.2))
        var thumpPhase = 0.0
        var start = 0
        while start < count {
            let blockEnd = min(start + soundtrackBlock, count)
            let centre = 1_400 * pow(0.5, Double(start) / Double(count))
            band.left.tune(cutoff: centre, q: 1.2)
            band.right.tune(cutoff: centre, q: 1.2)
            for i in start..<blockEnd {
                let envelope: Float
                var thump: Float = 0
                if i < lead {
                    let x = Float(i) / Float(lead)
                    envelope = x * x
                } else {
                    let after = Double(i - lead) / soundtrackSampleRate
                    envelope = Float(exp(-after / 0.06))
                    thumpPhase += 2 * Double.pi * (45 + 25 * exp(-after / 0.05)) / soundtrackSampleRate
                    thump = Float(sin(thumpPhase) * exp(-after / 0.08)) * 0.5
                }
                segment.left[i] = envelope * band.left.bandpass(noise.left.noise()) + thump
                segment.right[i] = envelope * band.right.bandpass(noise.right.noise()) + thump
            }
            start = blockEnd
        }
        return segment
    }
}
