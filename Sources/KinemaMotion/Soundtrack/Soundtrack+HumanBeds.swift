import Foundation
import KinemaMedia

extension Soundtrack {
    // MARK: city

    /// A low traffic rumble and engine drone, cars passing in the distance (noise bands that swell, pan across
    /// and drop in pitch as they pass, like a Doppler shift), and now and then a distant two-tone horn; cars and
    /// horns share a small reverberant space.
    static func renderCity(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        let duration = Double(frames) / soundtrackSampleRate
        let rumbleNorm = soundtrackBandNormaliser(bandwidth: 1.11 * 120)
        let droneNorm = soundtrackBandNormaliser(bandwidth: soundtrackBandpassBandwidth(centre: 350, q: 0.5))
        for channel in 0..<2 {
            var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.city, 2 + UInt64(channel)))
            var pink = SoundtrackPinkNoise()
            var rumble = SoundtrackSVF(cutoff: 120, q: 0.707)
            var drone = SoundtrackSVF(cutoff: 350, q: 0.5)
            buffer.withChannel(channel) { out in
                for i in 0..<frames {
                    let n = random.noise()
                    out[i] += rumbleNorm * rumble.lowpass(n) + 0.35 * droneNorm * drone.bandpass(pink.filter(n) * 4)
                }
            }
        }
        let bedRMS = buffer.rms()

        var traffic = SoundtrackStereoBuffer(frames: frames)
        var cars = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.city, 10))
        var time = -cars.uniform(2, 6)
        while time < duration {
            addPassingCar(into: &traffic, start: time, random: &cars)
            time += cars.exponential(mean: 2.2)
        }
        let trafficRMS = traffic.rms()
        if trafficRMS > 1e-12 { traffic.scale(by: Float(0.8 * bedRMS / trafficRMS)) }

        var horns = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.city, 20))
        time = horns.exponential(mean: 7)
        while time < duration {
            let pitch = horns.uniform(330, 480)
            let pan = horns.uniform(-0.9, 0.9)
            let level = Float(horns.uniform(0.25, 0.6)) * Float(bedRMS)
            let honks = horns.chance(0.35) ? 2 : 1
            var start = time
            for _ in 0..<honks {
                let length = horns.uniform(0.18, 0.55)
                addHorn(into: &traffic, start: start, length: length, pitch: pitch, pan: pan, level: level)
                start += length + horns.uniform(0.08, 0.15)
            }
            time = start + horns.exponential(mean: 7)
        }
        // Cars and horns echo between buildings; the rumble is already diffuse.
        SoundtrackRoom.apply(to: &traffic, wet: 0.35, size: 0.8)
        buffer.add(traffic, gain: 1)
    }

    /// One car: band-passed noise under a bell envelope, its band falling ≈ 25 % as it passes (Doppler) and its
    /// pan moving from one side to the other.
    static func addPassingCar(into buffer: inout SoundtrackStereoBuffer, start: Double, random: inout SoundtrackRandom) {
        let length = random.uniform(3.5, 8)
        let peak = random.uniform(0.4, 1)
        let direction = random.chance(0.5) ? 1.0 : -1.0
        let centre = random.uniform(450, 900)
        var noise = SoundtrackRandom(seed: UInt32(truncatingIfNeeded: random.next()), stream: 0)
        var band = SoundtrackSVF(cutoff: centre, q: 0.9)
        var tyres = SoundtrackSVF(cutoff: 2_500, q: 0.7)
        let first = max(Int(start * soundtrackSampleRate), 0)
        let last = min(Int((start + length) * soundtrackSampleRate), buffer.frames)
        guard first < last else { return }
        buffer.withChannels { left, right in
            var block = first
            var envelope: Float = 0
            while block < last {
                let end = min(block + soundtrackBlock, last)
                let u = (Double(end) / soundtrackSampleRate - start) / length
                let x = (u - 0.5) / 0.2
                let target = Float(peak * exp(-x * x))
                let step = (target - envelope) / Float(end - block)
                let doppler = 1 + 0.12 * tanh(-3 * (u - 0.5))
                band.tune(cutoff: centre * doppler, q: 0.9)
                let gains = soundtrackPanGains(direction * (2 * u - 1) * 0.85)
                for i in block..<end {
                    envelope += step
                    let n = noise.noise()
                    let sample = envelope * (band.bandpass(n) + 0.25 * tyres.bandpass(n))
                    left[i] += sample * gains.left
                    right[i] += sample * gains.right
                }
                block = end
            }
        }
    }

    /// A distant horn: two tones a major third apart (5:4), six harmonics each falling 1/n like a brassy reed,
    /// with a 10 ms attack and 40 ms release.
    static func addHorn(
        into buffer: inout SoundtrackStereoBuffer, start: Double, length: Double, pitch: Double, pan: Double, level: Float
    ) {
        let first = Int(start * soundtrackSampleRate)
        let count = Int(length * soundtrackSampleRate)
        let gains = soundtrackPanGains(pan)
        let attack = 0.01 * soundtrackSampleRate, release = 0.04 * soundtrackSampleRate
        var distance = SoundtrackOnePole(cutoff: 2_000)
        for n in 0..<count {
            let t = Double(n) / soundtrackSampleRate
            let envelope = min(Double(n) / attack, Double(count - n) / release, 1)
            var tone = 0.0
            for harmonic in 1...6 {
                let h = Double(harmonic)
                tone += (sin(2 * Double.pi * pitch * h * t) + sin(2 * Double.pi * pitch * 1.25 * h * t)) / h
            }
            let sample = distance.lowpass(Float(tone * envelope * 0.35)) * level
            buffer.addPanned(sample, frame: first + n, gains: gains)
        }
    }

    // MARK: crowd

    /// Babble: fourteen voices, each a glottal-like sawtooth (plus breath noise) at its own drifting pitch through
    /// three formant band-passes that glide from vowel to vowel syllable by syllable, talking in spurts with pauses,
    /// each at its own place in the stereo field, in a shared room, over a soft murmur band.
    static func renderCrowd(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        let duration = Double(frames) / soundtrackSampleRate
        var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.crowd, 1))
        var voices = SoundtrackStereoBuffer(frames: frames)
        for voice in 0..<14 {
            addVoice(into: &voices, duration: duration, seed: seed, voice: UInt64(voice), random: &random)
        }
        SoundtrackRoom.apply(to: &voices, wet: 0.3, size: 0.6)
        let voicesRMS = voices.rms()
        if voicesRMS > 1e-12 { voices.scale(by: Float(1 / voicesRMS)) }

        let murmurNorm = soundtrackBandNormaliser(bandwidth: soundtrackBandpassBandwidth(centre: 500, q: 0.5))
        for channel in 0..<2 {
            var noise = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.crowd, 2 + UInt64(channel)))
            var murmur = SoundtrackSVF(cutoff: 500, q: 0.5)
            buffer.withChannel(channel) { out in
                for i in 0..<frames {
                    out[i] += 0.35 * murmurNorm * murmur.bandpass(noise.noise())
                }
            }
        }
        buffer.add(voices, gain: 1)
    }

    /// First two formants (Hz) of a few vowels of an adult male voice; other voices scale them.
    private static let vowelFormants: [(Double, Double)] = [
        (730, 1_090), (530, 1_840), (270, 2_290), (570, 840), (300, 870), (660, 1_720), (640, 1_190), (490, 1_350),
    ]

    static func addVoice(
        into buffer: inout SoundtrackStereoBuffer, duration: Double, seed: UInt32, voice: UInt64,
        random: inout SoundtrackRandom
    ) {
        let frames = buffer.frames
        let higher = random.chance(0.5)
        let pitch = higher ? random.uniform(170, 250) : random.uniform(90, 140)
        let formantScale = higher ? random.uniform(1.1, 1.2) : random.uniform(0.95, 1.05)
        let gains = soundtrackPanGains(random.uniform(-0.9, 0.9))
        let level = Float(random.uniform(0.35, 1))
        var syllables: [(start: Double, end: Double, vowel: Int)] = []
        var cursor = -random.uniform(0, 2)
        while cursor < duration {
            let spurtEnd = cursor + random.uniform(0.8, 3.5)
            while cursor < spurtEnd {
                let length = random.uniform(0.11, 0.26)
                syllables.append((cursor, cursor + length, random.integer(in: 0...(vowelFormants.count - 1))))
                cursor += length
            }
            cursor += random.uniform(0.25, 1.8)
        }
        var curveRandom = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.crowd, 100 + voice))
        let intonation = SoundtrackSmoothNoise(duration: duration + 1, period: 0.5, random: &curveRandom)
        var noise = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.crowd, 200 + voice))

        var f1 = SoundtrackSVF(cutoff: 500, q: 6), f2 = SoundtrackSVF(cutoff: 1_500, q: 8)
        var f3 = SoundtrackSVF(cutoff: 2_600 * formantScale, q: 8)
        var glottis = SoundtrackOnePole(cutoff: 1_500)
        var smoothF1 = 500.0, smoothF2 = 1_500.0
        let glide = 1 - exp(-Double(soundtrackBlock) / (0.03 * soundtrackSampleRate))
        var phase = 0.0
        var amp: Float = 0
        var current = 0
        buffer.withChannels { left, right in
            var start = 0
            while start < frames {
                let end = min(start + soundtrackBlock, frames)
                let t = Double(end) / soundtrackSampleRate
                while current < syllables.count && syllables[current].end <= t { current += 1 }
                var target: Float = 0
                if current < syllables.count && syllables[current].start <= t {
                    let syllable = syllables[current]
                    let u = (t - syllable.start) / (syllable.end - syllable.start)
                    target = Float(sin(Double.pi * u)) * level
                    let formants = vowelFormants[syllable.vowel]
                    smoothF1 += glide * (formants.0 * formantScale - smoothF1)
                    smoothF2 += glide * (formants.1 * formantScale - smoothF2)
                }
                if target == 0 && amp == 0 {
                    start = end
                    continue
                }
                f1.tune(cutoff: smoothF1, q: 6)
                f2.tune(cutoff: smoothF2, q: 8)
                let increment = pitch * (0.85 + 0.3 * intonation.value(at: t)) / soundtrackSampleRate
                let step = (target - amp) / Float(end - start)
                for i in start..<end {
                    amp += step
                    phase += increment
                    if phase >= 1 { phase -= 1 }
                    let source = glottis.lowpass(Float(2 * phase - 1)) + 0.15 * noise.noise()
                    let sample = amp * (f1.bandpass(source) + 0.6 * f2.bandpass(source) + 0.25 * f3.bandpass(source))
                    left[i] += sample * gains.left
                    right[i] += sample * gains.right
                }
                if target == 0 { amp = 0 }
                start = end
            }
        }
    }

    // MARK: room tone

    /// Very quiet pinkish air (independent per channel), a faint ventilation band, and a mains hum at 50 Hz with
    /// its second and third harmonics, identical in both channels as real hum is. Its mix level is 14 dB under the
    /// other beds and, alone, the track is normalised to −30 dBFS rather than −20.
    static func renderRoomTone(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        let airNorm = soundtrackBandNormaliser(bandwidth: 1.3 * 2_500)
        let ventNorm = soundtrackBandNormaliser(bandwidth: soundtrackBandpassBandwidth(centre: 180, q: 0.8))
        for channel in 0..<2 {
            var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.roomTone, 2 + UInt64(channel)))
            var pink = SoundtrackPinkNoise()
            var air = SoundtrackSVF(cutoff: 2_500, q: 0.6)
            var vent = SoundtrackSVF(cutoff: 180, q: 0.8)
            buffer.withChannel(channel) { out in
                for i in 0..<frames {
                    let n = random.noise()
                    out[i] += airNorm * air.lowpass(pink.filter(n) * 3) + 0.4 * ventNorm * vent.bandpass(n)
                }
            }
        }
        let noiseRMS = buffer.rms()
        // A rotating phasor gives the fundamental's sin and cos without trigonometry per sample; the harmonics follow
        // from them. It is re-derived every second so rounding cannot drift its amplitude.
        let omega = 2 * Double.pi * 50 / soundtrackSampleRate
        let rotation = (cos: cos(omega), sin: sin(omega))
        var s = 0.0, c = 1.0
        for i in 0..<frames {
            if i % AudioTrack.sampleRate == 0 {
                s = sin(omega * Double(i))
                c = cos(omega * Double(i))
            }
            let hum = Float((s + 0.5 * 2 * s * c + 0.3 * (3 * s - 4 * s * s * s)) * 0.35 * noiseRMS)
            buffer.left[i] += hum
            buffer.right[i] += hum
            (s, c) = (s * rotation.cos + c * rotation.sin, c * rotation.cos - s * rotation.sin)
        }
    }
}
