import Foundation

/// One bird species of a forest: its voice (pitch, sweep, harmonics), its song pattern and where it sits.
struct SoundtrackBirdSpecies {
    enum Sweep: CaseIterable {
        case rising, falling, hook, warble, trill
    }

    var pitch: Double
    var depth: Double
    var sweep: Sweep
    var syllable: Double
    var gap: Double
    var syllables: ClosedRange<Int>
    var callInterval: Double
    var pan: Double
    var level: Double
    var second: Double
    var third: Double

    init(random: inout SoundtrackRandom) {
        pitch = random.uniform(2_300, 5_200)
        depth = random.uniform(0.15, 0.6)
        sweep = Sweep.allCases[random.integer(in: 0...(Sweep.allCases.count - 1))]
        syllable = random.uniform(0.04, 0.12)
        gap = random.uniform(0.03, 0.09)
        let fewest = random.integer(in: 1...3)
        syllables = fewest...(fewest + random.integer(in: 1...4))
        callInterval = random.uniform(1.2, 3.5)
        pan = random.uniform(-0.85, 0.85)
        level = random.uniform(0.35, 1)
        second = random.uniform(0.1, 0.35)
        third = random.uniform(0, 0.15)
    }

    /// Instantaneous frequency at `u` (0…1) through a syllable.
    func frequency(base: Double, at u: Double) -> Double {
        switch sweep {
        case .rising: base * (1 + depth * u)
        case .falling: base * (1 + depth * (1 - u))
        case .hook: base * (1 + depth * sin(Double.pi * u))
        case .warble: base * (1 + 0.5 * depth * sin(2 * Double.pi * 3 * u))
        case .trill: base * (1 + 0.3 * depth * sin(2 * Double.pi * 32 * u * syllable))
        }
    }
}

extension Soundtrack {
    /// Wind in the leaves under birdsong: three to four species per seed, each singing calls of a few frequency-swept
    /// syllables (a fundamental with second and third harmonics) at random intervals from its own place in the stereo
    /// field. Bird levels are absolute, not normalised, so a quiet stretch of the forest stays quiet.
    static func renderForest(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        renderWind(into: &buffer, seed: seed, style: .leaves)
        let leavesRMS = buffer.rms()
        if leavesRMS > 1e-12 { buffer.scale(by: Float(0.3 / leavesRMS)) }

        let duration = Double(frames) / soundtrackSampleRate
        var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.forest, 10))
        let species = (0..<random.integer(in: 3...4)).map { _ in SoundtrackBirdSpecies(random: &random) }
        for bird in species {
            let gains = soundtrackPanGains(bird.pan)
            var time = random.uniform(0, bird.callInterval)
            while time < duration {
                let base = bird.pitch * random.uniform(0.96, 1.04)
                let loudness = bird.level * random.uniform(0.6, 1) * 2.5
                var syllableStart = time
                for _ in 0..<random.integer(in: bird.syllables) {
                    let length = bird.syllable * random.uniform(0.85, 1.15)
                    addSyllable(
                        into: &buffer, bird: bird, base: base, start: syllableStart, length: length,
                        amplitude: Float(loudness), gains: gains)
                    syllableStart += length + bird.gap
                }
                time = syllableStart + random.exponential(mean: bird.callInterval)
            }
        }
    }

    /// One chirp: phase-accumulated sweep, harmonics from the fundamental's sine and cosine (sin 2θ = 2 sin θ cos θ,
    /// sin 3θ = 3 sin θ − 4 sin³ θ) so each sample costs one sin/cos pair, under a sin² envelope. Harmonics that would
    /// pass 20 kHz are left out rather than aliased.
    static func addSyllable(
        into buffer: inout SoundtrackStereoBuffer, bird: SoundtrackBirdSpecies, base: Double, start: Double,
        length: Double, amplitude: Float, gains: (left: Float, right: Float)
    ) {
        let first = Int(start * soundtrackSampleRate)
        let count = Int(length * soundtrackSampleRate)
        guard count > 1, first < buffer.frames else { return }
        let highest = (0...8).map { bird.frequency(base: base, at: Double($0) / 8) }.max() ?? base
        let second = Float(2 * highest < 20_000 ? bird.second : 0)
        let third = Float(3 * highest < 20_000 ? bird.third : 0)
        var phase = 0.0
        for n in 0..<count {
            let u = Double(n) / Double(count - 1)
            phase += 2 * Double.pi * bird.frequency(base: base, at: u) / soundtrackSampleRate
            let s = Float(sin(phase)), c = Float(cos(phase))
            let envelope = Float(sin(Double.pi * u))
            let voice = s + second * 2 * s * c + third * (3 * s - 4 * s * s * s)
            buffer.addPanned(amplitude * envelope * envelope * voice, frame: first + n, gains: gains)
        }
    }
}
