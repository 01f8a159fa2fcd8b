import Foundation
import KinemaMedia

/// Pixel work of the ambient effects. Every effect is a pure function of (seed, clip time, frame size), so
/// frames can be rendered in any order. Sizes scale with the frame height (tuned at 720 rows).
enum AmbientRenderer {
    /// Horizontal displacement (output luma pixels) of each output row from ripple and sway, or nil when neither runs.
    static func rowShifts(_ effects: [EffectDirective], time: Double, height: Int, envelope: Double, seed: UInt32) -> [Double]? {
        let ripple = effects.first { $0.effect == .waterRipple }?.intensity ?? 0
        let sway = effects.first { $0.effect == .windSway }?.intensity ?? 0
        guard (ripple > 0 || sway > 0) && envelope > 0 else { return nil }
        let unit = Double(height) / 720
        let noise = SeededNoise(seed: seed)
        let gust = 0.7 + 0.3 * noise.smooth(21, time: time, rate: 0.6)
        var shifts = [Double](repeating: 0, count: height)
        for row in 0..<height {
            let v = (Double(row) + 0.5) / Double(height)
            var s = 0.0
            if ripple > 0 && v > 0.58 {
                // Water is usually in the lower part; ripples grow and lengthen toward the viewer.
                let r = smoothstep(0.58, 0.8, v)
                let wavelength = (5 + 40 * (v - 0.58)) * unit
                let y = Double(row)
                s +=
                    3.0 * unit * ripple * r
                    * (0.7 * sin(2 * Double.pi * y / wavelength - 5.0 * time)
                        + 0.3 * sin(2 * Double.pi * y / (wavelength * 0.41) + 7.3 * time))
            }
            if sway > 0 && v < 0.7 {
                // Foliage and sky move in the wind, the ground does not.
                let r = 1 - smoothstep(0.3, 0.7, v)
                s += 3.0 * unit * sway * r * gust * (sin(2 * Double.pi * 0.33 * time + 2.1 * v) + 0.35 * sin(2 * Double.pi * 0.87 * time + 5.3 * v))
            }
            shifts[row] = s * envelope
        }
        return shifts
    }

    /// Overlays and tone effects applied after the warp.
    static func apply(_ effects: [EffectDirective], to frame: inout YUVFrame, time: Double, envelope: Double, seed: UInt32) {
        guard envelope > 0 else { return }
        let noise = SeededNoise(seed: seed)
        for effect in effects where effect.intensity > 0 {
            let k = effect.intensity * envelope
            switch effect.effect {
            case .waterRipple, .windSway: continue
            case .fogDrift: fog(&frame, intensity: k, time: time, noise: noise)
            case .rain: rain(&frame, intensity: k, time: time, noise: noise)
            case .snow: snow(&frame, intensity: k, time: time, noise: noise)
            case .fireFlicker:
                let gain = 0.16 * k * (noise.fractal(31, time: time, rate: 7) + 0.4 * noise.smooth(32, time: time, rate: 2))
                fireFlicker(&frame, gain: gain)
            case .lightFlicker:
                // Mostly steady with a fast shimmer and occasional short dips, like a failing tube.
                let slot = Int(floor(time * 3))
                let dipping = noise.unit(41, slot) < 0.3 && (time * 3 - Double(slot)) < 0.35
                let gain = 0.07 * k * noise.fractal(42, time: time, rate: 9) - (dipping ? 0.28 * k : 0)
                scaleLuma(&frame, gain: 1 + gain)
            }
        }
    }

    static func smoothstep(_ a: Double, _ b: Double, _ x: Double) -> Double {
        let t = min(1, max(0, (x - a) / (b - a)))
        return t * t * (3 - 2 * t)
    }

    /// Soft fog banks: low-frequency seeded noise, drifting sideways, denser low in the frame; blends luma toward a
    /// pale grey and chroma toward neutral.
    static func fog(_ frame: inout YUVFrame, intensity: Double, time: Double, noise: SeededNoise) {
        let w = frame.width, h = frame.height
        let gw = 24, gh = 14
        var grid = [Double](repeating: 0, count: (gw + 1) * (gh + 1))
        for gy in 0...gh {
            for gx in 0...gw {
                let x = Double(gx) / Double(gw) * 4 + time * 0.12, y = Double(gy) / Double(gh) * 2.5
                let n = 0.65 * valueNoise2(noise, 51, x, y) + 0.35 * valueNoise2(noise, 52, x * 2.3 + time * 0.1, y * 2.3)
                let v = Double(gy) / Double(gh)
                let density = 0.25 + 0.75 * smoothstep(0.15, 0.8, v)
                grid[gy * (gw + 1) + gx] = max(0, min(1, 0.55 + 0.6 * n)) * density * min(0.75, 0.5 * intensity)
            }
        }
        let fogY = 196, fogC = 128
        var alphaRow = [Int](repeating: 0, count: w)
        frame.y.withUnsafeMutableBufferPointer { yp in
            frame.u.withUnsafeMutableBufferPointer { up in
                frame.v.withUnsafeMutableBufferPointer { vp in
                    for row in 0..<h {
                        let gyf = (Double(row) + 0.5) / Double(h) * Double(gh)
                        let gy = min(gh - 1, Int(gyf)), fy = gyf - Double(gy)
                        for x in 0..<w {
                            let gxf = (Double(x) + 0.5) / Double(w) * Double(gw)
                            let gx = min(gw - 1, Int(gxf)), fx = gxf - Double(gx)
                            let a =
                                grid[gy * (gw + 1) + gx] * (1 - fx) * (1 - fy) + grid[gy * (gw + 1) + gx + 1] * fx * (1 - fy)
                                + grid[(gy + 1) * (gw + 1) + gx] * (1 - fx) * fy + grid[(gy + 1) * (gw + 1) + gx + 1] * fx * fy
                            alphaRow[x] = Int(a * 256)
                        }
                        let base = row * w
                        for x in 0..<w {
                            let a = alphaRow[x], p = Int(yp[base + x])
                            yp[base + x] = UInt8(truncatingIfNeeded: p + ((fogY - p) * a) >> 8)
                        }
                        if row % 2 == 0 {
                            let cbase = (row / 2) * (w / 2)
                            for cx in 0..<(w / 2) {
                                let a = alphaRow[cx * 2]
                                let u = Int(up[cbase + cx]), v = Int(vp[cbase + cx])
                                up[cbase + cx] = UInt8(truncatingIfNeeded: u + ((fogC - u) * a) >> 8)
                                vp[cbase + cx] = UInt8(truncatingIfNeeded: v + ((fogC - v) * a) >> 8)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Bilinear-smoothstep value noise on an integer lattice, about −1…1.
    static func valueNoise2(_ noise: SeededNoise, _ stream: UInt64, _ x: Double, _ y: Double) -> Double {
        let ix = Int(floor(x)), iy = Int(floor(y))
        var fx = x - Double(ix), fy = y - Double(iy)
        fx = fx * fx * (3 - 2 * fx); fy = fy * fy * (3 - 2 * fy)
        func at(_ i: Int, _ j: Int) -> Double { noise.signed(stream, i &* 7919 &+ j &* 104_729) }
        return (at(ix, iy) * (1 - fx) + at(ix + 1, iy) * fx) * (1 - fy) + (at(ix, iy + 1) * (1 - fx) + at(ix + 1, iy + 1) * fx) * fy
    }

    /// Slanted, anti-aliased rain streaks that fall continuously (positions are a function of time), over a slightly
    /// darker picture.
    static func rain(_ frame: inout YUVFrame, intensity: Double, time: Double, noise: SeededNoise) {
        let w = frame.width, h = frame.height
        let unit = Double(h) / 720
        scaleLuma(&frame, gain: 1 - 0.08 * min(1.5, intensity))
        let count = Int(260 * min(2, intensity) * Double(w * h) / (1280 * 720))
        let slant = 0.16
        frame.y.withUnsafeMutableBufferPointer { yp in
            for i in 0..<count {
                let depth = noise.unit(61, i)
                let length = (14 + 26 * depth) * unit
                let speed = (1.3 + 1.2 * depth) * Double(h)
                let span = Double(h) + length
                let head = (noise.unit(62, i) * span + speed * time).truncatingRemainder(dividingBy: span)
                let x0 = noise.unit(63, i) * (Double(w) + slant * Double(h)) - slant * Double(h)
                let strength = (22 + 30 * depth) * min(1.3, intensity)
                let top = max(0, Int(head - length)), bottom = min(h - 1, Int(head))
                guard top <= bottom else { continue }
                for row in top...bottom {
                    let along = (head - Double(row)) / length
                    let x = x0 + slant * Double(row)
                    let ix = Int(floor(x)), fx = x - Double(ix)
                    let a = strength * (1 - along)
                    for (px, wgt) in [(ix, 1 - fx), (ix + 1, fx)] where px >= 0 && px < w {
                        let idx = row * w + px
                        yp[idx] = UInt8(min(235, Double(yp[idx]) + a * wgt))
                    }
                }
            }
        }
    }

    /// Soft snowflakes of a few sizes, falling slowly with a sideways drift; nearer flakes are larger and faster.
    static func snow(_ frame: inout YUVFrame, intensity: Double, time: Double, noise: SeededNoise) {
        let w = frame.width, h = frame.height
        let unit = Double(h) / 720
        let count = Int(180 * min(2, intensity) * Double(w * h) / (1280 * 720))
        frame.y.withUnsafeMutableBufferPointer { yp in
            for i in 0..<count {
                let depth = noise.unit(71, i)
                let radius = (0.9 + 2.6 * depth * depth) * unit
                let speed = (0.05 + 0.12 * depth) * Double(h)
                let span = Double(h) + 4 * radius
                let cy = (noise.unit(72, i) * span + speed * time).truncatingRemainder(dividingBy: span) - 2 * radius
                let cx = noise.unit(73, i) * Double(w) + 10 * unit * sin(time * (0.6 + depth) + 6.28 * noise.unit(74, i))
                let strength = (0.55 + 0.4 * depth) * min(1, intensity)
                let x0 = max(0, Int(cx - radius - 1)), x1 = min(w - 1, Int(cx + radius + 1))
                let y0 = max(0, Int(cy - radius - 1)), y1 = min(h - 1, Int(cy + radius + 1))
                guard x0 <= x1 && y0 <= y1 else { continue }
                for row in y0...y1 {
                    for col in x0...x1 {
                        let dx = Double(col) + 0.5 - cx, dy = Double(row) + 0.5 - cy
                        let a = min(1, max(0, radius + 0.5 - (dx * dx + dy * dy).squareRoot())) * strength
                        guard a > 0 else { continue }
                        let idx = row * w + col
                        let p = Double(yp[idx])
                        yp[idx] = UInt8(p + (232 - p) * a)
                    }
                }
            }
        }
    }

    /// Luma gain limited to warm, bright areas (red-leaning chroma, bright luma): flames and candles flicker, the
    /// rest of the picture does not.
    static func fireFlicker(_ frame: inout YUVFrame, gain: Double) {
        let w = frame.width, h = frame.height, cw = w / 2
        let g = Int(gain * 256)
        guard g != 0 else { return }
        frame.y.withUnsafeMutableBufferPointer { yp in
            frame.v.withUnsafeBufferPointer { vp in
                frame.u.withUnsafeBufferPointer { up in
                    for row in 0..<h {
                        let crow = (row / 2) * cw
                        for x in 0..<w {
                            let cr = Int(vp[crow + x / 2]), cb = Int(up[crow + x / 2])
                            let warm = cr - 134 - max(0, cb - 128)
                            guard warm > 0 else { continue }
                            let idx = row * w + x
                            let l = Int(yp[idx])
                            guard l > 70 else { continue }
                            let mask = min(256, warm * 16) * min(256, (l - 70) * 5) >> 8
                            let delta = ((l - 16) * g >> 8) * mask >> 8
                            yp[idx] = UInt8(max(16, min(235, l + delta)))
                        }
                    }
                }
            }
        }
    }

    /// Scales luma about black (16), clamped to the legal range.
    static func scaleLuma(_ frame: inout YUVFrame, gain: Double) {
        let g = Int((gain * 256).rounded())
        guard g != 256 else { return }
        frame.y.withUnsafeMutableBufferPointer { yp in
            for i in 0..<yp.count {
                let l = Int(yp[i])
                yp[i] = UInt8(max(16, min(235, 16 + ((l - 16) * g + 128) >> 8)))
            }
        }
    }
}
