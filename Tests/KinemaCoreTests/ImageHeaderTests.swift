import Foundation
import KinemaCore
import KinemaTestSupport
import Testing

// Fixtures are built byte by byte so the tests need no codec: a complete, valid PNG (stored zlib
// block, real CRCs) and the marker structure of a baseline JPEG up to and past its frame header.

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
    }
    return ~crc
}

private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
private func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

private func pngChunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
    let typeBytes = Array(type.utf8)
    return be32(UInt32(body.count)) + typeBytes + body + be32(crc32(typeBytes + body))
}

/// A complete, decodable 8-bit RGB PNG (grey pixels), using one stored deflate block.
private func makePNG(width: Int, height: Int) -> [UInt8] {
    var raw: [UInt8] = []
    for _ in 0..<height { raw += [0] + [UInt8](repeating: 0x80, count: width * 3) }
    var adlerA: UInt32 = 1, adlerB: UInt32 = 0
    for byte in raw { adlerA = (adlerA + UInt32(byte)) % 65521; adlerB = (adlerB + adlerA) % 65521 }
    let len = raw.count
    let zlib: [UInt8] =
        [0x78, 0x01, 0x01, UInt8(len & 0xFF), UInt8(len >> 8), UInt8(~len & 0xFF), UInt8(~len >> 8 & 0xFF)]
        + raw + be32(adlerB << 16 | adlerA)
    let ihdr = be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]
    return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + pngChunk("IHDR", ihdr) + pngChunk("IDAT", zlib) + pngChunk("IEND", [])
}

/// The header part of a baseline JPEG: SOI, JFIF APP0, optional extra segments, DQT, SOF, DHT, SOS, a few bytes, EOI.
/// Returns the bytes and the offset just past the SOF's width field (the minimum a parser must see).
private func makeJPEGHeader(width: Int, height: Int, sof: UInt8 = 0xC0, before: [UInt8] = []) -> (bytes: [UInt8], headerEnd: Int) {
    var b: [UInt8] = [0xFF, 0xD8]
    b += [0xFF, 0xE0] + be16(16) + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
    b += before
    b += [0xFF, 0xDB] + be16(67) + [0] + [UInt8](repeating: 1, count: 64)
    b += [0xFF, sof] + be16(17) + [8] + be16(height) + be16(width)
    let headerEnd = b.count
    b += [3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
    b += [0xFF, 0xC4] + be16(20) + [0] + [UInt8](repeating: 0, count: 15) + [0]
    b += [0xFF, 0xDA] + be16(12) + [3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0] + [0x12, 0x34, 0xFF, 0x00, 0x56]
    b += [0xFF, 0xD9]
    return (b, headerEnd)
}

private func parseError(_ bytes: [UInt8]) -> ImageHeaderError? {
    do {
        _ = try ImageHeader.parse(Data(bytes))
        return nil
    } catch {
        return error
    }
}

@Test func sniffRecognisesMagicBytesOnly() async throws {
    try await offPool {
        #expect(ImageHeader.sniff(Data(makePNG(width: 2, height: 2))) == .png)
        #expect(ImageHeader.sniff(Data([0xFF, 0xD8, 0xFF, 0xE0])) == .jpeg)
        #expect(ImageHeader.sniff(Data([0xFF, 0xD8])) == nil)
        #expect(ImageHeader.sniff(Data("GIF89a".utf8)) == nil)
        #expect(ImageHeader.sniff(Data()) == nil)
    }
}

@Test func pngHeaderGivesIHDRSizeAndNoRotation() async throws {
    try await offPool {
        let header = try ImageHeader.parse(Data(makePNG(width: 37, height: 21)))
        #expect(header == ImageHeader(format: .png, storedWidth: 37, storedHeight: 21, orientation: 1))
        #expect(header.width == 37 && header.height == 21)
    }
}

@Test func pngWithHugeDeclaredSizeParsesWithoutTouchingPixels() async throws {
    try await offPool {
        // Only the IHDR is present: the parser must not need (or allocate for) the pixel data.
        let bytes = Array(makePNG(width: 1, height: 1).prefix(33))
        var huge = bytes
        huge.replaceSubrange(16..<24, with: be32(30000) + be32(30000))
        let header = try ImageHeader.parse(Data(huge))
        #expect(header.storedWidth == 30000 && header.storedHeight == 30000)
    }
}

@Test func jpegHeaderGivesFrameSize() async throws {
    try await offPool {
        let header = try ImageHeader.parse(Data(makeJPEGHeader(width: 640, height: 480).bytes))
        #expect(header == ImageHeader(format: .jpeg, storedWidth: 640, storedHeight: 480, orientation: 1))
    }
}

@Test(arguments: [UInt8(0xC1), 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF])
func jpegHeaderAcceptsEveryFrameType(sof: UInt8) async throws {
    try await offPool {
        let header = try ImageHeader.parse(Data(makeJPEGHeader(width: 100, height: 50, sof: sof).bytes))
        #expect(header.storedWidth == 100 && header.storedHeight == 50)
    }
}

@Test func jpegTablesSharingTheSOFRangeAreSkipped() async throws {
    try await offPool {
        // DHT (C4), JPG (C8) and DAC (CC) look like SOFn but are not; their bodies here hold a fake size.
        var extra: [UInt8] = []
        for marker: UInt8 in [0xC4, 0xC8, 0xCC] { extra += [0xFF, marker] + be16(8) + [8] + be16(1) + be16(1) + [0] }
        let header = try ImageHeader.parse(Data(makeJPEGHeader(width: 300, height: 200, before: extra).bytes))
        #expect(header.storedWidth == 300 && header.storedHeight == 200)
    }
}

@Test func jpegFillBytesAndStandaloneMarkersAreSkipped() async throws {
    try await offPool {
        // Fill bytes before a marker, then TEM and RST0..7 which carry no length.
        var extra: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFE] + be16(5) + Array("hi!".utf8)
        extra += [0xFF, 0x01]
        for rst: UInt8 in 0xD0...0xD7 { extra += [0xFF, 0xFF, rst] }
        let header = try ImageHeader.parse(Data(makeJPEGHeader(width: 17, height: 9, before: extra).bytes))
        #expect(header.storedWidth == 17 && header.storedHeight == 9)
    }
}

@Test(arguments: 1...8)
func exifOrientationIsReadInBothByteOrders(orientation: Int) async throws {
    try await offPool {
        for little in [true, false] {
            let segment = EXIF.segment(orientation: orientation, littleEndian: little, withMake: true)
            let header = try ImageHeader.parse(Data(makeJPEGHeader(width: 400, height: 300, before: segment).bytes))
            #expect(header.orientation == orientation)
            #expect(header.storedWidth == 400 && header.storedHeight == 300)
            let transposed = orientation >= 5
            #expect(header.width == (transposed ? 300 : 400))
            #expect(header.height == (transposed ? 400 : 300))
        }
    }
}

@Test func outOfRangeOrBrokenExifMeansNoRotation() async throws {
    try await offPool {
        var broken = EXIF.segment(orientation: 6, littleEndian: true, withMake: true)
        broken[10 + 4] = 0xFF // IFD offset points far outside the segment
        for segment in [
            EXIF.segment(orientation: 9, littleEndian: false, withMake: true), EXIF.segment(orientation: 0, littleEndian: true, withMake: true),
            broken,
        ] {
            let header = try ImageHeader.parse(Data(makeJPEGHeader(width: 8, height: 4, before: segment).bytes))
            #expect(header.orientation == 1)
        }
    }
}

@Test func zeroSizeIsMalformed() async throws {
    try await offPool {
        var png = makePNG(width: 1, height: 1)
        png.replaceSubrange(16..<20, with: be32(0))
        #expect(parseError(png)?.code == .malformed)
        #expect(parseError(makeJPEGHeader(width: 0, height: 10).bytes)?.code == .malformed)
        #expect(parseError(makeJPEGHeader(width: 10, height: 0).bytes)?.code == .malformed)
    }
}

@Test func structuralDamageIsMalformedWithAClearMessage() async throws {
    try await offPool {
        var png = makePNG(width: 4, height: 4)
        png.replaceSubrange(12..<16, with: Array("IDAT".utf8))
        let pngError = parseError(png)
        #expect(pngError?.code == .malformed)
        #expect(pngError?.message.contains("IHDR") == true)

        let jpeg = makeJPEGHeader(width: 4, height: 4).bytes
        var badLength = jpeg
        badLength.replaceSubrange(4..<6, with: [0, 1]) // APP0 length 1 (< 2)
        #expect(parseError(badLength)?.code == .malformed)
        var noMarker = jpeg
        noMarker[20] = 0x12 // the 0xFF of the DQT marker after APP0
        #expect(parseError(noMarker)?.code == .malformed)
        // Scan data before any frame header.
        let scanFirst: [UInt8] = [0xFF, 0xD8, 0xFF, 0xDA] + be16(2) + [0xFF, 0xD9]
        #expect(parseError(scanFirst)?.code == .malformed)
        #expect(parseError([0xFF, 0xD8, 0xFF, 0xD9])?.message.contains("EOI") == true)
    }
}

@Test func unknownFormatIsReported() async throws {
    try await offPool {
        let error = parseError(Array("GIF89a and more".utf8))
        #expect(error?.code == .unknownFormat)
        #expect(error?.description.contains("unknownFormat") == true)
    }
}

@Test func pngTruncatedAtEveryOffsetSaysSo() async throws {
    try await offPool {
        let png = makePNG(width: 5, height: 3)
        for n in 0..<png.count {
            let prefix = Array(png.prefix(n))
            if n < 8 {
                #expect(parseError(prefix)?.code == .unknownFormat)
            } else if n < 29 {
                let error = parseError(prefix)
                #expect(error?.code == .truncated)
                #expect(error?.message.contains("PNG header is truncated") == true)
            } else {
                let parsed = try ImageHeader.parse(Data(prefix))
                #expect(parsed.storedWidth == 5)
            }
        }
    }
}

@Test func jpegTruncatedAtEveryOffsetSaysSo() async throws {
    try await offPool {
        let (jpeg, headerEnd) = makeJPEGHeader(width: 33, height: 44, before: EXIF.segment(orientation: 8, littleEndian: false, withMake: true))
        for n in 0..<jpeg.count {
            let prefix = Array(jpeg.prefix(n))
            if n < 3 {
                #expect(parseError(prefix)?.code == .unknownFormat)
            } else if n < headerEnd {
                let error = parseError(prefix)
                #expect(error?.code == .truncated, "prefix \(n)")
                #expect(error?.message.contains("JPEG header is truncated") == true)
            } else {
                let header = try ImageHeader.parse(Data(prefix))
                #expect(header.width == 44 && header.height == 33 && header.orientation == 8)
            }
        }
    }
}

@Test func randomAndMislabelledBytesNeverCrash() async throws {
    try await offPool {
        var rng = SplitMix64(seed: 0x5EED)
        let prefixes: [[UInt8]] = [[], [0xFF, 0xD8], [0xFF, 0xD8, 0xFF], Array(makePNG(width: 1, height: 1).prefix(16))]
        var outcomes = 0
        for i in 0..<20_000 {
            let length = Int(rng.next() % 96)
            var bytes = prefixes[i % prefixes.count]
            for _ in 0..<length {
                // Bias towards 0xFF so JPEG marker paths (fill bytes, lengths) get exercised.
                let r = rng.next()
                bytes.append(r % 4 == 0 ? 0xFF : UInt8(truncatingIfNeeded: r >> 8))
            }
            do {
                let header = try ImageHeader.parse(Data(bytes))
                #expect(header.storedWidth > 0 && header.storedHeight > 0 && (1...8).contains(header.orientation))
            } catch let error as ImageHeaderError {
                #expect(!error.message.isEmpty)
            } catch {
                Issue.record("not a ValidationError: \(error)")
            }
            outcomes += 1
        }
        #expect(outcomes == 20_000)
    }
}

@Test func dataSlicesWithNonZeroStartIndexParse() async throws {
    try await offPool {
        let padded = Data([1, 2, 3] + makeJPEGHeader(width: 12, height: 6).bytes)
        let slice = padded[3...]
        #expect(slice.startIndex == 3)
        #expect(ImageHeader.sniff(slice) == .jpeg)
        let parsed = try ImageHeader.parse(slice)
        #expect(parsed.storedWidth == 12)
    }
}

@Test func mutatedRealHeadersNeverCrash() async throws {
    try await offPool {
        // Byte flips in structurally valid files reach the deep paths (segment lengths, TIFF offsets,
        // IFD counts) that pure noise rarely gets to.
        var rng = SplitMix64(seed: 0xBADC0DE)
        let seeds: [[UInt8]] = [
            makeJPEGHeader(width: 64, height: 48, before: EXIF.segment(orientation: 6, littleEndian: true, withMake: true)).bytes,
            makeJPEGHeader(width: 64, height: 48, before: EXIF.segment(orientation: 3, littleEndian: false, withMake: true)).bytes,
            makePNG(width: 3, height: 3),
        ]
        for i in 0..<15_000 {
            var bytes = seeds[i % seeds.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = 3 + Int(rng.next() % UInt64(bytes.count - 3)) // keep the magic so the parsers run
                bytes[at] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 3 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count / 2))) }
            do {
                let header = try ImageHeader.parse(Data(bytes))
                #expect(header.storedWidth > 0 && header.storedHeight > 0 && (1...8).contains(header.orientation))
            } catch let error as ImageHeaderError {
                #expect(!error.message.isEmpty)
            } catch {
                Issue.record("not a ValidationError: \(error)")
            }
        }
    }
}
