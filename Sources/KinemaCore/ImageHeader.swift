import Foundation

/// An image container format that Kinema accepts.
public enum ImageFormat: String, Sendable, Codable {
    case png
    case jpeg
}

/// Why an image header could not be read.
public struct ImageHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What kind of problem the header has.
    public enum Code: String, Sendable {
        /// The bytes start with neither the PNG nor the JPEG signature.
        case unknownFormat
        /// The data ends before the dimensions could be read.
        case truncated
        /// The header structure is invalid (bad chunk, bad segment length, zero size…).
        case malformed
    }

    /// What kind of problem the header has.
    public var code: Code
    /// Says what was wrong, e.g. "the PNG header is truncated".
    public var message: String

    /// Creates an error with a code and a human-readable message.
    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    /// The code and message, for logs.
    public var description: String { "\(code.rawValue): \(message)" }
}

/// Dimensions and orientation of a PNG or JPEG, read from its header without decoding pixels.
///
/// Parsing touches only the signature, the PNG `IHDR` chunk or the JPEG marker segments up to the
/// first frame header (`SOFn`), so it runs in microseconds and is safe on hostile input: it never
/// reads outside the given bytes and reports truncation or malformation as an `ImageHeaderError`.
public struct ImageHeader: Sendable, Equatable {
    /// The container format, from the magic bytes.
    public var format: ImageFormat
    /// Width as encoded in `IHDR` / `SOFn`, before orientation.
    public var storedWidth: Int
    /// Height as encoded in `IHDR` / `SOFn`, before orientation.
    public var storedHeight: Int
    /// EXIF orientation 1…8 (1 when absent or out of range; always 1 for PNG).
    public var orientation: Int

    /// Creates a header from its parts (used by tests and callers that already know the values).
    public init(format: ImageFormat, storedWidth: Int, storedHeight: Int, orientation: Int = 1) {
        self.format = format
        self.storedWidth = storedWidth
        self.storedHeight = storedHeight
        self.orientation = orientation
    }

    /// Whether the EXIF orientation turns the image by 90° (orientations 5…8), swapping width and height.
    public var isTransposed: Bool { (5...8).contains(orientation) }

    /// Width as displayed, after applying the orientation.
    public var width: Int { isTransposed ? storedHeight : storedWidth }

    /// Height as displayed, after applying the orientation.
    public var height: Int { isTransposed ? storedWidth : storedHeight }

    /// The format named by the magic bytes alone, or `nil` if neither PNG nor JPEG.
    public static func sniff(_ data: Data) -> ImageFormat? {
        if data.starts(with: pngSignature) { return .png }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// Reads format, stored size and orientation from the header.
    public static func parse(_ data: Data) throws(ImageHeaderError) -> ImageHeader {
        guard let format = sniff(data) else {
            throw ImageHeaderError(code: .unknownFormat, message: "the data is neither a PNG nor a JPEG (unrecognised magic bytes)")
        }
        let result: Result<ImageHeader, ImageHeaderError> = data.withUnsafeBytes { raw in
            let bytes = ByteView(raw)
            do throws(ImageHeaderError) {
                switch format {
                case .png: return .success(try parsePNG(bytes))
                case .jpeg: return .success(try parseJPEG(bytes))
                }
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private static func parsePNG(_ b: ByteView) throws(ImageHeaderError) -> ImageHeader {
        // Signature (8) + IHDR length (4) + type (4) + 13 bytes of IHDR data.
        guard b.count >= 8 + 8 + 13 else {
            throw ImageHeaderError(code: .truncated, message: "the PNG header is truncated (\(b.count) bytes, the IHDR chunk needs 29)")
        }
        guard b.u32be(8) == 13, b.u32be(12) == 0x4948_4452 else { // length 13, type "IHDR"
            throw ImageHeaderError(code: .malformed, message: "the PNG does not start with a 13-byte IHDR chunk")
        }
        let width = Int(b.u32be(16)), height = Int(b.u32be(20))
        // The PNG spec caps dimensions at 2^31 - 1.
        guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
            throw ImageHeaderError(code: .malformed, message: "the PNG IHDR declares an invalid size \(width)x\(height)")
        }
        return ImageHeader(format: .png, storedWidth: width, storedHeight: height, orientation: 1)
    }

    private static func parseJPEG(_ b: ByteView) throws(ImageHeaderError) -> ImageHeader {
        func truncated(_ what: String) -> ImageHeaderError {
            ImageHeaderError(code: .truncated, message: "the JPEG header is truncated (\(what))")
        }
        var orientation: Int?
        var p = 2 // after SOI
        while true {
            guard p < b.count else { throw truncated("no frame header before the end of the data") }
            guard b[p] == 0xFF else {
                throw ImageHeaderError(code: .malformed, message: "the JPEG has no marker at offset \(p) (found 0x\(hex(b[p])))")
            }
            // Any number of 0xFF fill bytes may precede a marker.
            while p < b.count, b[p] == 0xFF { p += 1 }
            guard p < b.count else { throw truncated("data ends inside fill bytes") }
            let marker = b[p]
            p += 1
            switch marker {
            case 0x00:
                throw ImageHeaderError(code: .malformed, message: "the JPEG has a stuffed zero byte where a marker was expected at offset \(p - 1)")
            case 0x01, 0xD0...0xD7:
                continue // TEM, RSTn: standalone, no length
            case 0xD8:
                throw ImageHeaderError(code: .malformed, message: "the JPEG has a second start-of-image marker at offset \(p - 2)")
            case 0xD9:
                throw ImageHeaderError(code: .malformed, message: "the JPEG ends (EOI) before any frame header")
            case 0xDA:
                throw ImageHeaderError(code: .malformed, message: "the JPEG starts its scan data (SOS) before any frame header")
            default:
                break
            }
            guard p + 2 <= b.count else { throw truncated("segment length of marker 0x\(hex(marker)) missing") }
            let length = Int(b.u16be(p))
            guard length >= 2 else {
                throw ImageHeaderError(
                    code: .malformed, message: "the JPEG segment 0x\(hex(marker)) at offset \(p - 2) has an invalid length \(length)")
            }
            let body = p + 2
            let end = p + length
            if isStartOfFrame(marker) {
                // precision (1), height (2), width (2), component count (1)
                guard length >= 8 else {
                    throw ImageHeaderError(code: .malformed, message: "the JPEG frame header is too short (\(length) bytes)")
                }
                guard body + 5 <= b.count else { throw truncated("frame header cut off") }
                let height = Int(b.u16be(body + 1)), width = Int(b.u16be(body + 3))
                guard width > 0, height > 0 else {
                    throw ImageHeaderError(code: .malformed, message: "the JPEG frame header declares an invalid size \(width)x\(height)")
                }
                return ImageHeader(format: .jpeg, storedWidth: width, storedHeight: height, orientation: orientation ?? 1)
            }
            guard end <= b.count else { throw truncated("segment 0x\(hex(marker)) of \(length) bytes cut off") }
            if marker == 0xE1, orientation == nil {
                orientation = exifOrientation(b, from: body, to: end)
            }
            p = end
        }
    }

    /// SOF0…SOF15, excluding DHT (C4), JPG (C8) and DAC (CC) which share the range.
    private static func isStartOfFrame(_ marker: UInt8) -> Bool {
        (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
    }

    /// The orientation tag of IFD0 in an APP1 "Exif\0\0" segment, or `nil` when the segment is not
    /// EXIF or carries no usable orientation. A broken EXIF block is ignored rather than fatal, as
    /// decoders do: the image itself is still valid.
    private static func exifOrientation(_ b: ByteView, from start: Int, to end: Int) -> Int? {
        let exifMagic: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00] // "Exif\0\0"
        guard end - start >= 6 + 8 else { return nil }
        for i in 0..<6 where b[start + i] != exifMagic[i] { return nil }
        let tiff = start + 6
        let little: Bool
        switch (b[tiff], b[tiff + 1]) {
        case (0x49, 0x49): little = true // "II"
        case (0x4D, 0x4D): little = false // "MM"
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at >= tiff, at + 2 <= end else { return nil }
            return Int(little ? b.u16le(at) : b.u16be(at))
        }
        func u32(_ at: Int) -> Int? {
            guard at >= tiff, at + 4 <= end else { return nil }
            return Int(little ? b.u32le(at) : b.u32be(at))
        }
        guard u16(tiff + 2) == 42, let ifdOffset = u32(tiff + 4) else { return nil }
        let ifd = tiff + ifdOffset
        guard ifdOffset >= 8, let count = u16(ifd) else { return nil }
        for i in 0..<count {
            let entry = ifd + 2 + i * 12
            guard let tag = u16(entry) else { return nil }
            guard tag == 0x0112 else { continue }
            // Type SHORT (3), count 1: the value sits left-justified in the 4-byte value field.
            guard u16(entry + 2) == 3, u32(entry + 4) == 1, let value = u16(entry + 8) else { return nil }
            return (1...8).contains(value) ? value : nil
        }
        return nil
    }

    private static func hex(_ byte: UInt8) -> String {
        let s = String(byte, radix: 16, uppercase: true)
        return s.count == 1 ? "0" + s : s
    }
}

/// Bounds-checked-by-caller big/little-endian reads over raw bytes; every caller checks `count` first.
private struct ByteView {
    let raw: UnsafeRawBufferPointer
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
    var count: Int { raw.count }
    subscript(_ i: Int) -> UInt8 {
        precondition(i >= 0 && i < raw.count, "ImageHeader read out of bounds")
        return raw[i]
    }
    func u16be(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    func u16le(_ i: Int) -> UInt16 { UInt16(self[i + 1]) << 8 | UInt16(self[i]) }
    func u32be(_ i: Int) -> UInt32 { UInt32(u16be(i)) << 16 | UInt32(u16be(i + 2)) }
    func u32le(_ i: Int) -> UInt32 { UInt32(u16le(i + 2)) << 16 | UInt32(u16le(i)) }
}
