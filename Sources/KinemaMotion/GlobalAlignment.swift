import Foundation
import KinemaMedia

/// A grey image for analysis (alignment, motion estimation).
public struct LumaImage: Sendable, Equatable {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// `width * height` values, rows top to bottom.
    public var pixels: [UInt8]

    /// Wraps a luma plane.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height, "LumaImage size mismatch")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The Y plane of a frame.
    public init(_ frame: YUVFrame) { self.init(width: frame.width, height: frame.height, pixels: frame.y) }

    /// Rec. 709 luma of an RGBA image.
    public init(_ image: RGBAImage) {
        var y = [UInt8](repeating: 0, count: image.width * image.height)
        for i in 0..<y.count {
            let r = Int(image.pixels[4 * i]), g = Int(image.pixels[4 * i + 1]), b = Int(image.pixels[4 * i + 2])
            y[i] = UInt8((13_933 * r + 46_871 * g + 4_732 * b + 32_768) >> 16)
        }
        self.init(width: image.width, height: image.height, pixels: y)
    }
}

/// Estimates the global similarity (zoom + translation) between two pictures of the same aspect ratio.
///
/// Coarse-to-fine exhaustive search on box-downscaled luma, scored by normalised cross-correlation over the
/// overlap: a full grid of zooms and shifts at 32 px across, then local refinement at 64 and 128 px. Classical,
/// deterministic and robust to brightness differences; used to align an end image with the first image and, in
/// tests, to measure the motion between decoded frames.
public enum GlobalAlignment {
    /// The result: where `b` sits on `a`, and how well they match.
    public struct Estimate: Sendable, Equatable {
        /// `b` shows the region of `a` framed by this pose: `b(p) ≈ a(pose.viewMap(p))` (zoom > 1: b is magnified).
        public var pose: CameraPose
        /// Normalised cross-correlation at the best match, −1…1.
        public var score: Double
    }

    /// Estimates where `b` sits on `a` (zoom within `1/maxZoom…maxZoom`, centre shift up to `maxShift` of the frame).
    public static func estimate(from a: LumaImage, to b: LumaImage, maxZoom: Double = 1.6, maxShift: Double = 0.35) -> Estimate {
        var best = (cx: 0.5, cy: 0.5, logZ: 0.0, score: -2.0)
        let coarse = (downscale(a, width: 32), downscale(b, width: 32))
        let zoomSteps = 16
        let cStep = 1.0 / 32
        let shiftSteps = Int(maxShift / cStep)
        for zi in -zoomSteps...zoomSteps {
            let logZ = log(maxZoom) * Double(zi) / Double(zoomSteps)
            for iy in -shiftSteps...shiftSteps {
                for ix in -shiftSteps...shiftSteps {
                    let cx = 0.5 + Double(ix) * cStep, cy = 0.5 + Double(iy) * cStep
                    let s = score(coarse.0, coarse.1, cx: cx, cy: cy, zoom: exp(logZ))
                    if s > best.score { best = (cx, cy, logZ, s) }
                }
            }
        }
        var zStep = log(maxZoom) / Double(zoomSteps)
        var step = cStep
        for width in [64, 128] {
            let pa = downscale(a, width: width), pb = downscale(b, width: width)
            zStep *= 0.5
            step *= 0.5
            for _ in 0..<3 {
                let centre = best
                best.score = score(pa, pb, cx: centre.cx, cy: centre.cy, zoom: exp(centre.logZ))
                for dz in -2...2 {
                    for dy in -2...2 {
                        for dx in -2...2 {
                            let cx = centre.cx + Double(dx) * step, cy = centre.cy + Double(dy) * step
                            let logZ = centre.logZ + Double(dz) * zStep
                            let s = score(pa, pb, cx: cx, cy: cy, zoom: exp(logZ))
                            if s > best.score { best = (cx, cy, logZ, s) }
                        }
                    }
                }
                if best.cx == centre.cx && best.cy == centre.cy && best.logZ == centre.logZ { break }
            }
        }
        return Estimate(pose: CameraPose(centerX: best.cx, centerY: best.cy, zoom: exp(best.logZ)), score: best.score)
    }

    struct Small {
        let width: Int
        let height: Int
        let values: [Double]
    }

    static func downscale(_ image: LumaImage, width: Int) -> Small {
        let w = min(width, image.width)
        let h = max(1, Int((Double(image.height) * Double(w) / Double(image.width)).rounded()))
        var values = [Double](repeating: 0, count: w * h)
        for y in 0..<h {
            let y0 = y * image.height / h, y1 = max(y0 + 1, (y + 1) * image.height / h)
            for x in 0..<w {
                let x0 = x * image.width / w, x1 = max(x0 + 1, (x + 1) * image.width / w)
                var sum = 0
                for yy in y0..<y1 {
                    for xx in x0..<x1 { sum += Int(image.pixels[yy * image.width + xx]) }
                }
                values[y * w + x] = Double(sum) / Double((y1 - y0) * (x1 - x0))
            }
        }
        return Small(width: w, height: h, values: values)
    }

    /// NCC of `b` against `a` sampled through the pose (bilinear), over the part of `b` that lands inside `a`.
    static func score(_ a: Small, _ b: Small, cx: Double, cy: Double, zoom: Double) -> Double {
        var sa = 0.0, sb = 0.0, sab = 0.0, saa = 0.0, sbb = 0.0
        var n = 0
        let aw = Double(a.width), ah = Double(a.height)
        for y in 0..<b.height {
            let v = cy + ((Double(y) + 0.5) / Double(b.height) - 0.5) / zoom
            let py = v * ah - 0.5
            guard py >= 0 && py <= ah - 1 else { continue }
            let iy = min(a.height - 2, Int(py)), fy = py - Double(iy)
            for x in 0..<b.width {
                let u = cx + ((Double(x) + 0.5) / Double(b.width) - 0.5) / zoom
                let px = u * aw - 0.5
                guard px >= 0 && px <= aw - 1 else { continue }
                let ix = min(a.width - 2, Int(px)), fx = px - Double(ix)
                let i = iy * a.width + ix
                let va =
                    (a.values[i] * (1 - fx) + a.values[i + 1] * fx) * (1 - fy)
                    + (a.values[i + a.width] * (1 - fx) + a.values[i + a.width + 1] * fx) * fy
                let vb = b.values[y * b.width + x]
                sa += va; sb += vb; sab += va * vb; saa += va * va; sbb += vb * vb
                n += 1
            }
        }
        guard n * 5 >= b.width * b.height * 2 else { return -1 }
        let nn = Double(n)
        let cov = sab - sa * sb / nn
        let va = saa - sa * sa / nn, vb = sbb - sb * sb / nn
        guard va > 1e-9 && vb > 1e-9 else { return 0 }
        return cov / (va * vb).squareRoot()
    }
}
