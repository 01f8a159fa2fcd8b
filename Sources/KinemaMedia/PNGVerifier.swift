import CDeflate
import Foundation

/// Proves that PNG bytes decode, without producing pixels: the checks a full decode makes, at about a third of
/// its cost (no RGBA conversion, and libdeflate instead of zlib for the inflate).
///
/// Checked: the chunk sequence (IHDR first, a PLTE before the image data of a palette image, consecutive IDATs,
/// IEND), every chunk's CRC-32, the IHDR fields (a bit depth allowed for the colour type, compression, filter
/// and interlace methods), no unknown critical chunk, and the image data: a valid zlib stream (its Adler-32
/// included) that inflates to exactly the bytes the header's size, depth, colour type and interlacing call for,
/// with a valid filter type (0–4) at the start of every row. Whatever passes decodes with FFmpeg (tested).
enum PNGVerifier {
    /// The IHDR fields that decide the size of the image data.
    struct Layout: Equatable {
        var width: Int
        var height: Int
        var bitDepth: Int
        var colorType: Int
        var interlaced: Bool

        /// Bits per pixel, or nil for a depth the colour type does not allow.
        var bitsPerPixel: Int? {
            let allowed: [Int]
            let channels: Int
            switch colorType {
            case 0: (allowed, channels) = ([1, 2, 4, 8, 16], 1) // grey
            case 2: (allowed, channels) = ([8, 16], 3) // RGB
            case 3: (allowed, channels) = ([1, 2, 4, 8], 1) // palette
            case 4: (allowed, channels) = ([8, 16], 2) // grey + alpha
            case 6: (allowed, channels) = ([8, 16], 4) // RGBA
            default: return nil
            }
            return allowed.contains(bitDepth) ? bitDepth * channels : nil
        }

        /// The reduced images the data holds, as (width, height): one for a plain image, up to seven for Adam7.
        var passes: [(width: Int, height: Int)] {
            guard interlaced else { return [(width, height)] }
            // (x start, y start, x step, y step) of the seven Adam7 passes.
            let adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            return adam7.map { x0, y0, dx, dy in
                (width > x0 ? (width - x0 + dx - 1) / dx : 0, height > y0 ? (height - y0 + dy - 1) / dy : 0)
            }.filter { $0.0 > 0 && $0.1 > 0 }
        }

        /// Bytes in one row of a pass of `width` pixels, its filter-type byte excluded.
        func rowBytes(_ width: Int, bitsPerPixel: Int) -> Int { (width * bitsPerPixel + 7) / 8 }

        /// The exact size of the inflated image data: every row of every pass plus its filter-type byte.
        func inflatedSize(bitsPerPixel: Int) -> Int {
            passes.reduce(0) { $0 + $1.height * (1 + rowBytes($1.width, bitsPerPixel: bitsPerPixel)) }
        }
    }

    /// Throws `MediaError(.corruptImage)` saying what is wrong, or returns the layout of a PNG that decodes.
    ///
    /// The caller has already checked the header's size against its limits, so the inflate buffer this
    /// allocates (the image data's exact size) is bounded by them.
    @discardableResult
    static func verify(_ data: Data) throws -> Layout {
        try data.withUnsafeBytes { raw in try verify(UnsafeRawBufferPointer(raw), decode: false).layout }
    }

    /// The RGBA pixels of an 8-bit, non-interlaced RGB or RGBA PNG without a tRNS chunk (what photos and screenshots
    /// are), after every check `verify` makes; `nil` for any other kind (after the chunk checks only, without
    /// inflating), which FFmpeg decodes instead. The same pixels
    /// as FFmpeg's decoder gives (tested), at a fraction of its time: libdeflate for the inflate and the row filters
    /// undone in place. A render's serial start-up is mostly this decode (issue 16).
    static func decodeRGBA(_ data: Data) throws -> RGBAImage? {
        try data.withUnsafeBytes { raw in try verify(UnsafeRawBufferPointer(raw), decode: true).image }
    }

    /// Whether `decodeRGBA` decodes this layout (with no tRNS chunk).
    private static func decodesItself(_ layout: Layout) -> Bool {
        layout.bitDepth == 8 && !layout.interlaced && (layout.colorType == 2 || layout.colorType == 6)
    }

    private static func corrupt(_ message: String) -> MediaError {
        MediaError(code: .corruptImage, message: "the PNG " + message)
    }

    private static func verify(_ bytes: UnsafeRawBufferPointer, decode: Bool) throws -> (layout: Layout, image: RGBAImage?) {
        let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard bytes.count >= 8, zip(bytes.prefix(8), signature).allSatisfy({ $0 == $1 }) else {
            throw corrupt("signature is missing")
        }
        func be32(_ offset: Int) -> Int {
            Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
        }

        var layout: Layout?
        var sawPalette = false
        var sawTransparency = false
        var idat: [Range<Int>] = []
        var idatEnded = false // a chunk other than IDAT came after the first IDAT
        var offset = 8
        var ended = false
        while !ended {
            guard offset + 8 <= bytes.count else {
                throw corrupt("is truncated: it ends after \(bytes.count) bytes, before its IEND chunk")
            }
            let length = be32(offset)
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard length <= Int(Int32.max) else { throw corrupt("chunk \(type) declares an impossible length") }
            let dataStart = offset + 8
            guard dataStart + length + 4 <= bytes.count else {
                throw corrupt("is truncated: its \(type) chunk needs \(length) bytes and a checksum, but the file ends first")
            }
            let stored = UInt32(be32(dataStart + length))
            let computed = libdeflate_crc32(0, bytes.baseAddress! + offset + 4, length + 4)
            guard stored == computed else { throw corrupt("chunk \(type) is damaged: its CRC-32 does not match") }
            if offset == 8, type != "IHDR" { throw corrupt("does not start with an IHDR chunk") }

            if !idat.isEmpty, type != "IDAT" { idatEnded = true }
            switch type {
            case "IHDR":
                guard layout == nil else { throw corrupt("has a second IHDR chunk") }
                guard length == 13 else { throw corrupt("IHDR chunk has \(length) bytes instead of 13") }
                let ihdr = Layout(
                    width: be32(dataStart), height: be32(dataStart + 4), bitDepth: Int(bytes[dataStart + 8]),
                    colorType: Int(bytes[dataStart + 9]), interlaced: bytes[dataStart + 12] == 1
                )
                guard ihdr.width > 0, ihdr.height > 0 else { throw corrupt("header gives a zero width or height") }
                guard ihdr.bitsPerPixel != nil else {
                    throw corrupt("header has bit depth \(ihdr.bitDepth) with colour type \(ihdr.colorType), which PNG does not allow")
                }
                guard bytes[dataStart + 10] == 0, bytes[dataStart + 11] == 0, bytes[dataStart + 12] <= 1 else {
                    throw corrupt("header names an unknown compression, filter or interlace method")
                }
                layout = ihdr
            case "PLTE":
                guard idat.isEmpty else { throw corrupt("has its PLTE chunk after the image data") }
                guard length > 0, length % 3 == 0, length <= 768 else { throw corrupt("PLTE chunk has an invalid length (\(length) bytes)") }
                sawPalette = true
            case "IDAT":
                guard !idatEnded else { throw corrupt("image data is split by other chunks (its IDAT chunks must be consecutive)") }
                idat.append(dataStart..<(dataStart + length))
            case "tRNS":
                sawTransparency = true
            case "IEND":
                ended = true
            default:
                // Bit 5 of the first letter clear: a critical chunk, which a decoder must understand to decode.
                if bytes[offset + 4] & 0x20 == 0 { throw corrupt("has an unknown critical chunk '\(type)'") }
            }
            offset = dataStart + length + 4
        }

        guard let layout, let bitsPerPixel = layout.bitsPerPixel else { throw corrupt("has no IHDR chunk") }
        guard !idat.isEmpty else { throw corrupt("has no image data (no IDAT chunk)") }
        if layout.colorType == 3, !sawPalette { throw corrupt("is a palette image without a PLTE chunk") }
        let pixels = !sawTransparency && decodesItself(layout)
        // A decode of a kind this does not take goes to FFmpeg, which inflates the data itself: not twice here.
        if decode, !pixels { return (layout, nil) }
        let image = try inflateAndCheckRows(bytes, idat: idat, layout: layout, bitsPerPixel: bitsPerPixel, decode: decode)
        return (layout, image)
    }

    /// Inflates the image data into a buffer of exactly the expected size and checks every row's filter type; with
    /// `decode` (a layout `decodesItself` takes), also undoes the filters and returns the pixels.
    private static func inflateAndCheckRows(
        _ bytes: UnsafeRawBufferPointer, idat: [Range<Int>], layout: Layout, bitsPerPixel: Int, decode: Bool
    ) throws -> RGBAImage? {
        let expected = layout.inflatedSize(bitsPerPixel: bitsPerPixel)
        guard let decompressor = libdeflate_alloc_decompressor() else {
            throw MediaError(code: .codec, message: "libdeflate could not allocate a decompressor")
        }
        defer { libdeflate_free_decompressor(decompressor) }
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: max(expected, 1), alignment: 16)
        defer { output.deallocate() }

        var produced = 0
        let result: libdeflate_result
        if idat.count == 1 {
            result = libdeflate_zlib_decompress(
                decompressor, bytes.baseAddress! + idat[0].lowerBound, idat[0].count, output.baseAddress!, expected, &produced
            )
        } else {
            // Split image data: join it (one copy of the compressed bytes) for the whole-buffer inflate.
            var joined = [UInt8]()
            joined.reserveCapacity(idat.reduce(0) { $0 + $1.count })
            for range in idat { joined.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[range])) }
            result = joined.withUnsafeBytes {
                libdeflate_zlib_decompress(decompressor, $0.baseAddress!, $0.count, output.baseAddress!, expected, &produced)
            }
        }
        switch result {
        case LIBDEFLATE_SUCCESS:
            guard produced == expected else {
                throw corrupt("image data ends early: it inflates to \(produced) of the \(expected) bytes its header calls for")
            }
        case LIBDEFLATE_INSUFFICIENT_SPACE:
            throw corrupt("image data inflates to more than the \(expected) bytes its header calls for")
        default:
            throw corrupt("image data is corrupt: it is not a valid zlib stream")
        }

        var row = 0
        for pass in layout.passes {
            let stride = 1 + layout.rowBytes(pass.width, bitsPerPixel: bitsPerPixel)
            for _ in 0..<pass.height {
                if output[row] > 4 { throw corrupt("image data has an invalid row filter type (\(output[row]))") }
                row += stride
            }
        }
        guard decode else { return nil }
        return unfilteredRGBA(output, width: layout.width, height: layout.height, channels: bitsPerPixel / 8)
    }

    /// Undoes each row's filter (PNG's None, Sub, Up, Average, Paeth on bytes, `channels` bytes per pixel) in place,
    /// then writes RGBA (opaque for RGB).
    private static func unfilteredRGBA(_ data: UnsafeMutableRawBufferPointer, width: Int, height: Int, channels bpp: Int) -> RGBAImage {
        let stride = width * bpp
        let base = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
        for y in 0..<height {
            let filter = base[y * (stride + 1)]
            let row = base + y * (stride + 1) + 1
            let above: UnsafeMutablePointer<UInt8>? = y > 0 ? row - (stride + 1) : nil
            switch filter {
            case 1:
                for i in bpp..<max(bpp, stride) { row[i] &+= row[i - bpp] }
            case 2:
                if let above { for i in 0..<stride { row[i] &+= above[i] } }
            case 3:
                for i in 0..<stride {
                    let left = i >= bpp ? Int(row[i - bpp]) : 0
                    let up = above.map { Int($0[i]) } ?? 0
                    row[i] &+= UInt8(truncatingIfNeeded: (left + up) >> 1)
                }
            case 4:
                for i in 0..<stride {
                    let a = i >= bpp ? Int(row[i - bpp]) : 0
                    let b = above.map { Int($0[i]) } ?? 0
                    let c = i >= bpp ? (above.map { Int($0[i - bpp]) } ?? 0) : 0
                    let p = a + b - c
                    let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    let predictor = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                    row[i] &+= UInt8(truncatingIfNeeded: predictor)
                }
            default:
                break // 0: None (the type was checked to be 0–4 above)
            }
        }
        let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 4) { out, count in
            for y in 0..<height {
                let row = base + y * (stride + 1) + 1
                let target = out.baseAddress! + y * width * 4
                if bpp == 4 {
                    target.update(from: row, count: stride)
                } else {
                    for x in 0..<width {
                        target[x * 4] = row[x * 3]
                        target[x * 4 + 1] = row[x * 3 + 1]
                        target[x * 4 + 2] = row[x * 3 + 2]
                        target[x * 4 + 3] = 255
                    }
                }
            }
            count = width * height * 4
        }
        return RGBAImage(width: width, height: height, pixels: pixels)
    }
}
