import Foundation
import KinemaMedia
import KinemaMotion
import KinemaTestSupport
import Testing

@Suite("Soundtrack synthesis")
struct SoundtrackTests {
    private static let bedPrompts: [(String, AmbienceCue)] = [
        ("wind", .wind), ("rain", .rain), ("ocean", .water), ("fire", .fire), ("forest", .forest),
        ("city", .city), ("crowd", .crowd), ("a portrait", .roomTone),
    ]

    @Test(arguments: [(3.0, 144_000), (5.0, 240_000), (15.0, 720_000), (2.51, 120_480), (1.0 / 24, 2_000)])
    func trackHasExactlyTheRequestedLength(seconds: Double, frames: Int) async throws {
        try await offPool {
            let track = Soundtrack.synthesize(
                prompt: "rain", negativePrompt: nil, durationSeconds: seconds, events: [], seed: 1)
            #expect(track.frameCount == frames)
            #expect(track.samples.count == 2 * frames)
        }
    }

    @Test(arguments: [0.0, -2.0, Double.nan, Double.infinity])
    func nonPositiveOrNonFiniteDurationGivesAnEmptyTrack(seconds: Double) async throws {
        try await offPool {
            let track = Soundtrack.synthesize(
                prompt: "rain", negativePrompt: nil, durationSeconds: seconds, events: [], seed: 1)
            #expect(track.frameCount == 0)
        }
    }

    @Test(arguments: bedPrompts)
    func everyBedIsAudibleNormalisedUnclippedAndWide(prompt: String, cue: AmbienceCue) async throws {
        try await offPool {
            #expect(Soundtrack.cues(prompt: prompt, negativePrompt: nil) == [cue])
            let track = Soundtrack.synthesize(prompt: prompt, negativePrompt: nil, durationSeconds: 3, events: [], seed: 11)
            let level = SoundtrackProbe.decibels(SoundtrackProbe.rms(track.samples))
            let target = cue == .roomTone ? -30.0 : -20.0
            #expect(abs(level - target) <= 1, "\(prompt): RMS \(level) dBFS, target \(target)")
            #expect(SoundtrackProbe.decibels(SoundtrackProbe.peak(track.samples)) <= -1)
            #expect(track.samples.allSatisfy { $0.isFinite })
            // Width: each channel has its own noise, so left and right are far from identical.
            let left = SoundtrackProbe.channel(track, 0), right = SoundtrackProbe.channel(track, 1)
            let correlation = SoundtrackProbe.correlation(left, right)
            #expect(correlation < 0.9, "\(prompt): left/right correlation \(correlation)")
        }
    }

    @Test func everythingAtOnceWithManyEventsNeverClips() async throws {
        try await offPool {
            let events = (0..<40).map { i in
                SoundEvent(time: Double(i) * 0.12 - 0.3, kind: i % 3 == 0 ? .cut : .whoosh(intensity: 1))
            }
            let track = Soundtrack.synthesize(
                prompt: "A stormy ocean, a fire, birds in the forest, city traffic and a crowd indoors",
                negativePrompt: nil, durationSeconds: 5, events: events, seed: 3)
            #expect(track.frameCount == 240_000)
            #expect(track.samples.allSatisfy { $0.isFinite })
            #expect(SoundtrackProbe.decibels(SoundtrackProbe.peak(track.samples)) <= -1)
            #expect(SoundtrackProbe.decibels(SoundtrackProbe.rms(track.samples)) > -20)
        }
    }

    @Test func sameSeedIsBitIdenticalAndAnotherSeedDiffers() async throws {
        try await offPool {
            let events = [SoundEvent(time: 0.5, kind: .whoosh(intensity: 0.7)), SoundEvent(time: 1, kind: .cut)]
            func render(_ seed: UInt32) -> AudioTrack {
                Soundtrack.synthesize(
                    prompt: "wind, rain, ocean, fire, birds, city and crowd indoors", negativePrompt: nil,
                    durationSeconds: 1.5, events: events, seed: seed)
            }
            let first = render(42), again = render(42), other = render(43)
            #expect(first == again)
            #expect(first != other)
            let correlation = SoundtrackProbe.correlation(
                SoundtrackProbe.channel(first, 0), SoundtrackProbe.channel(other, 0))
            #expect(abs(correlation) < 0.5, "different seeds should give different noise, correlation \(correlation)")
        }
    }

    @Test func vetoedBedIsAbsentFromTheSound() async throws {
        try await offPool {
            let vetoed = Soundtrack.synthesize(
                prompt: "rain and wind", negativePrompt: "rain", durationSeconds: 2, events: [], seed: 14)
            let windOnly = Soundtrack.synthesize(prompt: "wind", negativePrompt: nil, durationSeconds: 2, events: [], seed: 14)
            let both = Soundtrack.synthesize(
                prompt: "rain and wind", negativePrompt: nil, durationSeconds: 2, events: [], seed: 14)
            #expect(vetoed == windOnly)
            #expect(vetoed != both)
        }
    }

    @Test func rainIsBrighterThanWater() async throws {
        try await offPool {
            func highShare(_ prompt: String) -> Double {
                let track = Soundtrack.synthesize(
                    prompt: prompt, negativePrompt: nil, durationSeconds: 3, events: [], seed: 9)
                return SoundtrackProbe.energyShare(SoundtrackProbe.channel(track, 0), above: 4_000)
            }
            let rain = highShare("rain"), water = highShare("ocean")
            #expect(rain > 0.3, "rain's share of energy above 4 kHz: \(rain)")
            #expect(water < 0.05, "the ocean's share of energy above 4 kHz: \(water)")
        }
    }

    @Test func oceanSwellsSlowlyWhileRainIsSteady() async throws {
        try await offPool {
            func swing(_ prompt: String) -> (depth: Double, fastDepth: Double) {
                let track = Soundtrack.synthesize(
                    prompt: prompt, negativePrompt: nil, durationSeconds: 12, events: [], seed: 21)
                let left = SoundtrackProbe.channel(track, 0)
                let slow = SoundtrackProbe.windowedRMS(left, window: 0.5)
                let fast = SoundtrackProbe.windowedRMS(Array(left[48_000..<96_000]), window: 0.05)
                return (SoundtrackProbe.variation(slow), SoundtrackProbe.variation(fast))
            }
            let ocean = swing("ocean"), rain = swing("rain")
            #expect(ocean.depth > 0.2, "ocean envelope variation over 0.5 s windows: \(ocean.depth)")
            #expect(rain.depth < 0.1, "rain envelope variation over 0.5 s windows: \(rain.depth)")
            // Within one second the sea barely moves: its modulation is slow, not a flutter.
            #expect(ocean.fastDepth < ocean.depth)
        }
    }

    @Test func fireCracklesMoreThanWind() async throws {
        try await offPool {
            func kurtosis(_ prompt: String) -> Double {
                let track = Soundtrack.synthesize(
                    prompt: prompt, negativePrompt: nil, durationSeconds: 3, events: [], seed: 4)
                return SoundtrackProbe.kurtosis(SoundtrackProbe.highPassed(SoundtrackProbe.channel(track, 0)))
            }
            let fire = kurtosis("fire"), wind = kurtosis("wind")
            #expect(fire > 2 * wind, "high-band kurtosis: fire \(fire), wind \(wind)")
        }
    }

    @Test func forestHasTonalBirdsAndCityHasALowRumble() async throws {
        try await offPool {
            let forest = Soundtrack.synthesize(prompt: "forest", negativePrompt: nil, durationSeconds: 3, events: [], seed: 8)
            let city = Soundtrack.synthesize(prompt: "city", negativePrompt: nil, durationSeconds: 3, events: [], seed: 8)
            let forestLeft = SoundtrackProbe.channel(forest, 0), cityLeft = SoundtrackProbe.channel(city, 0)
            // Birds are narrow spectral lines; noise is not: in some frame a 2–8 kHz bin stands far above its neighbours.
            let forestLines = SoundtrackProbe.strongestLine(forestLeft, from: 2_000, to: 8_000)
            let cityLines = SoundtrackProbe.strongestLine(cityLeft, from: 2_000, to: 8_000)
            #expect(forestLines > 5 * cityLines, "strongest spectral line: forest \(forestLines), city \(cityLines)")
            #expect(SoundtrackProbe.energyShare(cityLeft, above: 500) < 0.5)
        }
    }

    @Test func roomToneIsQuietWithinAMix() async throws {
        try await offPool {
            func left(_ prompt: String) -> [Float] {
                SoundtrackProbe.channel(
                    Soundtrack.synthesize(prompt: prompt, negativePrompt: nil, durationSeconds: 3, events: [], seed: 2), 0)
            }
            let wind = left("wind"), windIndoors = left("wind, indoors"), windAndRain = left("wind and rain")
            let withRoom = SoundtrackProbe.correlation(wind, windIndoors)
            let withRain = SoundtrackProbe.correlation(wind, windAndRain)
            #expect(withRoom > 0.97, "room tone should sit far under the wind, correlation \(withRoom)")
            #expect(withRain < 0.9, "rain is a full bed, correlation \(withRain)")
        }
    }

    @Test func whooshRaisesEnergyAroundItsTimeOnly() async throws {
        try await offPool {
            func render(_ events: [SoundEvent]) -> [Float] {
                SoundtrackProbe.channel(
                    Soundtrack.synthesize(prompt: "rain", negativePrompt: nil, durationSeconds: 4, events: events, seed: 6), 0)
            }
            let plain = render([]), whoosh = render([SoundEvent(time: 2, kind: .whoosh(intensity: 1))])
            let gain =
                SoundtrackProbe.decibels(SoundtrackProbe.rms(SoundtrackProbe.slice(whoosh, 1.8, 2.2)))
                - SoundtrackProbe.decibels(SoundtrackProbe.rms(SoundtrackProbe.slice(plain, 1.8, 2.2)))
            #expect(gain > 4, "energy around the whoosh rose by \(gain) dB")
            // The whoosh starts 0.66 s before its peak; earlier, and well after it, the bed is untouched.
            #expect(SoundtrackProbe.slice(whoosh, 0, 1.2) == SoundtrackProbe.slice(plain, 0, 1.2))
            #expect(SoundtrackProbe.slice(whoosh, 3.2, 3.8) == SoundtrackProbe.slice(plain, 3.2, 3.8))
        }
    }

    @Test func strongerWhooshIsLongerAndLouder() async throws {
        try await offPool {
            let without = SoundtrackProbe.channel(
                Soundtrack.synthesize(prompt: "a portrait", negativePrompt: nil, durationSeconds: 4, events: [], seed: 6), 0)
            func rise(_ intensity: Double, _ from: Double, _ to: Double) -> Double {
                let events = [SoundEvent(time: 2, kind: .whoosh(intensity: intensity))]
                let with = SoundtrackProbe.channel(
                    Soundtrack.synthesize(prompt: "a portrait", negativePrompt: nil, durationSeconds: 4, events: events, seed: 6), 0)
                return SoundtrackProbe.decibels(SoundtrackProbe.rms(SoundtrackProbe.slice(with, from, to)))
                    - SoundtrackProbe.decibels(SoundtrackProbe.rms(SoundtrackProbe.slice(without, from, to)))
            }
            #expect(rise(1, 1.9, 2.1) > rise(0.1, 1.9, 2.1) + 3)
            // 0.4 s before the peak only the long, strong whoosh is already rising; the short one starts 0.24 s before.
            #expect(rise(1, 1.5, 1.7) > 3)
            #expect(rise(0.1, 1.5, 1.7) == 0)
        }
    }

    @Test func cutLandsAShortSwishOnTheCut() async throws {
        try await offPool {
            func render(_ events: [SoundEvent]) -> [Float] {
                SoundtrackProbe.channel(
                    Soundtrack.synthesize(prompt: "a portrait", negativePrompt: nil, durationSeconds: 3, events: events, seed: 12), 0)
            }
            let plain = render([]), cut = render([SoundEvent(time: 1.5, kind: .cut)])
            let gain =
                SoundtrackProbe.decibels(SoundtrackProbe.rms(SoundtrackProbe.slice(cut, 1.45, 1.6)))
                - SoundtrackProbe.decibels(SoundtrackProbe.rms(SoundtrackProbe.slice(plain, 1.45, 1.6)))
            #expect(gain > 6, "energy at the cut rose by \(gain) dB")
            #expect(SoundtrackProbe.slice(cut, 2, 3) == SoundtrackProbe.slice(plain, 2, 3))
        }
    }

    @Test func eventsFarOutsideTheTrackAreIgnored() async throws {
        try await offPool {
            let plain = Soundtrack.synthesize(prompt: "rain", negativePrompt: nil, durationSeconds: 1, events: [], seed: 2)
            let events = [
                SoundEvent(time: -50, kind: .cut), SoundEvent(time: 1e300, kind: .whoosh(intensity: 1)),
                SoundEvent(time: .nan, kind: .cut), SoundEvent(time: -.infinity, kind: .whoosh(intensity: .nan)),
            ]
            let track = Soundtrack.synthesize(prompt: "rain", negativePrompt: nil, durationSeconds: 1, events: events, seed: 2)
            #expect(track == plain)
        }
    }

    @Test func vetoedRoomToneLeavesOnlyTheEvents() async throws {
        try await offPool {
            let silent = Soundtrack.synthesize(
                prompt: "a portrait", negativePrompt: "room tone", durationSeconds: 2, events: [], seed: 1)
            #expect(silent.frameCount == 96_000)
            #expect(silent.samples.allSatisfy { $0 == 0 })
            let cut = Soundtrack.synthesize(
                prompt: "a portrait", negativePrompt: "room tone", durationSeconds: 2,
                events: [SoundEvent(time: 1, kind: .cut)], seed: 1)
            #expect(SoundtrackProbe.peak(cut.samples) > 0.01)
        }
    }
}

/// Measurements on rendered audio, written here so the tests do not trust the synthesizer's own arithmetic.
enum SoundtrackProbe {
    static let rate = Double(AudioTrack.sampleRate)

    static func channel(_ track: AudioTrack, _ index: Int) -> [Float] {
        stride(from: index, to: track.samples.count, by: 2).map { track.samples[$0] }
    }

    static func slice(_ samples: [Float], _ from: Double, _ to: Double) -> [Float] {
        Array(samples[Int(from * rate)..<min(Int(to * rate), samples.count)])
    }

    static func rms(_ samples: [Float]) -> Double {
        guard !samples.isEmpty else { return 0 }
        return (samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(samples.count)).squareRoot()
    }

    static func peak(_ samples: [Float]) -> Double {
        Double(samples.reduce(0) { max($0, abs($1)) })
    }

    static func decibels(_ amplitude: Double) -> Double {
        20 * log10(max(amplitude, 1e-12))
    }

    static func correlation(_ a: [Float], _ b: [Float]) -> Double {
        var ab = 0.0, aa = 0.0, bb = 0.0
        for i in 0..<min(a.count, b.count) {
            ab += Double(a[i]) * Double(b[i])
            aa += Double(a[i]) * Double(a[i])
            bb += Double(b[i]) * Double(b[i])
        }
        return ab / max((aa * bb).squareRoot(), 1e-30)
    }

    static func windowedRMS(_ samples: [Float], window seconds: Double) -> [Double] {
        let size = Int(seconds * rate)
        return stride(from: 0, to: samples.count - size + 1, by: size).map { rms(Array(samples[$0..<($0 + size)])) }
    }

    /// Standard deviation over mean.
    static func variation(_ values: [Double]) -> Double {
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
        return variance.squareRoot() / mean
    }

    static func kurtosis(_ samples: [Float]) -> Double {
        let n = Double(samples.count)
        let mean = samples.reduce(0.0) { $0 + Double($1) } / n
        var m2 = 0.0, m4 = 0.0
        for sample in samples {
            let d = Double(sample) - mean
            m2 += d * d
            m4 += d * d * d * d
        }
        return (m4 / n) / ((m2 / n) * (m2 / n))
    }

    /// A second difference: a steep enough high-pass to isolate clicks from the low rumble.
    static func highPassed(_ samples: [Float]) -> [Float] {
        (2..<samples.count).map { samples[$0] - 2 * samples[$0 - 1] + samples[$0 - 2] }
    }

    /// Power spectra of Hann-windowed 1024-sample frames; bin k is k · rate / 1024 Hz.
    static func frameSpectra(_ samples: [Float]) -> [[Double]] {
        let size = 1_024
        var spectra: [[Double]] = []
        var start = 0
        while start + size <= samples.count {
            var re = (0..<size).map { i in
                Double(samples[start + i]) * (0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(size)))
            }
            var im = [Double](repeating: 0, count: size)
            fft(&re, &im)
            spectra.append((0..<(size / 2)).map { re[$0] * re[$0] + im[$0] * im[$0] })
            start += size
        }
        return spectra
    }

    /// Average power spectrum over all frames.
    static func powerSpectrum(_ samples: [Float]) -> [Double] {
        frameSpectra(samples).reduce(into: [Double](repeating: 0, count: 512)) { sum, frame in
            for k in frame.indices { sum[k] += frame[k] }
        }
    }

    /// Over all frames, the largest ratio of a bin's power to the median of its ±16 neighbours within the band:
    /// a tone gives hundreds, noise a few tens at most.
    static func strongestLine(_ samples: [Float], from low: Double, to high: Double) -> Double {
        let first = Int(low / rate * 1_024), last = Int(high / rate * 1_024)
        var strongest = 0.0
        for frame in frameSpectra(samples) {
            for k in (first + 16)..<(last - 16) {
                let neighbours = frame[(k - 16)...(k + 16)].sorted()
                strongest = max(strongest, frame[k] / max(neighbours[16], 1e-30))
            }
        }
        return strongest
    }

    static func energyShare(_ samples: [Float], above hertz: Double) -> Double {
        let power = powerSpectrum(samples)
        let first = Int(hertz / rate * 1_024)
        return power[first...].reduce(0, +) / max(power.reduce(0, +), 1e-30)
    }

    /// In-place iterative radix-2 FFT; the count must be a power of two.
    static func fft(_ re: inout [Double], _ im: inout [Double]) {
        let n = re.count
        var j = 0
        for i in 1..<n {
            var bit = n >> 1
            while j & bit != 0 {
                j ^= bit
                bit >>= 1
            }
            j |= bit
            if i < j {
                re.swapAt(i, j)
                im.swapAt(i, j)
            }
        }
        var length = 2
        while length <= n {
            let angle = -2 * Double.pi / Double(length)
            for start in stride(from: 0, to: n, by: length) {
                for k in 0..<(length / 2) {
                    let wr = cos(angle * Double(k)), wi = sin(angle * Double(k))
                    let a = start + k, b = a + length / 2
                    let tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr
                    re[b] = re[a] - tr
                    im[b] = im[a] - ti
                    re[a] += tr
                    im[a] += ti
                }
            }
            length <<= 1
        }
    }
}
