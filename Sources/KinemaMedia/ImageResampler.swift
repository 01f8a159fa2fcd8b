import Foundation

/// A rectangle in source pixel coordinates; (0, 0) is the top-left corner of the top-left pixel,
/// so pixel `i` spans `[i, i + 1)`. Fractional values are allowed.
public struct PixelRect: Sendable, Equatable {
    /// Left edge.
    public var x: Double
    /// Top edge.
    public var y: Double
    /// Width in source pixels (> 0).
    public var width: Double
    /// Height in source pixels (> 0).
    public var height: Double

    /// Creates a rectangle from its origin and size.
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

/// High-quality RGBA resizing: separable bicubic (Catmull-Rom) convolution whose kernel widens with
/// the reduction factor, so downscaling averages every source pixel (no aliasing) and upscaling is smooth.
///
/// Large reductions first average integer blocks (a box prefilter), keeping the cost near
/// proportional to the source size. Images with transparency are resampled premultiplied, so
/// transparent pixels never bleed their colour into their neighbours.
public enum ImageResampler {
    /// High-quality (area/box-filtered downscale or bicubic/Lanczos; no aliasing) resize.
    public static func resize(_ image: RGBAImage, width: Int, height: Int) -> RGBAImage {
        resample(image, from: PixelRect(x: 0, y: 0, width: Double(image.width), height: Double(image.height)), width: width, height: height)
    }

    /// Cover fit: scale so the target is fully covered, centred crop.
    ///
    /// The rule: scale by `max(width / image.width, height / image.height)`, the smallest scale at
    /// which the image covers the whole target, then crop the dimension that overflows equally from
    /// both sides. The aspect ratio is kept, nothing is letterboxed, and at most one dimension loses
    /// pixels. `coverRect` returns the source rectangle this keeps.
    public static func coverFit(_ image: RGBAImage, width: Int, height: Int) -> RGBAImage {
        resample(
            image,
            from: coverRect(sourceWidth: image.width, sourceHeight: image.height, targetWidth: width, targetHeight: height),
            width: width, height: height
        )
    }

    /// The centred source rectangle that `coverFit` scales onto a `targetWidth`×`targetHeight` frame.
    public static func coverRect(sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int) -> PixelRect {
        precondition(sourceWidth > 0 && sourceHeight > 0 && targetWidth > 0 && targetHeight > 0, "coverRect needs positive sizes")
        let scale = max(Double(targetWidth) / Double(sourceWidth), Double(targetHeight) / Double(sourceHeight))
        let w = min(Double(sourceWidth), Double(targetWidth) / scale)
        let h = min(Double(sourceHeight), Double(targetHeight) / scale)
        return PixelRect(x: (Double(sourceWidth) - w) / 2, y: (Double(sourceHeight) - h) / 2, width: w, height: h)
    }

    /// Resamples the part of `image` inside `rect` onto a `width`×`height` image (crop and scale in one pass).
    ///
    /// Parts of `rect` outside the image take the nearest edge pixels' weight (the kernel is
    /// renormalised over the pixels that exist), so a rect slightly outside the image is safe.
    public static func resample(_ image: RGBAImage, from rect: PixelRect, width: Int, height: Int) -> RGBAImage {
        precondition(width > 0 && height > 0, "resample needs a positive output size")
        precondition(rect.width > 0 && rect.height > 0 && rect.x.isFinite && rect.y.isFinite, "resample needs a finite, non-empty source rect")
        let opaque = isOpaque(image)
        var source = opaque ? image : premultiplied(image)
        var area = rect

        // Box prefilter: shrink by whole factors first so the convolution below sees at most ~4x reduction.
        let fx = rect.width / Double(width) >= 4 ? Int(rect.width / Double(width) / 2) : 1
        let fy = rect.height / Double(height) >= 4 ? Int(rect.height / Double(height) / 2) : 1
        if fx > 1 || fy > 1 {
            let x0 = max(0, min(source.width - 1, Int(rect.x.rounded(.down))))
            let y0 = max(0, min(source.height - 1, Int(rect.y.rounded(.down))))
            let x1 = max(x0 + 1, min(source.width, Int((rect.x + rect.width).rounded(.up))))
            let y1 = max(y0 + 1, min(source.height, Int((rect.y + rect.height).rounded(.up))))
            source = boxReduce(source, x0: x0, y0: y0, x1: x1, y1: y1, fx: fx, fy: fy)
            area = PixelRect(
                x: (rect.x - Double(x0)) / Double(fx), y: (rect.y - Double(y0)) / Double(fy),
                width: rect.width / Double(fx), height: rect.height / Double(fy)
            )
        }
        let result = convolve(source, area, width: width, height: height)
        return opaque ? result : unpremultiplied(result)
    }

    // MARK: - Kernel

    private static let precisionBits = 14

    /// Catmull-Rom cubic (a = -0.5): sharp, little ringing, support 2.
    private static func cubic(_ x: Double) -> Double {
        let a = -0.5, t = abs(x)
        if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
        if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
        return 0
    }

    /// Per output pixel: first source index, tap count, and fixed-point weights (`maxTaps` per pixel).
    private struct Taps {
        var start: [Int]
        var count: [Int]
        var weights: [Int32]
        var maxTaps: Int
    }

    private static func taps(inputSize: Int, from origin: Double, extent: Double, outputSize: Int) -> Taps {
        let scale = extent / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 2 * filterScale
        let maxTaps = Int(support.rounded(.up)) * 2 + 1
        var start = [Int](repeating: 0, count: outputSize)
        var count = [Int](repeating: 0, count: outputSize)
        var weights = [Int32](repeating: 0, count: outputSize * maxTaps)
        var real = [Double](repeating: 0, count: maxTaps)
        let one = Double(1 << precisionBits)
        for o in 0..<outputSize {
            let center = origin + (Double(o) + 0.5) * scale
            var lo = max(0, Int((center - support + 0.5).rounded(.down)))
            var hi = min(inputSize, Int((center + support + 0.5).rounded(.down)))
            hi = min(hi, lo + maxTaps)
            var total = 0.0
            if lo < hi {
                for i in lo..<hi {
                    let w = cubic((Double(i) - center + 0.5) / filterScale)
                    real[i - lo] = w
                    total += w
                }
            }
            if lo >= hi || total == 0 {
                // Entirely outside the image (or a degenerate kernel): take the nearest edge pixel.
                lo = max(0, min(inputSize - 1, Int(center.rounded(.down))))
                hi = lo + 1
                real[0] = 1
                total = 1
            }
            // Quantise, then give the rounding remainder to the largest weight so flat areas stay exact.
            var fixed = (0..<(hi - lo)).map { Int32((real[$0] / total * one).rounded()) }
            let remainder = Int32(one) - fixed.reduce(0, +)
            if let largest = fixed.indices.max(by: { fixed[$0] < fixed[$1] }) { fixed[largest] += remainder }
            // Zero taps at either end cost time for nothing (an unscaled axis keeps a single tap).
            var first = 0, last = fixed.count
            while last - first > 1, fixed[first] == 0 { first += 1 }
            while last - first > 1, fixed[last - 1] == 0 { last -= 1 }
            start[o] = lo + first
            count[o] = last - first
            for i in first..<last { weights[o * maxTaps + i - first] = fixed[i] }
        }
        return Taps(start: start, count: count, weights: weights, maxTaps: maxTaps)
    }

    // MARK: - Passes

    // The passes below are the hot loops of every resize: raw pointers avoid per-byte bounds
    // checks, and wrapping Int32 arithmetic (which cannot overflow: 255 × 2^14 × Σ|w| < 2^31) lets the
    // compiler vectorise the vertical pass. All indexes come from `taps`, which keeps them inside the image.
    private static func convolve(_ image: RGBAImage, _ rect: PixelRect, width: Int, height: Int) -> RGBAImage {
        let h = taps(inputSize: image.width, from: rect.x, extent: rect.width, outputSize: width)
        let v = taps(inputSize: image.height, from: rect.y, extent: rect.height, outputSize: height)
        // Only the source rows and columns that some output pixel reads take part.
        let firstRow = v.start.min() ?? 0
        let rows = (zip(v.start, v.count).map { $0 + $1 }.max() ?? 1) - firstRow
        let firstCol = h.start.min() ?? 0
        let cols = (zip(h.start, h.count).map { $0 + $1 }.max() ?? 1) - firstCol
        let hTapsTotal = h.count.reduce(0, +), vTapsTotal = v.count.reduce(0, +)
        // The horizontal pass is scalar per pixel, the vertical one vectorised (~4x cheaper per tap):
        // run whichever order does less work. Downscales usually go vertical-first.
        let horizontalFirst = rows * hTapsTotal * 4 + vTapsTotal * width / 4 <= height * hTapsTotal * 4 + vTapsTotal * cols / 4
        var out = [UInt8](repeating: 0, count: width * height * 4)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                guard let src = src.baseAddress, let dst = dst.baseAddress else { return }
                let inStride = image.width * 4
                if horizontalFirst {
                    var mid = [UInt8](repeating: 0, count: width * 4 * rows)
                    mid.withUnsafeMutableBufferPointer { mid in
                        guard let mid = mid.baseAddress else { return }
                        horizontalPass(src + firstRow * inStride, stride: inStride, rows: rows, taps: h, colOffset: 0, into: mid, width: width)
                        verticalPass(mid, stride: width * 4, rowOffset: firstRow, rowBytes: width * 4, taps: v, into: dst, height: height)
                    }
                } else {
                    var mid = [UInt8](repeating: 0, count: cols * 4 * height)
                    mid.withUnsafeMutableBufferPointer { mid in
                        guard let mid = mid.baseAddress else { return }
                        verticalPass(src + firstCol * 4, stride: inStride, rowOffset: 0, rowBytes: cols * 4, taps: v, into: mid, height: height)
                        horizontalPass(mid, stride: cols * 4, rows: height, taps: h, colOffset: firstCol, into: dst, width: width)
                    }
                }
            }
        }
        return RGBAImage(width: width, height: height, pixels: out)
    }

    /// Filters `rows` rows along x; tap `start`s are absolute columns, `colOffset` is the column at `src`.
    private static func horizontalPass(
        _ src: UnsafePointer<UInt8>, stride: Int, rows: Int, taps: Taps, colOffset: Int,
        into dst: UnsafeMutablePointer<UInt8>, width: Int
    ) {
        assert(precisionBits == 14, "the loop below shifts by a literal 14")
        let rounding = Int32(1 << (precisionBits - 1))
        taps.weights.withUnsafeBufferPointer { k in
            taps.start.withUnsafeBufferPointer { starts in
                taps.count.withUnsafeBufferPointer { counts in
                    guard let k = k.baseAddress else { return }
                    parallelRows(rows, costPerRow: width * taps.maxTaps) { r in
                        let srcRow = src + r &* stride
                        let dstRow = dst + r &* width &* 4
                        for x in 0..<width {
                            // One SIMD lane per channel: the four channels of a pixel share each weight.
                            var c = SIMD4<Int32>(repeating: rounding)
                            var p = srcRow + (starts[x] &- colOffset) &* 4
                            var kp = k + x &* taps.maxTaps
                            for _ in 0..<counts[x] {
                                let px = SIMD4<Int32>(Int32(p[0]), Int32(p[1]), Int32(p[2]), Int32(p[3]))
                                c &+= px &* SIMD4<Int32>(repeating: kp.pointee)
                                p += 4
                                kp += 1
                            }
                            c = c &>> 14
                            c.replace(with: 0, where: c .< 0)
                            c.replace(with: 255, where: c .> 255)
                            let d = dstRow + x &* 4
                            d[0] = UInt8(truncatingIfNeeded: c[0])
                            d[1] = UInt8(truncatingIfNeeded: c[1])
                            d[2] = UInt8(truncatingIfNeeded: c[2])
                            d[3] = UInt8(truncatingIfNeeded: c[3])
                        }
                    }
                }
            }
        }
    }

    /// Filters along y, `rowBytes` bytes per row; tap `start`s are absolute rows, `rowOffset` is the row at `src`.
    private static func verticalPass(
        _ src: UnsafePointer<UInt8>, stride: Int, rowOffset: Int, rowBytes: Int, taps: Taps,
        into dst: UnsafeMutablePointer<UInt8>, height: Int
    ) {
        assert(precisionBits == 14, "the output loop below shifts by a literal 14")
        let rounding = Int32(1 << (precisionBits - 1))
        taps.weights.withUnsafeBufferPointer { k in
            parallelRows(height, costPerRow: rowBytes * taps.maxTaps / 4) { y in
                withUnsafeTemporaryAllocation(of: Int32.self, capacity: rowBytes) { accBuffer in
                    guard let acc = accBuffer.baseAddress else { return }
                    for i in 0..<rowBytes { acc[i] = rounding }
                    // Row by row, so the inner loop runs over contiguous bytes and vectorises.
                    for t in 0..<taps.count[y] {
                        let w = k[y &* taps.maxTaps &+ t]
                        let row = src + (taps.start[y] &- rowOffset &+ t) &* stride
                        for i in 0..<rowBytes { acc[i] = acc[i] &+ Int32(row[i]) &* w }
                    }
                    let out = dst + y &* rowBytes
                    // A literal shift and min/max keep this loop vectorised too.
                    for i in 0..<rowBytes { out[i] = UInt8(truncatingIfNeeded: min(max(acc[i] >> 14, 0), 255)) }
                }
            }
        }
    }

    /// Runs `body` for every row in `0..<count`, split into bands across the cores when the work is big
    /// enough to pay for the threads. Bands write disjoint output rows, so no synchronisation is needed.
    private static func parallelRows(_ count: Int, costPerRow: Int, _ body: (Int) -> Void) {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let bands = min(cores, count, max(1, count * costPerRow / 2_000_000))
        if bands <= 1 {
            for row in 0..<count { body(row) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = RowBody(run: body)
            DispatchQueue.concurrentPerform(iterations: bands) { band in
                for row in (count * band / bands)..<(count * (band + 1) / bands) { shared.run(row) }
            }
        }
    }

    // SAFETY: `concurrentPerform` returns only after every band has finished, so the closure and the
    // buffers it captures outlive all uses; bands only read shared inputs and write disjoint output rows.
    private struct RowBody: @unchecked Sendable {
        let run: (Int) -> Void
    }

    /// Averages `fx`×`fy` blocks of the region `[x0, x1)×[y0, y1)`; partial edge blocks average what they have.
    private static func boxReduce(_ image: RGBAImage, x0: Int, y0: Int, x1: Int, y1: Int, fx: Int, fy: Int) -> RGBAImage {
        let ow = (x1 - x0 + fx - 1) / fx, oh = (y1 - y0 + fy - 1) / fy
        let inStride = image.width * 4
        var out = [UInt8](repeating: 0, count: ow * oh * 4)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var sums = [Int](repeating: 0, count: ow * 4)
                for oy in 0..<oh {
                    let rowStart = y0 + oy * fy, rowEnd = min(y1, rowStart + fy)
                    for i in 0..<sums.count { sums[i] = 0 }
                    for y in rowStart..<rowEnd {
                        let row = y * inStride
                        for ox in 0..<ow {
                            let colStart = x0 + ox * fx, colEnd = min(x1, colStart + fx)
                            var p = row + colStart * 4
                            var s0 = 0, s1 = 0, s2 = 0, s3 = 0
                            for _ in colStart..<colEnd {
                                s0 += Int(src[p]); s1 += Int(src[p + 1]); s2 += Int(src[p + 2]); s3 += Int(src[p + 3])
                                p += 4
                            }
                            sums[ox * 4] += s0; sums[ox * 4 + 1] += s1; sums[ox * 4 + 2] += s2; sums[ox * 4 + 3] += s3
                        }
                    }
                    for ox in 0..<ow {
                        let colStart = x0 + ox * fx, colEnd = min(x1, colStart + fx)
                        let n = (colEnd - colStart) * (rowEnd - rowStart)
                        let d = (oy * ow + ox) * 4
                        for c in 0..<4 { dst[d + c] = UInt8((sums[ox * 4 + c] + n / 2) / n) }
                    }
                }
            }
        }
        return RGBAImage(width: ow, height: oh, pixels: out)
    }

    private static func isOpaque(_ image: RGBAImage) -> Bool {
        image.pixels.withUnsafeBufferPointer { p in
            var i = 3
            while i < p.count {
                if p[i] != 255 { return false }
                i += 4
            }
            return true
        }
    }

    private static func premultiplied(_ image: RGBAImage) -> RGBAImage {
        var px = image.pixels
        px.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 4) {
                let a = Int(p[i + 3])
                if a == 255 { continue }
                for c in 0..<3 { p[i + c] = UInt8((Int(p[i + c]) * a + 127) / 255) }
            }
        }
        return RGBAImage(width: image.width, height: image.height, pixels: px)
    }

    private static func unpremultiplied(_ image: RGBAImage) -> RGBAImage {
        var px = image.pixels
        px.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 4) {
                let a = Int(p[i + 3])
                if a == 255 { continue }
                if a == 0 { p[i] = 0; p[i + 1] = 0; p[i + 2] = 0; continue }
                for c in 0..<3 { p[i + c] = UInt8(min(255, (Int(p[i + c]) * 255 + a / 2) / a)) }
            }
        }
        return RGBAImage(width: image.width, height: image.height, pixels: px)
    }
}
