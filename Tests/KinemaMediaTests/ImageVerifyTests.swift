import CDeflate
import Foundation
@testable import KinemaMedia
import KinemaTestSupport
import Testing
import KinemaCore

/// `ImageDecoder.verify` is what a submit runs instead of a full decode. It must accept exactly what decodes:
/// every PNG it accepts decodes with FFmpeg, and damaged files (with or without valid checksums) are refused
/// with a message that says what is wrong.
@Suite struct ImageVerify {
    /// Builds PNG files chunk by chunk, so tests can make valid files of every kind and precisely broken ones.
    enum PNGFile {
        static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

        static func chunk(_ type: String, _ data: [UInt8], crcDelta: UInt32 = 0) -> [UInt8] {
            let body = Array(type.utf8) + data
            let crc = body.withUnsafeBytes { libdeflate_crc32(0, $0.baseAddress, $0.count) } ^ crcDelta
            return be32(data.count) + body + be32(Int(crc))
        }

        static func zlib(_ raw: [UInt8]) -> [UInt8] {
            let compressor = libdeflate_alloc_compressor(6)!
            defer { libdeflate_free_compressor(compressor) }
            var out = [UInt8](repeating: 0, count: libdeflate_zlib_compress_bound(compressor, raw.count))
            let n = raw.withUnsafeBytes { r in
                out.withUnsafeMutableBytes { o in libdeflate_zlib_compress(compressor, r.baseAddress, r.count, o.baseAddress, o.count) }
            }
            return Array(out.prefix(n))
        }

        static func ihdr(_ width: Int, _ height: Int, depth: Int, colorType: Int, interlaced: Bool) -> [UInt8] {
            chunk("IHDR", be32(width) + be32(height) + [UInt8(depth), UInt8(colorType), 0, 0, interlaced ? 1 : 0])
        }

        static func channels(_ colorType: Int) -> Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType]! }

        /// Sizes of the reduced images, written out independently of the code under test.
        static func passSizes(_ width: Int, _ height: Int, interlaced: Bool) -> [(Int, Int)] {
            if !interlaced { return [(width, height)] }
            let starts = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
            var sizes: [(Int, Int)] = []
            for (x0, y0, dx, dy) in starts {
                let w = stride(from: x0, to: width, by: dx).reduce(0) { n, _ in n + 1 }
                let h = stride(from: y0, to: height, by: dy).reduce(0) { n, _ in n + 1 }
                if w > 0 && h > 0 { sizes.append((w, h)) }
            }
            return sizes
        }

        /// Raw image data: every row starts with a filter type (cycling 0…4) followed by pseudo-random bytes.
        static func rawData(_ width: Int, _ height: Int, depth: Int, colorType: Int, interlaced: Bool, seed: UInt64 = 1) -> [UInt8] {
            var state = seed
            var raw: [UInt8] = []
            var row = 0
            for (w, h) in passSizes(width, height, interlaced: interlaced) {
                let bytes = (w * depth * channels(colorType) + 7) / 8
                for _ in 0..<h {
                    raw.append(UInt8(row % 5))
                    row += 1
                    for _ in 0..<bytes {
                        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        raw.append(UInt8(truncatingIfNeeded: state >> 33))
                    }
                }
            }
            return raw
        }

        static func palette(_ depth: Int) -> [UInt8] {
            var entries: [UInt8] = []
            for i in 0..<(1 << depth) {
                entries += [UInt8(i & 0xFF), UInt8((i * 7) & 0xFF), UInt8(255 - (i & 0xFF))]
            }
            return chunk("PLTE", entries)
        }

        static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        static let end = chunk("IEND", [])

        /// A valid file: IHDR, PLTE for palette images, one IDAT, IEND.
        static func valid(_ width: Int, _ height: Int, depth: Int = 8, colorType: Int = 2, interlaced: Bool = false) -> [UInt8] {
            let raw = rawData(width, height, depth: depth, colorType: colorType, interlaced: interlaced)
            return signature + ihdr(width, height, depth: depth, colorType: colorType, interlaced: interlaced)
                + (colorType == 3 ? palette(depth) : []) + chunk("IDAT", zlib(raw)) + end
        }
    }

    func verifyError(_ bytes: [UInt8]) -> MediaError? {
        mediaError { try ImageDecoder.verify(Data(bytes)) }
    }

    static let kinds: [(depth: Int, colorType: Int)] = [
        (1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3), (8, 4), (16, 4), (8, 6), (16, 6),
    ]

    /// 8-bit RGB and RGBA PNGs are decoded by Kinema itself (libdeflate, filters undone in place): the pixels must be
    /// FFmpeg's, for every filter type (the rows cycle through 0–4 over pseudo-random bytes) and odd sizes; a tRNS
    /// chunk, other depths and interlacing go to FFmpeg.
    @Test func ownPNGDecodeGivesFFmpegsPixels() async throws {
        try await offPool {
            for (width, height) in [(1, 1), (2, 7), (13, 11), (64, 9), (301, 17)] {
                for colorType in [2, 6] {
                    for seed in [1, 2, 3] as [UInt64] {
                        let raw = PNGFile.rawData(width, height, depth: 8, colorType: colorType, interlaced: false, seed: seed)
                        let file = Data(
                            PNGFile.signature + PNGFile.ihdr(width, height, depth: 8, colorType: colorType, interlaced: false)
                                + PNGFile.chunk("IDAT", PNGFile.zlib(raw)) + PNGFile.end)
                        let what = "\(width)x\(height) colour type \(colorType) seed \(seed)"
                        let own = try #require(try PNGVerifier.decodeRGBA(file), "\(what) is decoded by Kinema")
                        let ffmpeg = try ImageDecoder.decodeWithFFmpeg(file, header: ImageDecoder.validatedHeader(file))
                        #expect(own == ffmpeg, "\(what)")
                        #expect(try ImageDecoder.decode(file) == ffmpeg, "\(what)")
                    }
                }
            }
            // Not decoded here: a tRNS chunk, 16-bit, grey, palette, interlaced.
            let rgb = PNGFile.rawData(5, 4, depth: 8, colorType: 2, interlaced: false)
            let withTRNS = Data(
                PNGFile.signature + PNGFile.ihdr(5, 4, depth: 8, colorType: 2, interlaced: false) + PNGFile.chunk("tRNS", [0, 1, 0, 2, 0, 3])
                    + PNGFile.chunk("IDAT", PNGFile.zlib(rgb)) + PNGFile.end)
            #expect(try PNGVerifier.decodeRGBA(withTRNS) == nil)
            #expect(try ImageDecoder.decode(withTRNS) == ImageDecoder.decodeWithFFmpeg(withTRNS, header: ImageDecoder.validatedHeader(withTRNS)))
            for (depth, colorType, interlaced) in [(16, 2, false), (8, 0, false), (8, 3, false), (8, 6, true)] {
                let file = Data(PNGFile.valid(9, 5, depth: depth, colorType: colorType, interlaced: interlaced))
                #expect(try PNGVerifier.decodeRGBA(file) == nil, "depth \(depth) colour type \(colorType) interlaced \(interlaced)")
            }
        }
    }

    @Test(arguments: [false, true])
    func everyColourTypeDepthAndInterlacingVerifiesAndDecodes(interlaced: Bool) async throws {
        try await offPool {
            // Odd sizes exercise partial bytes and Adam7's uneven passes; 1x1 and 3x2 leave some passes empty.
            for (width, height) in [(13, 11), (1, 1), (3, 2), (64, 9)] {
                for kind in Self.kinds {
                    let file = PNGFile.valid(width, height, depth: kind.depth, colorType: kind.colorType, interlaced: interlaced)
                    let what = "\(width)x\(height) depth \(kind.depth) colour type \(kind.colorType) interlaced \(interlaced)"
                    #expect(verifyError(file) == nil, "\(what): \(verifyError(file)?.message ?? "")")
                    #expect(throws: Never.self, "\(what) must decode with FFmpeg") { try ImageDecoder.decode(Data(file)) }
                }
            }
        }
    }

    @Test func filesFromTheEncodersVerify() async throws {
        try await offPool {
            let image = smoothImage(width: 320, height: 200, alpha: 180)
            try ImageDecoder.verify(ImageEncoder.png(image))
            try ImageDecoder.verify(ImageEncoder.jpeg(image))
            let header = try ImageDecoder.verify(ImageEncoder.jpeg(image))
            #expect(header.format == .jpeg && header.width == 320 && header.height == 200)
        }
    }

    @Test func imageDataMayBeSplitAcrossConsecutiveChunks() async throws {
        try await offPool {
            let compressed = PNGFile.zlib(PNGFile.rawData(40, 30, depth: 8, colorType: 6, interlaced: false))
            let thirds = stride(from: 0, to: compressed.count, by: compressed.count / 3 + 1).map {
                PNGFile.chunk("IDAT", Array(compressed[$0..<min($0 + compressed.count / 3 + 1, compressed.count)]))
            }
            // An empty IDAT and an ancillary chunk before the data are fine too.
            let file =
                PNGFile.signature + PNGFile.ihdr(40, 30, depth: 8, colorType: 6, interlaced: false)
                + PNGFile.chunk("teXt", Array("a\0b".utf8)) + thirds.joined() + PNGFile.chunk("IDAT", []) + PNGFile.end
            #expect(verifyError(file) == nil)
            #expect(throws: Never.self) { try ImageDecoder.decode(Data(file)) }
        }
    }

    /// Each damaged file carries valid CRCs unless the damage is the CRC itself: only the check named catches it.
    @Test func damagedFilesAreRefusedWithTheReason() async throws {
        try await offPool {
            let w = 30, h = 20
            let ihdr = PNGFile.ihdr(w, h, depth: 8, colorType: 2, interlaced: false)
            let raw = PNGFile.rawData(w, h, depth: 8, colorType: 2, interlaced: false)
            let start = PNGFile.signature + ihdr
            var badFilter = raw
            badFilter[(1 + w * 3) * 7] = 5 // row 7's filter type
            var damagedStream = PNGFile.zlib(raw)
            damagedStream[damagedStream.count / 2] ^= 0x55
            let idat = PNGFile.chunk("IDAT", PNGFile.zlib(raw))

            let cases: [(String, [UInt8], String)] = [
                ("one byte short", start + PNGFile.chunk("IDAT", PNGFile.zlib(Array(raw.dropLast()))) + PNGFile.end, "ends early"),
                ("one byte long", start + PNGFile.chunk("IDAT", PNGFile.zlib(raw + [0])) + PNGFile.end, "more than"),
                ("bad filter type", start + PNGFile.chunk("IDAT", PNGFile.zlib(badFilter)) + PNGFile.end, "filter type (5)"),
                ("damaged zlib stream", start + PNGFile.chunk("IDAT", damagedStream) + PNGFile.end, "not a valid zlib stream"),
                ("not zlib at all", start + PNGFile.chunk("IDAT", raw) + PNGFile.end, "not a valid zlib stream"),
                ("wrong CRC", start + PNGFile.chunk("IDAT", PNGFile.zlib(raw), crcDelta: 1) + PNGFile.end, "CRC-32 does not match"),
                ("no IEND", start + idat, "before its IEND"),
                ("cut inside a chunk", Array((start + idat).dropLast(9)), "the file ends first"),
                ("no image data", start + PNGFile.end, "no image data"),
                (
                    "split image data",
                    start + PNGFile.chunk("IDAT", Array(PNGFile.zlib(raw).prefix(10)))
                        + PNGFile.chunk("tEXt", Array("k\0v".utf8)) + PNGFile.chunk("IDAT", Array(PNGFile.zlib(raw).dropFirst(10))) + PNGFile.end,
                    "must be consecutive"
                ),
                ("unknown critical chunk", start + PNGFile.chunk("CgBI", [0, 0, 0, 0]) + idat + PNGFile.end, "unknown critical chunk 'CgBI'"),
                (
                    "palette image without PLTE",
                    PNGFile.signature + PNGFile.ihdr(w, h, depth: 8, colorType: 3, interlaced: false)
                        + PNGFile.chunk("IDAT", PNGFile.zlib(PNGFile.rawData(w, h, depth: 8, colorType: 3, interlaced: false))) + PNGFile.end,
                    "without a PLTE"
                ),
                (
                    "PLTE after the data",
                    PNGFile.signature + PNGFile.ihdr(w, h, depth: 8, colorType: 3, interlaced: false)
                        + PNGFile.chunk("IDAT", PNGFile.zlib(PNGFile.rawData(w, h, depth: 8, colorType: 3, interlaced: false))) + PNGFile.palette(8)
                        + PNGFile.end, "PLTE chunk after the image data"
                ),
                (
                    "depth not allowed", PNGFile.signature + PNGFile.ihdr(w, h, depth: 4, colorType: 2, interlaced: false) + idat + PNGFile.end,
                    "bit depth 4 with colour type 2"
                ),
                (
                    "unknown interlace method",
                    PNGFile.signature + PNGFile.chunk("IHDR", PNGFile.be32(w) + PNGFile.be32(h) + [8, 2, 0, 0, 2])
                        + idat + PNGFile.end, "unknown compression, filter or interlace"
                ),
                ("second IHDR", start + ihdr + idat + PNGFile.end, "second IHDR"),
            ]
            for (name, file, message) in cases {
                let error = verifyError(file)
                #expect(error?.code == .corruptImage, "\(name): \(String(describing: error))")
                #expect(error?.message.contains(message) == true, "\(name): \(error?.message ?? "accepted")")
            }
        }
    }

    @Test func truncationAtEveryOffsetIsRefused() async throws {
        try await offPool {
            let files = [
                PNGFile.valid(17, 9, depth: 16, colorType: 6, interlaced: true), [UInt8](try ImageEncoder.jpeg(smoothImage(width: 24, height: 16))),
            ]
            for file in files {
                #expect(verifyError(file) == nil)
                for n in 0..<file.count {
                    let error = verifyError(Array(file.prefix(n)))
                    #expect(error != nil, "a \(n)-byte prefix of \(file.count) bytes was accepted")
                    #expect([.unsupportedFormat, .corruptImage].contains(error?.code), "\(String(describing: error))")
                }
            }
        }
    }

    /// JPEGs are verified at 1/8 scale: odd sizes (partial blocks) must still verify, and random damage to the
    /// entropy-coded data is refused exactly when the full decode refuses it, never more often.
    @Test func jpegVerifyAgreesWithTheFullDecode() async throws {
        try await offPool {
            var state: UInt64 = 11
            func next() -> Int {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int(truncatingIfNeeded: state >> 33)
            }
            for (w, h) in [(37, 29), (1, 1), (9, 300), (640, 360)] {
                let file = try ImageEncoder.jpeg(smoothImage(width: w, height: h))
                let header = try ImageDecoder.verify(file)
                #expect(header.width == w && header.height == h)
            }
            let original = [UInt8](try ImageEncoder.jpeg(smoothImage(width: 45, height: 31), quality: 80))
            var accepted = 0, refused = 0
            for _ in 0..<600 {
                var bytes = original
                for _ in 0..<(1 + next() % 3) { bytes[20 + next() % (bytes.count - 22)] = UInt8(next() & 0xFF) }
                var decodes = true
                do { _ = try ImageDecoder.decode(Data(bytes)) } catch { decodes = false }
                let verifies = verifyError(bytes) == nil
                #expect(verifies == decodes, "verify \(verifies) but decode \(decodes)")
                if verifies { accepted += 1 } else { refused += 1 }
            }
            #expect(accepted > 50 && refused > 50, "accepted \(accepted), refused \(refused)")
        }
    }

    /// Random damage, with the CRCs repaired half of the time so it reaches the image data: no crash, and
    /// whatever `verify` accepts, FFmpeg decodes.
    @Test func whatVerifyAcceptsAlwaysDecodes() async throws {
        try await offPool {
            var state: UInt64 = 7
            func next() -> Int {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int(truncatingIfNeeded: state >> 33)
            }
            let w = 16, h = 12
            var accepted = 0, refused = 0
            for i in 0..<1500 {
                let kind = Self.kinds[i % Self.kinds.count]
                let interlaced = i % 2 == 0
                var raw = PNGFile.rawData(w, h, depth: kind.depth, colorType: kind.colorType, interlaced: interlaced, seed: UInt64(i))
                var ihdrData = PNGFile.be32(w) + PNGFile.be32(h) + [UInt8(kind.depth), UInt8(kind.colorType), 0, 0, interlaced ? 1 : 0]
                var compressed = PNGFile.zlib(raw)
                switch i % 4 {
                case 0: raw[next() % raw.count] = UInt8(next() & 0xFF); compressed = PNGFile.zlib(raw) // any pixel bytes, filter types included
                case 1: compressed[next() % compressed.count] = UInt8(next() & 0xFF) // the zlib stream itself
                case 2: ihdrData[8 + next() % 5] = UInt8(next() % 20) // depth, colour type or methods
                default: compressed = PNGFile.zlib(Array(raw.prefix(next() % (raw.count + 2)))) // any amount of data
                }
                var file =
                    PNGFile.signature + PNGFile.chunk("IHDR", ihdrData)
                    + (kind.colorType == 3 ? PNGFile.palette(kind.depth) : []) + PNGFile.chunk("IDAT", compressed) + PNGFile.end
                if i % 10 == 9 { file[8 + next() % (file.count - 8)] ^= UInt8(1 << (next() % 8)) } // damage anywhere, CRCs stale
                if verifyError(file) == nil {
                    accepted += 1
                    #expect(throws: Never.self, "case \(i) passed verify but does not decode") { try ImageDecoder.decode(Data(file)) }
                } else {
                    refused += 1
                }
            }
            // Both outcomes occur: the damage is neither always fatal nor always harmless.
            #expect(accepted > 100 && refused > 100, "accepted \(accepted), refused \(refused)")
        }
    }
}
