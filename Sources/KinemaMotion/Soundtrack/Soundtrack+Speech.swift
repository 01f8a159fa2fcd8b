import Foundation

// Quoted dialogue in the soundtrack: lines spoken by `SpeechSynthesizer`, over a ducked bed.

extension Soundtrack {
    /// Level of a spoken line (RMS over the line, its pauses included): clearly over the −20 dBFS bed.
    static let speechDBFS = -18.0
    /// How far the ambience bed dips while a line is spoken, and how long the dip takes to come and go.
    static let speechDuckDB = -8.0
    static let speechDuckRampSeconds = 0.08
    /// Silence between two lines that would otherwise run into each other.
    static let speechGapSeconds = 0.3

    /// Speaks the `.speech` events in order, each from its time or after the previous line (whichever is
    /// later), centred in both channels; a line running past the track's end is cut there. Returns the voices
    /// and the spoken spans in frames, or nil when nothing was spoken.
    static func renderSpeech(_ events: [SoundEvent], frames: Int) -> (voice: SoundtrackStereoBuffer, spans: [Range<Int>])? {
        var voice = SoundtrackStereoBuffer(frames: frames)
        var spans: [Range<Int>] = []
        var nextFree = 0
        for event in events {
            guard case .speech(let text) = event.kind, event.time.isFinite, let samples = SpeechSynthesizer.speak(text) else { continue }
            let start = max(Int((max(event.time, 0) * soundtrackSampleRate).rounded()), nextFree)
            let end = min(start + samples.count, frames)
            guard start < end else { continue }
            let power = samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(samples.count)
            guard power > 1e-12 else { continue }
            let gain = Float(decibelsToGain(speechDBFS) / power.squareRoot())
            for i in start..<end {
                let v = samples[i - start] * gain
                voice.left[i] += v
                voice.right[i] += v
            }
            spans.append(start..<end)
            nextFree = end + Int(speechGapSeconds * soundtrackSampleRate)
        }
        return spans.isEmpty ? nil : (voice, spans)
    }

    /// Lowers `mix` by `speechDuckDB` over each span, with raised-cosine ramps just outside it.
    static func duck(_ mix: inout SoundtrackStereoBuffer, under spans: [Range<Int>]) {
        let frames = mix.frames
        var gain = [Float](repeating: 1, count: frames)
        let low = Float(decibelsToGain(speechDuckDB))
        let ramp = max(1, Int(speechDuckRampSeconds * soundtrackSampleRate))
        for span in spans {
            for i in max(0, span.lowerBound - ramp)..<min(frames, span.upperBound + ramp) {
                let g: Float
                if i < span.lowerBound {
                    g = 1 - (1 - low) * Float(0.5 - 0.5 * cos(Double.pi * Double(i - span.lowerBound + ramp) / Double(ramp)))
                } else if i >= span.upperBound {
                    g = low + (1 - low) * Float(0.5 - 0.5 * cos(Double.pi * Double(i - span.upperBound) / Double(ramp)))
                } else {
                    g = low
                }
                gain[i] = min(gain[i], g)
            }
        }
        for i in 0..<frames {
            mix.left[i] *= gain[i]
            mix.right[i] *= gain[i]
        }
    }
}
