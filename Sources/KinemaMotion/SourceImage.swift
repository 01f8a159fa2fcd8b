import Foundation
import KinemaMedia

/// One resolution of a prepared source: YUV 4:2:0 planes at `scale` × the output size.
struct SourceLevel: Sendable {
    /// Resolution relative to the output frame (1: the fitted image at output size).
    let scale: Double
    let y: SourcePlane
    let u: SourcePlane
    let v: SourcePlane
}

/// A source image prepared once per render: the input fitted to the output aspect at a few resolutions
/// (so close framings stay sharp without sampling a huge image), converted to YUV so frames are warped
/// straight into the encoder's format.
///
/// Level 0 is exactly `ImageResampler.coverFit` at the output size, which makes the identity pose reproduce the
/// fitted input bit for bit. When the plan's views reach outside the image, level 0 carries a soft extension
/// (mirrored, blurred, gently darkened toward its edge) so a pull-back reveals plausible, quiet surroundings.
struct SourceImage: Sendable {
    /// Resolution steps between levels: warps minify at most this much (bilinear stays clean).
    static let levelStep = 1.5
    /// Largest level kept, relative to the output (bounds memory: 3.4² × a frame).
    static let maxLevelScale = 3.4

    let levels: [SourceLevel]

    /// Prepares levels of `original` for an output of `width`×`height`.
    ///
    /// - Parameters:
    ///   - fitted: `original` cover-fitted to the output size (level 0, already computed by the caller).
    ///   - maxZoom: the largest zoom the plan uses; levels above it are not built.
    ///   - margin: soft extension around level 0, in image units per side (0: none).
    init(original: RGBAImage, fitted: RGBAImage, maxZoom: Double, margin: Double) {
        let width = fitted.width, height = fitted.height
        var levels = [Self.level(from: ColorConversion.yuv420(from: fitted), scale: 1, margin: margin)]
        // Resolution the original can actually supply, relative to the output.
        let available = min(Double(original.width) / Double(width), Double(original.height) / Double(height))
        var scale = Self.levelStep
        while scale <= min(Self.maxLevelScale, available * 1.15) && scale <= maxZoom * Self.blendBand {
            let w = max(2, Int((Double(width) * scale / 2).rounded()) * 2)
            let h = max(2, Int((Double(height) * scale / 2).rounded()) * 2)
            let rgba = ImageResampler.coverFit(original, width: w, height: h)
            levels.append(Self.level(from: ColorConversion.yuv420(from: rgba), scale: scale, margin: 0))
            scale *= Self.levelStep
        }
        self.levels = levels
    }

    /// Zooms within this factor below a level's scale blend toward that level, so a zoom crossing it sharpens
    /// gradually instead of popping.
    static let blendBand = 1.15

    /// The level to sample for a view at `zoom`: the sharpest one that the warp does not minify.
    func level(forZoom zoom: Double) -> SourceLevel {
        var best = levels[0]
        for level in levels.dropFirst() where level.scale <= zoom * 1.001 { best = level }
        return best
    }

    /// The level for `zoom`, plus the next sharper level and its weight when `zoom` is just below it.
    func levels(forZoom zoom: Double) -> (SourceLevel, (level: SourceLevel, weight: Double)?) {
        let base = level(forZoom: zoom)
        guard let next = levels.first(where: { $0.scale > base.scale }), zoom * Self.blendBand > next.scale else { return (base, nil) }
        let s = min(1, max(0, (zoom * Self.blendBand / next.scale - 1) / (Self.blendBand - 1)))
        return (base, (next, s * s * (3 - 2 * s)))
    }

    static func level(from frame: YUVFrame, scale: Double, margin: Double) -> SourceLevel {
        // Even luma margins keep chroma (half resolution) aligned with luma.
        let mx = margin > 0 ? (Int((margin * Double(frame.width)).rounded(.up)) + 3) / 2 * 2 : 0
        let my = margin > 0 ? (Int((margin * Double(frame.height)).rounded(.up)) + 3) / 2 * 2 : 0
        return SourceLevel(
            scale: scale,
            y: extend(frame.y, width: frame.width, height: frame.height, marginX: mx, marginY: my, neutral: 16, fade: 0.3),
            u: extend(frame.u, width: frame.width / 2, height: frame.height / 2, marginX: mx / 2, marginY: my / 2, neutral: 128, fade: 0.4),
            v: extend(frame.v, width: frame.width / 2, height: frame.height / 2, marginX: mx / 2, marginY: my / 2, neutral: 128, fade: 0.4)
        )
    }

    /// Pads a plane with the soft extension: mirror, blend toward a blur with distance, fade toward `neutral`.
    static func extend(_ pixels: [UInt8], width: Int, height: Int, marginX: Int, marginY: Int, neutral: Int, fade: Double) -> SourcePlane {
        guard marginX > 0 || marginY > 0 else {
            return SourcePlane(width: width, height: height, originX: 0, originY: 0, imageWidth: width, imageHeight: height, pixels: pixels)
        }
        let pw = width + 2 * marginX, ph = height + 2 * marginY
        func reflect(_ i: Int, _ n: Int) -> Int {
            let m = ((i % (2 * n)) + 2 * n) % (2 * n)
            return m < n ? m : 2 * n - 1 - m
        }
        var mirrored = [UInt8](repeating: 0, count: pw * ph)
        for py in 0..<ph {
            let sy = reflect(py - marginY, height) * width
            for px in 0..<pw { mirrored[py * pw + px] = pixels[sy + reflect(px - marginX, width)] }
        }
        let radius = max(2, min(width, height) / 40)
        let blurred = boxBlur(boxBlur(mirrored, pw, ph, radius), pw, ph, radius)
        var out = mirrored
        let reach = Double(max(marginX, marginY))
        let ramp = 0.5 * reach + Double(radius)
        for py in 0..<ph {
            let oy = py < marginY ? marginY - py : (py >= marginY + height ? py - (marginY + height - 1) : 0)
            for px in 0..<pw {
                let ox = px < marginX ? marginX - px : (px >= marginX + width ? px - (marginX + width - 1) : 0)
                if ox == 0 && oy == 0 { continue }
                let d = (Double(ox * ox + oy * oy)).squareRoot()
                let s = min(1, d / ramp)
                let wb = s * s * (3 - 2 * s)
                let i = py * pw + px
                let value = Double(mirrored[i]) * (1 - wb) + Double(blurred[i]) * wb
                let f = 1 - fade * min(1, d / reach)
                out[i] = UInt8(max(0, min(255, (Double(neutral) + (value - Double(neutral)) * f).rounded())))
            }
        }
        return SourcePlane(width: pw, height: ph, originX: marginX, originY: marginY, imageWidth: width, imageHeight: height, pixels: out)
    }

    /// Separable box blur with clamped edges, integer running sums.
    static func boxBlur(_ src: [UInt8], _ w: Int, _ h: Int, _ r: Int) -> [UInt8] {
        var tmp = [UInt8](repeating: 0, count: w * h)
        let n = 2 * r + 1
        for y in 0..<h {
            let row = y * w
            var sum = 0
            for k in -r...r { sum += Int(src[row + min(w - 1, max(0, k))]) }
            for x in 0..<w {
                tmp[row + x] = UInt8(sum / n)
                sum += Int(src[row + min(w - 1, x + r + 1)]) - Int(src[row + max(0, x - r)])
            }
        }
        var out = [UInt8](repeating: 0, count: w * h)
        for x in 0..<w {
            var sum = 0
            for k in -r...r { sum += Int(tmp[min(h - 1, max(0, k)) * w + x]) }
            for y in 0..<h {
                out[y * w + x] = UInt8(sum / n)
                sum += Int(tmp[min(h - 1, y + r + 1) * w + x]) - Int(tmp[max(0, y - r) * w + x])
            }
        }
        return out
    }
}
