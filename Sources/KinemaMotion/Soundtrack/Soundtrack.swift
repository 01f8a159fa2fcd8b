import Foundation
import KinemaMedia

/// The built-in engine's procedural soundtrack: ambience beds chosen from the prompt plus effects tied to the picture.
///
/// Levels (RMS over both channels):
/// - The ambience bed is normalised to **−20 dBFS** over the whole track (`bedTargetDBFS`). A track whose only cue
///   is `.roomTone` is normalised to **−30 dBFS** instead (`roomToneTargetDBFS`): a room should be barely there.
/// - Effects sit on top of the bed at fixed levels, measured over each effect's own length: a whoosh from −24 dBFS
///   (intensity 0) to −17 dBFS (intensity 1, ≈ −13 dBFS at its peak), a cut swish −20 dBFS; so a fast move is
///   equally audible over rain or over room tone. A track with events is therefore louder than its bed.
/// - Quoted dialogue (`.speech` events) is spoken by eSpeak NG at **−18 dBFS** over each line, centred; the bed
///   dips by 8 dB under each line (80 ms ramps). Lines never overlap (0.3 s apart at least) and stop at the end.
/// - Peaks: the mix is band-limited at 15 kHz and a look-ahead limiter (5 ms attack, ≈ 60 ms release) keeps every
///   sample at or below **−3 dBFS** (`ceilingDBFS`). The 2 dB below the −1 dBFS promise are for AAC: decoding a
///   128 kbps encode overshoots the PCM peaks by up to ≈ 1.5 dB on dense, limited content, so the decoded MP4 track
///   stays under −1 dBFS too. The bed is normalised and limited in rounds until its limited RMS is on target
///   (±0.15 dB); the final fades and limiting move a track without events by < 0.1 dB.
///
/// Deterministic: every random choice comes from xoshiro256** streams seeded by `seed`, so the same inputs give
/// bit-identical samples (on one platform: the C library's sin/exp/tan may differ in the last bit elsewhere).
/// Each bed and each event draws from its own stream, so vetoing a bed or adding an event leaves the rest of the
/// sound unchanged, apart from the bed mix's normalisation.
public enum Soundtrack {
    static let bedTargetDBFS = -20.0
    static let roomToneTargetDBFS = -30.0
    static let ceilingDBFS = -3.0
    static let fadeInSeconds = 0.04
    static let fadeOutSeconds = 0.12

    /// Synthesizes the whole track: exactly Int((durationSeconds * 48000).rounded()) stereo frames.
    ///
    /// A non-finite or non-positive duration gives an empty track. Events outside the track are heard only
    /// as far as they reach into it.
    public static func synthesize(
        prompt: String, negativePrompt: String?, durationSeconds: Double, events: [SoundEvent], seed: UInt32
    ) -> AudioTrack {
        let frames =
            durationSeconds.isFinite && durationSeconds > 0
            ? Int((durationSeconds * Double(AudioTrack.sampleRate)).rounded()) : 0
        guard frames > 0 else { return AudioTrack(samples: []) }
        let cues = cues(prompt: prompt, negativePrompt: negativePrompt)

        var mix = renderBedMix(cues: cues, frames: frames, seed: seed)
        let speech = renderSpeech(events, frames: frames)
        if let speech { duck(&mix, under: speech.spans) }
        renderEffects(events, into: &mix, seed: seed)
        if let speech { mix.add(speech.voice, gain: 1) }
        applyFades(&mix)
        limitPeaks(&mix, ceiling: Float(decibelsToGain(ceilingDBFS)))
        return AudioTrack(samples: interleave(mix))
    }

    /// Relative level of each bed in a mix, in dB, each bed first brought to unit RMS.
    static func mixLevelDB(_ cue: AmbienceCue) -> Double {
        switch cue {
        case .wind, .rain, .water: 0
        case .fire: -1
        case .forest, .city, .crowd: -2
        case .roomTone: -14
        }
    }

    /// Renders every cue's bed at unit RMS, mixes them at their relative levels and normalises the sum.
    static func renderBedMix(cues: [AmbienceCue], frames: Int, seed: UInt32) -> SoundtrackStereoBuffer {
        var mix = SoundtrackStereoBuffer(frames: frames)
        guard !cues.isEmpty else { return mix }
        var scratch = SoundtrackStereoBuffer(frames: frames)
        for cue in cues {
            scratch.clear()
            renderBed(cue, into: &scratch, seed: seed)
            let rms = scratch.rms()
            guard rms > 1e-12 else { continue }
            mix.add(scratch, gain: Float(decibelsToGain(mixLevelDB(cue)) / rms))
        }
        bandLimit(&mix)
        // Peaky beds (fire crackle) lose RMS when limited, so normalise and limit until the limited bed sits on its
        // target within 0.15 dB (two rounds for a crackling fire, one for a smooth bed).
        let target = decibelsToGain(cues == [.roomTone] ? roomToneTargetDBFS : bedTargetDBFS)
        let ceiling = Float(decibelsToGain(ceilingDBFS))
        for _ in 0..<4 {
            let rms = mix.rms()
            guard rms > 1e-12, abs(20 * log10(rms / target)) > 0.15 else { break }
            mix.scale(by: Float(target / rms))
            limitPeaks(&mix, ceiling: ceiling)
        }
        return mix
    }

    /// Dispatches to the bed's synthesizer; each bed owns its own random streams.
    static func renderBed(_ cue: AmbienceCue, into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        switch cue {
        case .wind: renderWind(into: &buffer, seed: seed, style: .open)
        case .rain: renderRain(into: &buffer, seed: seed)
        case .water: renderWater(into: &buffer, seed: seed)
        case .fire: renderFire(into: &buffer, seed: seed)
        case .forest: renderForest(into: &buffer, seed: seed)
        case .city: renderCity(into: &buffer, seed: seed)
        case .crowd: renderCrowd(into: &buffer, seed: seed)
        case .roomTone: renderRoomTone(into: &buffer, seed: seed)
        }
    }

    /// A 15 kHz low-pass before limiting. AAC encoders cut around 16 kHz; content above that (sharp crackle and
    /// droplet onsets) would otherwise ring back into peaks above the limiter's ceiling after decoding. The bed and
    /// each effect are filtered apart (the filter is linear), so an effect leaves the bed bit-identical outside it.
    static func bandLimit(_ buffer: inout SoundtrackStereoBuffer) {
        // Fourth-order Butterworth as two SVF sections; both channels in one loop so their independent
        // recursions overlap in the CPU instead of running back to back.
        var first = (SoundtrackSVF(cutoff: 15_000, q: 0.541), SoundtrackSVF(cutoff: 15_000, q: 0.541))
        var second = (SoundtrackSVF(cutoff: 15_000, q: 1.307), SoundtrackSVF(cutoff: 15_000, q: 1.307))
        buffer.left.withUnsafeMutableBufferPointer { left in
            buffer.right.withUnsafeMutableBufferPointer { right in
                for i in left.indices {
                    left[i] = second.0.lowpass(first.0.lowpass(left[i]))
                    right[i] = second.1.lowpass(first.1.lowpass(right[i]))
                }
            }
        }
    }

    /// Short raised-cosine fades so the track neither starts nor stops with a click.
    static func applyFades(_ buffer: inout SoundtrackStereoBuffer) {
        let frames = buffer.frames
        let rate = Double(AudioTrack.sampleRate)
        let fadeIn = min(Int(fadeInSeconds * rate), frames / 4)
        let fadeOut = min(Int(fadeOutSeconds * rate), frames / 4)
        for i in 0..<fadeIn {
            let g = Float(0.5 - 0.5 * cos(Double.pi * Double(i) / Double(fadeIn)))
            buffer.left[i] *= g
            buffer.right[i] *= g
        }
        for i in 0..<fadeOut {
            let g = Float(0.5 - 0.5 * cos(Double.pi * Double(i) / Double(fadeOut)))
            let frame = frames - 1 - i
            buffer.left[frame] *= g
            buffer.right[frame] *= g
        }
    }

    static func interleave(_ buffer: SoundtrackStereoBuffer) -> [Float] {
        var samples = [Float](repeating: 0, count: buffer.frames * 2)
        for i in 0..<buffer.frames {
            samples[2 * i] = buffer.left[i]
            samples[2 * i + 1] = buffer.right[i]
        }
        return samples
    }

    static func decibelsToGain(_ decibels: Double) -> Double {
        pow(10, decibels / 20)
    }
}
