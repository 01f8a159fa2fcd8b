import Foundation
import KinemaCore
import KinemaTestSupport
import Testing

/// Bounded, seeded fuzzing of the image header parser and the header-only validation that submit runs on
/// untrusted bytes: random bytes and mutated PNG/JPEG headers never trap and always end in a header that
/// obeys the limits or in a contract error.
@Suite struct ImageHeaderFuzz {
    static let seeds: [[UInt8]] = [
        FuzzImages.png(width: 640, height: 360),
        FuzzImages.png(width: 30000, height: 30000),
        FuzzImages.png(width: 0x7FFF_FFFF, height: 1),
        FuzzImages.jpeg(width: 400, height: 600),
        FuzzImages.jpeg(width: 1280, height: 720, orientation: 6, littleEndian: true),
        FuzzImages.jpeg(width: 720, height: 1280, orientation: 3, littleEndian: false),
        FuzzImages.jpeg(width: 65535, height: 65535),
    ]

    /// Marker and chunk bytes that steer mutations into the parsers' branches.
    static let tokens: [[UInt8]] = [
        [0xFF], [0xFF, 0xD8], [0xFF, 0xD9], [0xFF, 0xDA], [0xFF, 0xC0], [0xFF, 0xC2], [0xFF, 0xC4], [0xFF, 0xE1], [0xFF, 0x00],
        [0xFF, 0xD0], [0x00, 0x00], [0x00, 0x01], [0xFF, 0xFF], [0x00, 0x02], [0x00, 0x08],
        Array("Exif".utf8) + [0, 0, 0x49, 0x49, 42, 0], Array("Exif".utf8) + [0, 0, 0x4D, 0x4D, 0, 42],
        [0xFF, 0xFF, 0xFF, 0xFF], [0x80, 0x00, 0x00, 0x00], [0x00, 0x00, 0x00, 0x0D], Array("IHDR".utf8), Array("IDAT".utf8),
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A],
    ]

    static let limits = ValidationLimits()

    func check(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let data = Data(bytes)
        // The parser alone: a header with sane numbers, or a typed error.
        do {
            let h = try ImageHeader.parse(data)
            #expect(h.storedWidth > 0 && h.storedHeight > 0, sourceLocation: sourceLocation)
            #expect(h.storedWidth <= Int(Int32.max) && h.storedHeight <= Int(Int32.max), sourceLocation: sourceLocation)
            #expect((1...8).contains(h.orientation), sourceLocation: sourceLocation)
            #expect(h.format == ImageHeader.sniff(data), sourceLocation: sourceLocation)
        } catch {
            #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
            if ImageHeader.sniff(data) == nil { #expect(error.code == .unknownFormat, sourceLocation: sourceLocation) }
        }
        // Validation as submit runs it: inside every limit, or one of the contract's image reasons.
        do {
            let h = try ImageValidation.validate(data, field: "image", limits: Self.limits)
            #expect(h.width >= Self.limits.minImageSide && h.height >= Self.limits.minImageSide, sourceLocation: sourceLocation)
            #expect(h.width <= Self.limits.maxImageSide && h.height <= Self.limits.maxImageSide, sourceLocation: sourceLocation)
            #expect(h.width * h.height <= Self.limits.maxImagePixels, sourceLocation: sourceLocation)
            #expect(h.width * 2 <= h.height * 5 && h.height * 2 <= h.width * 5, sourceLocation: sourceLocation)
        } catch {
            let imageReasons: Set = ["INVALID_IMAGE_FORMAT", "IMAGE_FILE_EXCEEDS_MAX_SIZE", "INVALID_IMAGE_SIZE", "IMAGE_EXCEEDS_MAX_RESOLUTION"]
            #expect(imageReasons.contains(error.kind.reason), "\(error)", sourceLocation: sourceLocation)
            #expect(contractValidationReasons[error.kind.reason] == 400, sourceLocation: sourceLocation)
            #expect(error.field == "image" && !error.message.isEmpty, sourceLocation: sourceLocation)
        }
    }

    @Test func seedsParseWithTheirDeclaredSizes() async throws {
        try await offPool {
            #expect(try ImageHeader.parse(Data(Self.seeds[0])) == ImageHeader(format: .png, storedWidth: 640, storedHeight: 360))
            let rotated = try ImageHeader.parse(Data(Self.seeds[4]))
            #expect(rotated.orientation == 6 && rotated.width == 720 && rotated.height == 1280)
            #expect(throws: ValidationError.self) { try ImageValidation.validate(Data(Self.seeds[1]), field: "image", limits: Self.limits) }
        }
    }

    @Test func mutatedHeadersEndInAHeaderOrAContractError() async throws {
        try await offPool {
            var rng = FuzzRNG(seed: 0x494D_4147_4500_0001)
            for _ in 0..<5000 {
                check(Mutator.mutate(rng.pick(Self.seeds), tokens: Self.tokens, donors: Self.seeds, rng: &rng))
            }
        }
    }

    /// Every prefix of every seed: truncation at each byte is the commonest real-world breakage.
    @Test func everyTruncationEndsInAHeaderOrAContractError() async throws {
        try await offPool {
            for seed in Self.seeds {
                for n in 0...seed.count { check(Array(seed.prefix(n))) }
            }
        }
    }

    @Test func randomBytesBehindAValidSignatureEndInAHeaderOrAContractError() async throws {
        try await offPool {
            var rng = FuzzRNG(seed: 0x494D_4147_4500_0002)
            let signatures: [[UInt8]] = [[], [0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]]
            for _ in 0..<3000 {
                let tail = (0..<rng.int(0...96)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                check(rng.pick(signatures) + tail)
            }
        }
    }

    /// A slice of a larger buffer (non-zero start index) is read from its own start, not the buffer's.
    @Test func slicesAreReadFromTheirOwnStart() async throws {
        try await offPool {
            let buffer = Data([0, 1, 2, 3] + Self.seeds[3])
            let slice = buffer[4...]
            let parsed = try ImageHeader.parse(slice)
            #expect(parsed == ImageHeader(format: .jpeg, storedWidth: 400, storedHeight: 600))
        }
    }
}
