import KinemaMedia

extension PlaneWarp {
    /// Axis-aligned warp (zoom + pan, no roll or keystone) as two separable passes.
    ///
    /// Every output row then shares one column table, and each source row is interpolated horizontally once and
    /// reused by the (about 2 × zoom) output rows that blend it; the vertical blend runs over contiguous rows and
    /// vectorises. About twice as fast as the general kernel, which handles everything else.
    ///
    /// - Parameters:
    ///   - x0, dx: source x of output column 0 and its step per column (16.16); the same for every row.
    ///   - y0, dy: source y of output row 0 and its step per row (16.16).
    static func warpSeparable(
        _ source: SourcePlane, into dst: UnsafeMutablePointer<UInt8>, dstWidth w: Int, dstHeight h: Int,
        x0: Int, dx: Int, y0: Int, dy: Int
    ) {
        let sw = source.width
        let maxX = (source.width - 1) << 16 - 1
        let maxY = (source.height - 1) << 16 - 1
        var columns = [Int](repeating: 0, count: w)
        var weights = [UInt16](repeating: 0, count: w)
        var x = x0
        for i in 0..<w {
            let c = x < 0 ? 0 : (x > maxX ? maxX : x)
            columns[i] = c >> 16
            weights[i] = UInt16((c >> 8) & 255)
            x = x &+ dx
        }
        // Two cached horizontally-interpolated source rows (values × 256), swapped as the window slides down.
        var rowA = [UInt16](repeating: 0, count: w)
        var rowB = [UInt16](repeating: 0, count: w)
        var indexA = -1, indexB = -1
        source.pixels.withUnsafeBufferPointer { buffer in
            let src = buffer.baseAddress!
            columns.withUnsafeBufferPointer { cols in
                weights.withUnsafeBufferPointer { wts in
                    func interpolate(_ sourceRow: Int, into out: UnsafeMutablePointer<UInt16>) {
                        let line = src + sourceRow * sw
                        for i in 0..<w {
                            let ix = cols[i], f = UInt32(wts[i])
                            out[i] = UInt16(truncatingIfNeeded: UInt32(line[ix]) &* (256 &- f) &+ UInt32(line[ix &+ 1]) &* f)
                        }
                    }
                    rowA.withUnsafeMutableBufferPointer { a in
                        rowB.withUnsafeMutableBufferPointer { b in
                            var top = a.baseAddress!, bottom = b.baseAddress!
                            var y = y0
                            for row in 0..<h {
                                let c = y < 0 ? 0 : (y > maxY ? maxY : y)
                                let iy = c >> 16
                                let fy = UInt32((c >> 8) & 255)
                                if indexA != iy {
                                    if indexB == iy {
                                        swap(&top, &bottom)
                                        swap(&indexA, &indexB)
                                    } else {
                                        interpolate(iy, into: top)
                                        indexA = iy
                                    }
                                }
                                if indexB != iy + 1 {
                                    interpolate(iy + 1, into: bottom)
                                    indexB = iy + 1
                                }
                                let out = dst + row * w
                                let wt = 256 &- fy
                                for i in 0..<w {
                                    out[i] = UInt8(truncatingIfNeeded: (UInt32(top[i]) &* wt &+ UInt32(bottom[i]) &* fy &+ 32_768) >> 16)
                                }
                                y = y &+ dy
                            }
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    private static func edge(_ row: UnsafeMutableBufferPointer<UInt8>, _ j: Int, _ w: Int, _ f: UInt32) -> UInt8 {
        let a = UInt32(row[min(w - 1, max(0, j))]), b = UInt32(row[min(w - 1, max(0, j + 1))])
        return UInt8(truncatingIfNeeded: (a * (256 - f) + b * f + 128) >> 8)
    }

    /// Shifts each row of a plane horizontally by `shift(row)` pixels (sub-pixel, edges clamped); rows with no
    /// shift are untouched. Used for ripple and sway on top of the separable warp.
    static func shiftRows(_ plane: UnsafeMutablePointer<UInt8>, width w: Int, height h: Int, shift: (Int) -> Double) {
        var scratch = [UInt8](repeating: 0, count: w)
        scratch.withUnsafeMutableBufferPointer { tmp in
            for row in 0..<h {
                let s = shift(row)
                guard abs(s) >= 1.0 / 256 else { continue }
                let line = plane + row * w
                tmp.baseAddress!.update(from: line, count: w)
                let fixed = Int((s * 65_536).rounded())
                let whole = fixed >> 16
                let f = UInt32((fixed >> 8) & 255), g = 256 &- f
                // Interior: both taps inside the row, a contiguous loop that vectorises; edges clamp.
                let lo = min(w, max(0, -whole)), hi = max(lo, min(w, w - 1 - whole))
                for i in 0..<lo { line[i] = edge(tmp, i + whole, w, f) }
                let p = tmp.baseAddress! + whole
                for i in lo..<hi {
                    line[i] = UInt8(truncatingIfNeeded: (UInt32(p[i]) &* g &+ UInt32(p[i &+ 1]) &* f &+ 128) >> 8)
                }
                for i in hi..<w { line[i] = edge(tmp, i + whole, w, f) }
            }
        }
    }
}
