import KinemaMedia

/// One 8-bit plane of a source image, possibly padded with a soft extension around the image proper.
struct SourcePlane: Sendable {
    /// Stored size (image plus margins).
    let width: Int
    let height: Int
    /// Where the image proper starts inside the stored plane, and its size.
    let originX: Int
    let originY: Int
    let imageWidth: Int
    let imageHeight: Int
    let pixels: [UInt8]
}

/// Where each output pixel of a row samples its source: a start point and a per-pixel step, 16.16 fixed point.
struct RowSpan {
    var x: Int
    var y: Int
    var dx: Int
    var dy: Int
}

/// The fixed-point bilinear warp used for every plane of every frame.
///
/// Source coordinates are linear along an output row (the camera map is bilinear), so each row is one start
/// point plus a constant step; the inner loop is integer-only with 8-bit interpolation weights. Unsafe pointers
/// avoid per-pixel bounds checks in this hot loop; coordinates are clamped to the plane first, so every read is
/// inside it.
enum PlaneWarp {
    static let one = 65_536.0

    /// Renders `rows` of the destination plane (width `dstWidth`) by sampling `source` along `span(row)`.
    static func warp(
        _ source: SourcePlane, into dst: UnsafeMutablePointer<UInt8>, dstWidth: Int, rows: Range<Int>,
        span: (Int) -> RowSpan
    ) {
        let sw = source.width
        let maxX = (source.width - 1) << 16 - 1
        let maxY = (source.height - 1) << 16 - 1
        source.pixels.withUnsafeBufferPointer { buffer in
            let src = buffer.baseAddress!
            for row in rows {
                let s = span(row)
                var x = s.x, y = s.y
                let out = dst + row * dstWidth
                if s.dy == 0 && y >= 0 && y <= maxY {
                    // Common case (no roll or keystone): one source row pair and one vertical weight per row.
                    let fy = (y >> 8) & 255
                    let top = src + (y >> 16) * sw
                    let bottom = top + sw
                    for i in 0..<dstWidth {
                        let cx = x < 0 ? 0 : (x > maxX ? maxX : x)
                        let ix = cx >> 16, fx = (cx >> 8) & 255
                        let t = Int(top[ix]) &* (256 &- fx) &+ Int(top[ix &+ 1]) &* fx
                        let b = Int(bottom[ix]) &* (256 &- fx) &+ Int(bottom[ix &+ 1]) &* fx
                        out[i] = UInt8(truncatingIfNeeded: (t &* (256 &- fy) &+ b &* fy &+ 32_768) >> 16)
                        x = x &+ s.dx
                    }
                } else if inBounds(s, dstWidth, maxX, maxY) {
                    // The whole row samples inside the plane (the usual case): no clamping per pixel.
                    for i in 0..<dstWidth {
                        let fx = (x >> 8) & 255, fy = (y >> 8) & 255
                        let top = src + ((y >> 16) &* sw &+ (x >> 16))
                        let t = Int(top[0]) &* (256 &- fx) &+ Int(top[1]) &* fx
                        let b = Int(top[sw]) &* (256 &- fx) &+ Int(top[sw &+ 1]) &* fx
                        out[i] = UInt8(truncatingIfNeeded: (t &* (256 &- fy) &+ b &* fy &+ 32_768) >> 16)
                        x = x &+ s.dx
                        y = y &+ s.dy
                    }
                } else {
                    for i in 0..<dstWidth {
                        let cx = x < 0 ? 0 : (x > maxX ? maxX : x)
                        let cy = y < 0 ? 0 : (y > maxY ? maxY : y)
                        let ix = cx >> 16, fx = (cx >> 8) & 255
                        let fy = (cy >> 8) & 255
                        let top = src + (cy >> 16) * sw + ix
                        let t = Int(top[0]) &* (256 &- fx) &+ Int(top[1]) &* fx
                        let b = Int(top[sw]) &* (256 &- fx) &+ Int(top[sw &+ 1]) &* fx
                        out[i] = UInt8(truncatingIfNeeded: (t &* (256 &- fy) &+ b &* fy &+ 32_768) >> 16)
                        x = x &+ s.dx
                        y = y &+ s.dy
                    }
                }
            }
        }
    }

    /// Whether every sample of the row lies inside the clamping limits (the span is linear, so its ends decide).
    @inline(__always)
    static func inBounds(_ s: RowSpan, _ width: Int, _ maxX: Int, _ maxY: Int) -> Bool {
        let lastX = s.x &+ s.dx &* (width &- 1), lastY = s.y &+ s.dy &* (width &- 1)
        return s.x >= 0 && s.x <= maxX && lastX >= 0 && lastX <= maxX && s.y >= 0 && s.y <= maxY && lastY >= 0 && lastY <= maxY
    }

    /// The row spans of a camera map on one plane.
    ///
    /// - Parameters:
    ///   - map: output (centred, frame units) → image-normalised coordinates.
    ///   - plane: the source plane (its image proper defines image-normalised units).
    ///   - dstWidth, dstHeight: size of the destination plane.
    ///   - rowShift: optional horizontal displacement of each destination row, in destination pixels.
    static func spans(
        map: ViewMap, plane: SourcePlane, dstWidth: Int, dstHeight: Int, rows: Range<Int>, rowShift: ((Int) -> Double)?
    ) -> [RowSpan] {
        let iw = Double(plane.imageWidth), ih = Double(plane.imageHeight)
        let ox = Double(plane.originX) - 0.5, oy = Double(plane.originY) - 0.5
        let w = Double(dstWidth), h = Double(dstHeight)
        let limit = Double(Int32.max / 2)
        var result: [RowSpan] = []
        result.reserveCapacity(rows.count)
        for row in rows {
            let dv = (Double(row) + 0.5) / h - 0.5
            let shift = rowShift?(row) ?? 0
            // u(du) = a + b·du along the row; du of pixel i is (i + 0.5 + shift)/w − 0.5.
            let a = map.u0 + map.uv * dv, b = map.uu + map.uuv * dv
            let c = map.v0 + map.vv * dv, d = map.vu + map.vuv * dv
            let du0 = (0.5 + shift) / w - 0.5
            let x0 = (a + b * du0) * iw + ox, y0 = (c + d * du0) * ih + oy
            let sx = b / w * iw, sy = d / w * ih
            func fixed(_ v: Double) -> Int { Int((min(limit, max(-limit, v)) * one).rounded()) }
            result.append(RowSpan(x: fixed(x0), y: fixed(y0), dx: fixed(sx), dy: fixed(sy)))
        }
        return result
    }
}
