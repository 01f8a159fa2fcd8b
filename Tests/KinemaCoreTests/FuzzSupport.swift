import Foundation
import KinemaTestSupport
import KinemaCore

/// The fuzzers' generator (deterministic, so a failure replays exactly).
typealias FuzzRNG = SplitMix64

/// Byte-level mutations shared by the JSON and image fuzzers: flips, inserts, deletions, duplications,
/// splices and "interesting" tokens that tend to hit boundaries.
enum Mutator {
    static func mutate(_ input: [UInt8], tokens: [[UInt8]], donors: [[UInt8]], rng: inout FuzzRNG) -> [UInt8] {
        var b = input
        for _ in 0..<rng.int(1...4) {
            switch rng.int(0...7) {
            case 0 where !b.isEmpty: // flip bits
                let i = rng.int(0...b.count - 1)
                b[i] ^= UInt8(truncatingIfNeeded: 1 << rng.int(0...7))
            case 1 where !b.isEmpty: // random byte
                b[rng.int(0...b.count - 1)] = UInt8.random(in: 0...255, using: &rng)
            case 2: // insert random bytes
                let at = rng.int(0...b.count)
                b.insert(contentsOf: (0..<rng.int(1...8)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
            case 3 where !b.isEmpty: // delete a range
                let start = rng.int(0...b.count - 1)
                b.removeSubrange(start..<min(b.count, start + rng.int(1...16)))
            case 4 where !b.isEmpty: // duplicate a range
                let start = rng.int(0...b.count - 1)
                let slice = b[start..<min(b.count, start + rng.int(1...32))]
                b.insert(contentsOf: slice, at: rng.int(0...b.count))
            case 5: // insert an interesting token
                b.insert(contentsOf: rng.pick(tokens), at: rng.int(0...b.count))
            case 6 where !b.isEmpty: // truncate
                b.removeSubrange(rng.int(0...b.count - 1)...)
            case 7 where !donors.isEmpty: // splice the tail of another seed
                let donor = rng.pick(donors)
                let cut = rng.int(0...b.count), from = rng.int(0...donor.count)
                b = Array(b[..<cut]) + donor[from...]
            default:
                break
            }
        }
        return b
    }
}

/// The byte-level fixtures of the image fuzzers, built by hand so no codec is needed.
enum FuzzImages {
    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    static func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// PNG signature and IHDR chunk (with a real CRC) followed by a token IDAT: what the header parser reads.
    static func png(width: UInt32, height: UInt32) -> [UInt8] {
        func crc32(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
            }
            return ~crc
        }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let t = Array(type.utf8)
            return be32(UInt32(body.count)) + t + body + be32(crc32(t + body))
        }
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
            + chunk("IDAT", [0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF]) + chunk("IEND", [])
    }

    /// A baseline JPEG's marker structure: SOI, APP0, optional EXIF orientation, DQT, SOF0, DHT, SOS, EOI.
    static func jpeg(width: Int, height: Int, orientation: Int? = nil, littleEndian: Bool = false) -> [UInt8] {
        var b: [UInt8] = [0xFF, 0xD8]
        b += [0xFF, 0xE0] + be16(16) + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
        if let orientation {
            func u16(_ v: Int) -> [UInt8] { littleEndian ? [UInt8(v & 0xFF), UInt8(v >> 8)] : be16(v) }
            func u32(_ v: Int) -> [UInt8] { littleEndian ? u16(v & 0xFFFF) + u16(v >> 16) : u16(v >> 16) + u16(v & 0xFFFF) }
            var tiff: [UInt8] = littleEndian ? [0x49, 0x49] : [0x4D, 0x4D]
            tiff += u16(42) + u32(8) + u16(1)
            tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0)
            tiff += u32(0)
            let body = Array("Exif".utf8) + [0, 0] + tiff
            b += [0xFF, 0xE1] + be16(body.count + 2) + body
        }
        b += [0xFF, 0xDB] + be16(67) + [0] + [UInt8](repeating: 1, count: 64)
        b += [0xFF, 0xC0] + be16(17) + [8] + be16(height) + be16(width) + [3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]
        b += [0xFF, 0xC4] + be16(20) + [0] + [UInt8](repeating: 0, count: 15) + [0]
        b += [0xFF, 0xDA] + be16(12) + [3, 1, 0, 2, 0x11, 3, 0x11, 0, 0x3F, 0] + [0x12, 0x34, 0x56]
        b += [0xFF, 0xD9]
        return b
    }
}

/// Every `reason` the contract allows for a refused request, with its HTTP status.
let contractValidationReasons: [String: Int] = [
    "INVALID_REQUEST_BODY": 400, "INVALID_IMAGE_FORMAT": 400, "IMAGE_FILE_EXCEEDS_MAX_SIZE": 400,
    "INVALID_IMAGE_SIZE": 400, "IMAGE_EXCEEDS_MAX_RESOLUTION": 400, "IMAGE_FETCH_FAILED": 400,
]
