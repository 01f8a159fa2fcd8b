import Foundation
import KinemaCore
import KinemaMedia
import KinemaTestSupport
import Testing

@Test func pngRoundTripIsLossless() async throws {
    try await offPool {
        let image = smoothImage(width: 64, height: 48, alpha: 200)
        let png = try ImageEncoder.png(image)
        #expect(ImageHeader.sniff(png) == .png)
        let header = try ImageHeader.parse(png)
        #expect(header.storedWidth == 64 && header.storedHeight == 48 && header.orientation == 1)
        #expect(try ImageDecoder.decode(png) == image)
    }
}

@Test func jpegDecodesCloseToTheOriginal() async throws {
    try await offPool {
        let image = smoothImage(width: 96, height: 64)
        let jpeg = try ImageEncoder.jpeg(image, quality: 95)
        let header = try ImageHeader.parse(jpeg)
        #expect(header.format == .jpeg && header.storedWidth == 96 && header.storedHeight == 64)
        let decoded = try ImageDecoder.decode(jpeg)
        #expect(decoded.width == 96 && decoded.height == 64)
        #expect(psnrRGB(decoded, image) > 30)
        #expect(decoded.pixels[3] == 255)
    }
}

@Test func exifRotationIsAppliedWhenDecoding() async throws {
    try await offPool {
        // Stored 64x32: red | green over blue | white. Orientation 6 means "rotate 90° clockwise to display".
        let jpeg = try ImageEncoder.jpeg(quadrantImage(width: 64, height: 32), quality: 100)
        for littleEndian in [false, true] {
            let rotated = jpegWithOrientation(jpeg, 6, littleEndian: littleEndian)
            let header = try ImageHeader.parse(rotated)
            #expect(header.orientation == 6 && header.width == 32 && header.height == 64)
            let image = try ImageDecoder.decode(rotated)
            #expect(image.width == 32 && image.height == 64)
            // Clockwise: the stored bottom-left (blue) comes to the top-left, top-left (red) to the top-right.
            let (r0, g0, b0) = rgb(image, 4, 4)
            #expect(b0 > 200 && r0 < 60 && g0 < 60)
            let (r1, g1, b1) = rgb(image, 28, 4)
            #expect(r1 > 200 && g1 < 60 && b1 < 60)
            let (r2, g2, b2) = rgb(image, 28, 60)
            #expect(g2 > 200 && r2 < 60 && b2 < 60)
        }
    }
}

@Test(arguments: 1...8)
func everyOrientationMatchesTheTransformOfTheStoredImage(orientation: Int) async throws {
    try await offPool {
        let jpeg = try ImageEncoder.jpeg(quadrantImage(width: 48, height: 32), quality: 100)
        let stored = try ImageDecoder.decode(jpeg)
        let decoded = try ImageDecoder.decode(jpegWithOrientation(jpeg, orientation))
        #expect(decoded == stored.applyingEXIFOrientation(orientation))
    }
}

@Test func orientationTransformsMoveCornersAsEXIFDefines() async throws {
    try await offPool {
        // 3x2 image with pixel values 0...5 in the red channel, row-major: [0 1 2; 3 4 5].
        var image = RGBAImage(width: 3, height: 2)
        for i in 0..<6 { image.pixels[i * 4] = UInt8(i) }
        func rows(_ o: Int) -> [[UInt8]] {
            let out = image.applyingEXIFOrientation(o)
            return (0..<out.height).map { y in (0..<out.width).map { x in out.pixels[(y * out.width + x) * 4] } }
        }
        #expect(rows(1) == [[0, 1, 2], [3, 4, 5]])
        #expect(rows(2) == [[2, 1, 0], [5, 4, 3]])
        #expect(rows(3) == [[5, 4, 3], [2, 1, 0]])
        #expect(rows(4) == [[3, 4, 5], [0, 1, 2]])
        #expect(rows(5) == [[0, 3], [1, 4], [2, 5]])
        #expect(rows(6) == [[3, 0], [4, 1], [5, 2]])
        #expect(rows(7) == [[5, 2], [4, 1], [3, 0]])
        #expect(rows(8) == [[2, 5], [1, 4], [0, 3]])
    }
}

@Test func hugeDeclaredSizeIsRefusedFromTheHeaderAlone() async throws {
    try await offPool {
        // A real PNG whose IHDR is rewritten to 30000x30000: only the header is consulted (a decode
        // attempt would fail differently, as corrupt), so nothing near 3.6 GB is ever allocated.
        var bytes = [UInt8](try ImageEncoder.png(RGBAImage(width: 2, height: 2)))
        bytes.replaceSubrange(16..<24, with: [0, 0, 0x75, 0x30, 0, 0, 0x75, 0x30])
        let error = mediaError { _ = try ImageDecoder.decode(Data(bytes)) }
        #expect(error?.code == .exceedsLimits)
        #expect(error?.message.contains("30000x30000") == true)
        #expect(mediaError { _ = try ImageDecoder.validatedHeader(Data(bytes)) }?.code == .exceedsLimits)
    }
}

@Test func pixelCountAndCustomLimitsAreEnforced() async throws {
    try await offPool {
        let png = try ImageEncoder.png(RGBAImage(width: 40, height: 30))
        #expect(try ImageDecoder.validatedHeader(png).storedWidth == 40)
        #expect(mediaError { _ = try ImageDecoder.decode(png, limits: ImageLimits(maxSide: 39)) }?.code == .exceedsLimits)
        let error = mediaError { _ = try ImageDecoder.decode(png, limits: ImageLimits(maxPixels: 1000)) }
        #expect(error?.code == .exceedsLimits)
        #expect(error?.message.contains("1200 pixels") == true)
        #expect(try ImageDecoder.decode(png, limits: ImageLimits(maxSide: 40, maxPixels: 1200)).width == 40)
    }
}

@Test func mislabelledDataIsCorrupt() async throws {
    try await offPool {
        var pngMagicThenGarbage: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        pngMagicThenGarbage += (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        #expect(mediaError { _ = try ImageDecoder.decode(Data(pngMagicThenGarbage)) }?.code == .corruptImage)

        // A valid IHDR followed by garbage instead of image data.
        let png = [UInt8](try ImageEncoder.png(smoothImage(width: 16, height: 16)))
        let headerThenGarbage = Array(png.prefix(33)) + (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 91 &+ 7) }
        #expect(mediaError { _ = try ImageDecoder.decode(Data(headerThenGarbage)) }?.code == .corruptImage)

        // JPEG magic, then nothing that parses.
        let jpegGarbage: [UInt8] = [0xFF, 0xD8, 0xFF, 0x12, 0x34, 0x56]
        #expect(mediaError { _ = try ImageDecoder.decode(Data(jpegGarbage)) }?.code == .corruptImage)
    }
}

@Test func unknownBytesAreUnsupported() async throws {
    try await offPool {
        let error = mediaError { _ = try ImageDecoder.decode(Data("GIF89a......".utf8)) }
        #expect(error?.code == .unsupportedFormat)
        #expect(error?.message.contains("PNG and JPEG") == true)
    }
}

@Test func truncatedImagesFailCleanlyAtEveryOffset() async throws {
    try await offPool {
        let png = try ImageEncoder.png(smoothImage(width: 24, height: 16))
        let jpeg = try ImageEncoder.jpeg(smoothImage(width: 24, height: 16))
        for file in [png, jpeg] {
            let full = try ImageDecoder.decode(file)
            for n in 0..<file.count {
                do {
                    // Only a cut that loses nothing but PNG's empty IEND trailer may still decode, and then exactly.
                    let image = try ImageDecoder.decode(file.prefix(n))
                    #expect(image == full, "a \(n)-byte prefix of \(file.count) bytes decoded to a different image")
                } catch let error as MediaError {
                    #expect([.unsupportedFormat, .corruptImage].contains(error.code))
                    #expect(!error.message.isEmpty)
                }
            }
        }
    }
}

@Test func randomBytesNeverCrashTheDecoder() async throws {
    try await offPool {
        var state: UInt64 = 42
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        let jpeg = [UInt8](try ImageEncoder.jpeg(smoothImage(width: 16, height: 16)))
        let png = [UInt8](try ImageEncoder.png(smoothImage(width: 16, height: 16)))
        for i in 0..<300 {
            // Flip bytes of real files (past their headers' magic) as well as pure noise.
            var bytes = i % 3 == 0 ? jpeg : (i % 3 == 1 ? png : (0..<64).map { _ in next() })
            if i % 3 != 2 {
                for _ in 0..<4 { bytes[8 + Int(next()) % (bytes.count - 8)] = next() }
            }
            do {
                let image = try ImageDecoder.decode(Data(bytes))
                #expect(image.pixels.count == image.width * image.height * 4)
            } catch let error as MediaError {
                #expect(!error.message.isEmpty)
            }
        }
    }
}

@Test func concurrentDecodesAgree() async throws {
    try await offPool {
        // The API decodes uploads on a thread pool: libav contexts are per call, so results must not interfere.
        let png = try ImageEncoder.png(smoothImage(width: 80, height: 60))
        let jpeg = try ImageEncoder.jpeg(smoothImage(width: 80, height: 60))
        let expectedPNG = try ImageDecoder.decode(png), expectedJPEG = try ImageDecoder.decode(jpeg)
        let results = ResultBox(count: 16)
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let image = try? ImageDecoder.decode(i % 2 == 0 ? png : jpeg)
            results.set(i, image == (i % 2 == 0 ? expectedPNG : expectedJPEG))
        }
        #expect(results.all)
    }
}

/// Collects per-iteration outcomes from concurrent work.
private final class ResultBox: @unchecked Sendable {
    // SAFETY: every access to `values` holds `lock`.
    private let lock = NSLock()
    private var values: [Bool]
    init(count: Int) { values = Array(repeating: false, count: count) }
    func set(_ i: Int, _ value: Bool) { lock.withLock { values[i] = value } }
    var all: Bool { lock.withLock { values.allSatisfy { $0 } } }
}
