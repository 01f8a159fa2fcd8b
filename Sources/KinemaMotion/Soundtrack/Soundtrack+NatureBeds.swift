import Foundation

/// How a wind bed sounds: where its band sits as the gusts rise, and how much rumble and whistle it carries.
struct SoundtrackWindStyle {
    /// The bed whose random streams this wind draws from.
    var cue: AmbienceCue
    var lowCentre: Double
    var highCentre: Double
    var q: Double
    var rumble: Float
    var whistle: Float
    var gustDepth: Double
    var gustPeriod: Double

    /// Open-air wind: a low, broad roar that brightens and whistles in the gusts.
    static let open = SoundtrackWindStyle(
        cue: .wind, lowCentre: 220, highCentre: 1100, q: 0.8, rumble: 0.7, whistle: 0.45, gustDepth: 0.8, gustPeriod: 2.4)
    /// Wind in leaves: a brighter rustle with gentler gusts, under the birds of a forest.
    static let leaves = SoundtrackWindStyle(
        cue: .forest, lowCentre: 1300, highCentre: 3200, q: 0.7, rumble: 0.25, whistle: 0, gustDepth: 0.55, gustPeriod: 3.2)
}

extension Soundtrack {
    // MARK: wind

    /// Noise through a band-pass whose centre and level follow a slow gust curve, over a low rumble, with a
    /// narrow whistle that sings only in strong gusts. The right channel reads the gusts 0.18 s later, so the
    /// wind seems to travel across the picture.
    static func renderWind(into buffer: inout SoundtrackStereoBuffer, seed: UInt32, style: SoundtrackWindStyle) {
        let cue = style.cue
        let frames = buffer.frames
        let duration = Double(frames) / soundtrackSampleRate
        var curveRandom = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(cue, 1))
        let slow = SoundtrackSmoothNoise(duration: duration + 1, period: style.gustPeriod, random: &curveRandom)
        let fast = SoundtrackSmoothNoise(duration: duration + 1, period: style.gustPeriod / 3.5, random: &curveRandom)
        func gust(_ t: Double) -> Double {
            let g = 0.68 * slow.value(at: t) + 0.32 * fast.value(at: t)
            return pow(min(max((g - 0.15) / 0.7, 0), 1), 1.4)
        }
        let rumbleNorm = soundtrackBandNormaliser(bandwidth: 1.11 * 110)
        for channel in 0..<2 {
            var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(cue, 2 + UInt64(channel)))
            let offset = Double(channel) * 0.18
            var band = SoundtrackSVF(cutoff: style.lowCentre, q: style.q)
            var whistle = SoundtrackSVF(cutoff: 700, q: 14)
            var rumble = SoundtrackSVF(cutoff: 110, q: 0.707)
            var amp = Float(1 - style.gustDepth + style.gustDepth * gust(offset))
            var whistleAmp: Float = 0
            buffer.withChannel(channel) { out in
                var start = 0
                while start < frames {
                    let end = min(start + soundtrackBlock, frames)
                    let g = gust(Double(end) / soundtrackSampleRate + offset)
                    let centre = style.lowCentre + (style.highCentre - style.lowCentre) * g
                    band.tune(cutoff: centre, q: style.q)
                    let whistleCentre = 650 + 1100 * g
                    whistle.tune(cutoff: whistleCentre, q: 14)
                    let bandNorm = soundtrackBandNormaliser(
                        bandwidth: soundtrackBandpassBandwidth(centre: centre, q: style.q))
                    let whistleNorm = soundtrackBandNormaliser(
                        bandwidth: soundtrackBandpassBandwidth(centre: whistleCentre, q: 14))
                    let ampTarget = Float(1 - style.gustDepth + style.gustDepth * g)
                    let whistleTarget = style.whistle * Float(g * g) * whistleNorm
                    let step = (ampTarget - amp) / Float(end - start)
                    let whistleStep = (whistleTarget - whistleAmp) / Float(end - start)
                    for i in start..<end {
                        amp += step
                        whistleAmp += whistleStep
                        let n = random.noise()
                        let body = band.bandpass(n) * bandNorm + style.rumble * rumbleNorm * rumble.lowpass(n)
                        out[i] += amp * body + whistleAmp * whistle.bandpass(n)
                    }
                    start = end
                }
            }
        }
    }

    // MARK: rain

    /// Dense high-passed noise (the hiss of many drops), a soft low body (rain on surfaces), a slow level drift,
    /// and individual droplets: short decaying sinusoids at random pitches and times, different per channel.
    static func renderRain(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        let duration = Double(frames) / soundtrackSampleRate
        var curveRandom = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.rain, 1))
        let drift = SoundtrackSmoothNoise(duration: duration + 1, period: 4, random: &curveRandom)
        let hissNorm = soundtrackBandNormaliser(bandwidth: 7_500)
        let bodyNorm = soundtrackBandNormaliser(bandwidth: 1.11 * 450)
        for channel in 0..<2 {
            var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.rain, 2 + UInt64(channel)))
            var high = SoundtrackSVF(cutoff: 1_500, q: 0.707)
            var low = SoundtrackSVF(cutoff: 9_000, q: 0.707)
            var body = SoundtrackSVF(cutoff: 450, q: 0.707)
            var drops = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.rain, 4 + UInt64(channel)))
            buffer.withChannel(channel) { out in
                var start = 0
                var level = Float(0.85 + 0.15 * drift.value(at: 0))
                while start < frames {
                    let end = min(start + soundtrackBlock, frames)
                    let target = Float(0.85 + 0.15 * drift.value(at: Double(end) / soundtrackSampleRate))
                    let step = (target - level) / Float(end - start)
                    for i in start..<end {
                        level += step
                        let n = random.noise()
                        let hiss = low.lowpass(high.highpass(n)) * hissNorm
                        out[i] += level * (hiss + 0.35 * bodyNorm * body.lowpass(n))
                    }
                    start = end
                }
                var time = drops.exponential(mean: 1.0 / 90)
                while time < duration {
                    let size = drops.unit()
                    addDroplet(
                        into: out, at: Int(time * soundtrackSampleRate),
                        frequency: drops.uniform(2_000, 7_000), decay: drops.uniform(0.0015, 0.004),
                        amplitude: Float(0.3 + 1.6 * size * size * size))
                    time += drops.exponential(mean: 1.0 / 90)
                }
            }
        }
    }

    /// A decaying sinusoid from a two-pole resonator recursion (no trigonometry per sample).
    static func addDroplet(
        into out: UnsafeMutableBufferPointer<Float>, at start: Int, frequency: Double, decay: Double, amplitude: Float
    ) {
        let length = min(Int(6 * decay * soundtrackSampleRate), out.count - start)
        guard length > 0 else { return }
        let omega = 2 * Double.pi * frequency / soundtrackSampleRate
        let r = exp(-1 / (decay * soundtrackSampleRate))
        let c1 = Float(2 * r * cos(omega)), c2 = Float(-r * r)
        var y1 = amplitude * Float(sin(omega)), y2: Float = 0
        for i in 0..<length {
            out[start + i] += y1
            let y = c1 * y1 + c2 * y2
            y2 = y1
            y1 = y
        }
    }

    // MARK: water

    /// Low-passed noise that swells with waves every 7.5–12 s (≈ 0.1 Hz): each wave builds, brightens as it breaks
    /// (a band of wash rises with it) and recedes slowly, over a constant deep undertow. The right channel hears
    /// the same waves 0.3 s later, as if they ran along the shore.
    static func renderWater(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        let duration = Double(frames) / soundtrackSampleRate
        var waveRandom = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.water, 1))
        var waves: [(start: Double, period: Double, strength: Double)] = []
        var cursor = -waveRandom.uniform(2, 11)
        while cursor < duration + 1 {
            let period = waveRandom.uniform(7.5, 12)
            waves.append((cursor, period, waveRandom.uniform(0.65, 1)))
            cursor += period
        }
        func swell(_ t: Double) -> Double {
            var value = 0.0
            // The tail of the previous wave overlaps the rise of the next, so the sea never falls silent.
            for wave in waves where t >= wave.start && t < wave.start + 2 * wave.period {
                let p = (t - wave.start) / wave.period
                let shape = p < 0.4 ? pow(sin(Double.pi / 2 * p / 0.4), 2) : exp(-(p - 0.4) * 4.5)
                value = max(value, wave.strength * shape)
            }
            return value
        }
        let undertowNorm = soundtrackBandNormaliser(bandwidth: 1.11 * 90)
        for channel in 0..<2 {
            var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.water, 2 + UInt64(channel)))
            let offset = -Double(channel) * 0.3
            var body = SoundtrackSVF(cutoff: 200, q: 0.6)
            var wash = SoundtrackSVF(cutoff: 900, q: 0.5)
            var undertow = SoundtrackSVF(cutoff: 90, q: 0.707)
            var amp = Float(0.15 + swell(offset))
            var washAmp: Float = 0
            buffer.withChannel(channel) { out in
                var start = 0
                while start < frames {
                    let end = min(start + soundtrackBlock, frames)
                    let s = swell(Double(end) / soundtrackSampleRate + offset)
                    let cutoff = 200 + 1_300 * s
                    body.tune(cutoff: cutoff, q: 0.6)
                    let washCentre = 700 + 1_100 * s
                    wash.tune(cutoff: washCentre, q: 0.5)
                    let bodyNorm = soundtrackBandNormaliser(bandwidth: 1.3 * cutoff)
                    let washNorm = soundtrackBandNormaliser(
                        bandwidth: soundtrackBandpassBandwidth(centre: washCentre, q: 0.5))
                    let ampTarget = Float(0.15 + s) * bodyNorm
                    let washTarget = Float(0.45 * s * s) * washNorm
                    let step = (ampTarget - amp) / Float(end - start)
                    let washStep = (washTarget - washAmp) / Float(end - start)
                    for i in start..<end {
                        amp += step
                        washAmp += washStep
                        let n = random.noise()
                        out[i] +=
                            amp * body.lowpass(n) + washAmp * wash.bandpass(n)
                            + 0.25 * undertowNorm * undertow.lowpass(n)
                    }
                    start = end
                }
            }
        }
    }

    // MARK: fire

    /// A flickering low rumble and roar, plus crackle: bursts of random impulses through a resonant band-pass
    /// retuned at every pop (1.5–6 kHz, sometimes a deeper 300–900 Hz pop), panned pop by pop.
    static func renderFire(into buffer: inout SoundtrackStereoBuffer, seed: UInt32) {
        let frames = buffer.frames
        let duration = Double(frames) / soundtrackSampleRate
        var curveRandom = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.fire, 1))
        let flicker = SoundtrackSmoothNoise(duration: duration + 1, period: 0.4, random: &curveRandom)
        let rumbleNorm = soundtrackBandNormaliser(bandwidth: 1.11 * 160)
        let roarNorm = soundtrackBandNormaliser(bandwidth: soundtrackBandpassBandwidth(centre: 700, q: 0.6))
        for channel in 0..<2 {
            var random = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.fire, 2 + UInt64(channel)))
            var rumble = SoundtrackSVF(cutoff: 160, q: 0.8)
            var roar = SoundtrackSVF(cutoff: 700, q: 0.6)
            buffer.withChannel(channel) { out in
                var start = 0
                var f = Float(flicker.value(at: 0))
                while start < frames {
                    let end = min(start + soundtrackBlock, frames)
                    let target = Float(flicker.value(at: Double(end) / soundtrackSampleRate))
                    let step = (target - f) / Float(end - start)
                    for i in start..<end {
                        f += step
                        let n = random.noise()
                        out[i] +=
                            (0.6 + 0.4 * f) * rumbleNorm * rumble.lowpass(n)
                            + 0.3 * (0.5 + 0.5 * f) * roarNorm * roar.bandpass(n)
                    }
                    start = end
                }
            }
        }

        // Crackle: one schedule of pops shared by both channels, each pop panned, rendered apart and then mixed in
        // at a fixed share of the bed's RMS so its loudness does not depend on how busy the fire happens to be.
        var pops = SoundtrackRandom(seed: seed, stream: SoundtrackStream.id(.fire, 4))
        var crackle = SoundtrackStereoBuffer(frames: frames)
        var impulses: [(frame: Int, amplitude: Float, centre: Double, q: Double, pan: Double)] = []
        var time = pops.exponential(mean: 1.0 / 14)
        while time < duration {
            let deep = pops.chance(0.08)
            let centre = deep ? pops.uniform(300, 900) : pops.uniform(1_500, 6_000)
            let q = pops.uniform(3, 8)
            let pan = pops.uniform(-0.8, 0.8)
            let loud = Float(0.3 + 2.0 * pow(pops.unit(), 2)) * (deep ? 2.5 : 1)
            var burst = Int(time * soundtrackSampleRate)
            for _ in 0..<pops.integer(in: 1...5) {
                impulses.append((burst, loud * Float(pops.uniform(0.4, 1)), centre, q, pan))
                burst += Int(pops.uniform(0.0002, 0.003) * soundtrackSampleRate)
            }
            time += pops.exponential(mean: 1.0 / (14 * (0.5 + flicker.value(at: time))))
        }
        // A burst can outlast the gap to the next pop; the filter loop below needs the impulses in time order.
        impulses.sort { $0.frame < $1.frame }
        for channel in 0..<2 {
            var filter = SoundtrackSVF(cutoff: 3_000, q: 5)
            crackle.withChannel(channel) { out in
                var next = 0
                for i in 0..<frames {
                    // A tiny Nyquist-rate dither keeps the idle filter's state out of subnormal floats, which
                    // made this loop several times slower between pops.
                    var x: Float = i & 1 == 0 ? 1e-12 : -1e-12
                    while next < impulses.count && impulses[next].frame <= i {
                        let pop = impulses[next]
                        filter.tune(cutoff: pop.centre, q: pop.q)
                        let gains = soundtrackPanGains(pop.pan)
                        x += pop.amplitude * (channel == 0 ? gains.left : gains.right)
                        next += 1
                    }
                    out[i] = filter.bandpass(x)
                }
            }
        }
        let bedRMS = buffer.rms(), crackleRMS = crackle.rms()
        if crackleRMS > 1e-12 {
            buffer.add(crackle, gain: Float(0.35 * bedRMS / crackleRMS))
        }
    }
}
