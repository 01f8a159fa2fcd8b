/// RGBA ↔ yuv420p conversion with BT.709 coefficients at limited (TV) range, as the encoder tags its output.
public enum ColorConversion {
    // BT.709 luma weights Kr = 0.2126, Kb = 0.0722 scaled to limited range (Y 16…235, C 16…240) in
    // 16.16 fixed point. Chroma rows: Cb = (B - Y') / 1.8556, Cr = (R - Y') / 1.5748.
    private static let yR = 11_966, yG = 40_254, yB = 4_064 // 0.2126, 0.7152, 0.0722 × 219/255 × 65536
    private static let uR = -6_596, uG = -22_189, uB = 28_784 // -0.114572, -0.385428, 0.5 × 224/255 × 65536
    private static let vR = 28_784, vG = -26_145, vB = -2_639 // 0.5, -0.454153, -0.045847 × 224/255 × 65536

    /// RGBA → yuv420p, BT.709 limited range (chroma averaged over 2x2). Alpha composited over black.
    ///
    /// The image needs even dimensions (every output size of `OutputGeometry` has them).
    public static func yuv420(from image: RGBAImage) -> YUVFrame {
        precondition(image.width % 2 == 0 && image.height % 2 == 0, "yuv420 needs an image with even dimensions")
        let w = image.width, h = image.height, cw = w / 2, ch = h / 2
        var yPlane = [UInt8](repeating: 0, count: w * h)
        var uPlane = [UInt8](repeating: 0, count: cw * ch)
        var vPlane = [UInt8](repeating: 0, count: cw * ch)
        // Hot loop (every frame of a render may pass here): unsafe buffers avoid per-byte bounds checks.
        image.pixels.withUnsafeBufferPointer { px in
            yPlane.withUnsafeMutableBufferPointer { yp in
                uPlane.withUnsafeMutableBufferPointer { up in
                    vPlane.withUnsafeMutableBufferPointer { vp in
                        for cy in 0..<ch {
                            for cx in 0..<cw {
                                var sr = 0, sg = 0, sb = 0
                                for dy in 0..<2 {
                                    let y = cy * 2 + dy
                                    for dx in 0..<2 {
                                        let x = cx * 2 + dx
                                        let p = (y * w + x) * 4
                                        var r = Int(px[p]), g = Int(px[p + 1]), b = Int(px[p + 2])
                                        let a = Int(px[p + 3])
                                        if a != 255 {
                                            // Over black: c × a / 255, rounded.
                                            r = (r * a * 257 + 32_896) >> 16
                                            g = (g * a * 257 + 32_896) >> 16
                                            b = (b * a * 257 + 32_896) >> 16
                                        }
                                        yp[y * w + x] = UInt8(truncatingIfNeeded: (yR * r + yG * g + yB * b + (16 << 16) + (1 << 15)) >> 16)
                                        sr += r; sg += g; sb += b
                                    }
                                }
                                // Sums of four pixels: two more fractional bits.
                                let c = cy * cw + cx
                                up[c] = UInt8(truncatingIfNeeded: (uR * sr + uG * sg + uB * sb + (128 << 18) + (1 << 17)) >> 18)
                                vp[c] = UInt8(truncatingIfNeeded: (vR * sr + vG * sg + vB * sb + (128 << 18) + (1 << 17)) >> 18)
                            }
                        }
                    }
                }
            }
        }
        return YUVFrame(width: w, height: h, y: yPlane, u: uPlane, v: vPlane)
    }

    /// yuv420p BT.709 limited → RGBA (for tests and analysis).
    ///
    /// Each chroma sample serves its 2×2 block (no interpolation); alpha is 255.
    public static func rgba(from frame: YUVFrame) -> RGBAImage {
        let w = frame.width, h = frame.height, cw = w / 2
        // Inverse of the matrix above, 16.16 fixed point: 255/219, 1.5748×255/224, …
        let yScale = 76_309, rV = 117_489, gU = -13_975, gV = -34_925, bU = 138_438
        var out = [UInt8](repeating: 255, count: w * h * 4)
        frame.y.withUnsafeBufferPointer { yp in
            frame.u.withUnsafeBufferPointer { up in
                frame.v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { px in
                        for y in 0..<h {
                            for x in 0..<w {
                                let c = (y / 2) * cw + x / 2
                                let l = (Int(yp[y * w + x]) - 16) * yScale + (1 << 15)
                                let u = Int(up[c]) - 128, v = Int(vp[c]) - 128
                                let p = (y * w + x) * 4
                                px[p] = clamp8((l + rV * v) >> 16)
                                px[p + 1] = clamp8((l + gU * u + gV * v) >> 16)
                                px[p + 2] = clamp8((l + bU * u) >> 16)
                            }
                        }
                    }
                }
            }
        }
        return RGBAImage(width: w, height: h, pixels: out)
    }

    @inline(__always) private static func clamp8(_ v: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: v < 0 ? 0 : (v > 255 ? 255 : v))
    }
}
