import Foundation
import KinemaMedia

/// A point of interest on the fitted image, in image-normalised units, with its relative strength (0…1].
public struct SalientPoint: Sendable, Equatable {
    /// Horizontal position, 0…1.
    public var x: Double
    /// Vertical position, 0…1.
    public var y: Double
    /// Strength relative to the strongest point (1 for the first).
    public var weight: Double

    /// Creates a point.
    public init(x: Double, y: Double, weight: Double) {
        self.x = x
        self.y = y
        self.weight = weight
    }
}

/// Classical saliency (no model weights): centre–surround contrast on a downscaled opponent-colour image.
///
/// The image is box-averaged to about 64 px across; for two scale pairs the absolute difference between a fine
/// and a coarse box blur of each channel (luma, red–green, yellow–blue) is summed, the map is weighted by a mild
/// centre prior (photographers centre subjects), smoothed, and its peaks are taken with non-maximum suppression.
public enum Saliency {
    /// Up to `count` salient points, strongest first; the image centre when the picture is flat.
    public static func points(in image: RGBAImage, count: Int = 3) -> [SalientPoint] {
        let target = 64
        let scale = max(1, max(image.width, image.height) / target)
        let w = max(1, image.width / scale), h = max(1, image.height / scale)
        var channels = [[Double]](repeating: [Double](repeating: 0, count: w * h), count: 3)
        image.pixels.withUnsafeBufferPointer { px in
            for y in 0..<h {
                for x in 0..<w {
                    var r = 0, g = 0, b = 0
                    for yy in (y * scale)..<(y * scale + scale) {
                        var i = (yy * image.width + x * scale) * 4
                        for _ in 0..<scale {
                            r += Int(px[i]); g += Int(px[i + 1]); b += Int(px[i + 2])
                            i += 4
                        }
                    }
                    let n = Double(scale * scale * 255)
                    let rf = Double(r) / n, gf = Double(g) / n, bf = Double(b) / n
                    channels[0][y * w + x] = 0.299 * rf + 0.587 * gf + 0.114 * bf
                    channels[1][y * w + x] = 0.5 * (rf - gf)
                    channels[2][y * w + x] = 0.5 * ((rf + gf) * 0.5 - bf)
                }
            }
        }
        var map = [Double](repeating: 0, count: w * h)
        let unit = Double(max(w, h)) / 64
        for (fine, coarse) in [(1.0, 5.0), (2.0, 10.0)] {
            let rf = max(1, Int(fine * unit)), rc = max(2, Int(coarse * unit))
            for c in 0..<3 {
                let a = boxBlur(channels[c], w, h, rf), b = boxBlur(channels[c], w, h, rc)
                let weight = c == 0 ? 1.0 : 0.8
                for i in 0..<(w * h) { map[i] += weight * abs(a[i] - b[i]) }
            }
        }
        map = boxBlur(map, w, h, max(1, Int(2 * unit)))
        for y in 0..<h {
            for x in 0..<w {
                let dx = (Double(x) + 0.5) / Double(w) - 0.5, dy = (Double(y) + 0.5) / Double(h) - 0.5
                map[y * w + x] *= 0.35 + 0.65 * exp(-(dx * dx + dy * dy) / (2 * 0.28 * 0.28))
            }
        }
        var result: [SalientPoint] = []
        let peak = map.max() ?? 0
        guard peak > 1e-4 else { return [SalientPoint(x: 0.5, y: 0.5, weight: 1)] }
        while result.count < count {
            guard let best = map.indices.max(by: { map[$0] < map[$1] }), map[best] >= 0.3 * peak else { break }
            let bx = (Double(best % w) + 0.5) / Double(w), by = (Double(best / w) + 0.5) / Double(h)
            result.append(SalientPoint(x: bx, y: by, weight: map[best] / peak))
            // Suppress the neighbourhood so the next point is a different region.
            for y in 0..<h {
                for x in 0..<w {
                    let dx = (Double(x) + 0.5) / Double(w) - bx, dy = (Double(y) + 0.5) / Double(h) - by
                    if dx * dx + dy * dy < 0.22 * 0.22 { map[y * w + x] = 0 }
                }
            }
        }
        return result.isEmpty ? [SalientPoint(x: 0.5, y: 0.5, weight: 1)] : result
    }

    /// Separable box blur with clamped edges (radius r: window 2r+1).
    static func boxBlur(_ src: [Double], _ w: Int, _ h: Int, _ r: Int) -> [Double] {
        var tmp = [Double](repeating: 0, count: w * h)
        var out = [Double](repeating: 0, count: w * h)
        let n = Double(2 * r + 1)
        for y in 0..<h {
            for x in 0..<w {
                var s = 0.0
                for k in -r...r { s += src[y * w + min(w - 1, max(0, x + k))] }
                tmp[y * w + x] = s / n
            }
        }
        for y in 0..<h {
            for x in 0..<w {
                var s = 0.0
                for k in -r...r { s += tmp[min(h - 1, max(0, y + k)) * w + x] }
                out[y * w + x] = s / n
            }
        }
        return out
    }
}
