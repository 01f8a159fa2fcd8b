extension RGBAImage {
    /// The image as it should be displayed for an EXIF orientation (1…8); other values return it unchanged.
    ///
    /// 2 mirrors horizontally, 3 rotates 180°, 4 mirrors vertically, 5 transposes, 6 rotates 90°
    /// clockwise, 7 transverses, 8 rotates 90° counter-clockwise. 5…8 swap width and height.
    public func applyingEXIFOrientation(_ orientation: Int) -> RGBAImage {
        guard (2...8).contains(orientation) else { return self }
        let w = width, h = height
        let transposed = orientation >= 5
        let ow = transposed ? h : w, oh = transposed ? w : h
        // Source pixel for output (x, y): sx = ax*x + bx*y + cx, sy = ay*x + by*y + cy.
        let (ax, bx, cx, ay, by, cy): (Int, Int, Int, Int, Int, Int)
        switch orientation {
        case 2: (ax, bx, cx, ay, by, cy) = (-1, 0, w - 1, 0, 1, 0)
        case 3: (ax, bx, cx, ay, by, cy) = (-1, 0, w - 1, 0, -1, h - 1)
        case 4: (ax, bx, cx, ay, by, cy) = (1, 0, 0, 0, -1, h - 1)
        case 5: (ax, bx, cx, ay, by, cy) = (0, 1, 0, 1, 0, 0)
        case 6: (ax, bx, cx, ay, by, cy) = (0, 1, 0, -1, 0, h - 1)
        case 7: (ax, bx, cx, ay, by, cy) = (0, -1, w - 1, -1, 0, h - 1)
        default: (ax, bx, cx, ay, by, cy) = (0, -1, w - 1, 1, 0, 0) // 8
        }
        var out = [UInt8](repeating: 0, count: ow * oh * 4)
        // Copy whole 4-byte pixels as UInt32; the source/destination indexes stay in bounds by construction.
        pixels.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for y in 0..<oh {
                    var sx = bx * y + cx, sy = by * y + cy
                    var o = y * ow
                    for _ in 0..<ow {
                        let pixel = src.loadUnaligned(fromByteOffset: (sy * w + sx) * 4, as: UInt32.self)
                        dst.storeBytes(of: pixel, toByteOffset: o * 4, as: UInt32.self)
                        sx += ax; sy += ay; o += 1
                    }
                }
            }
        }
        return RGBAImage(width: ow, height: oh, pixels: out)
    }
}
