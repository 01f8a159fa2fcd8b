import Foundation

/// UUID text without Foundation's formatted scanning and printing (`sscanf`/`sprintf` per call): a poll parses a
/// task id, reads it from the store and writes it into the body (issue 16).
extension UUID {
    /// Parses the canonical 8-4-4-4-12 form in either case, and nothing else (Foundation's `UUID(uuidString:)` scans
    /// with `%2hhx` and also takes some text that is not canonical, such as a space inside a byte).
    public init?(canonical text: some StringProtocol) {
        var string = String(text) // free for a String; the parse then runs over its contiguous UTF-8
        guard let bytes = string.withUTF8(Self.parse) else { return nil }
        self.init(uuid: bytes)
    }

    private static func parse(_ text: UnsafeBufferPointer<UInt8>) -> uuid_t? {
        guard text.count == 36 else { return nil }
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &bytes) { out -> Bool in
            var position = 0
            for index in 0..<16 {
                if position == 8 || position == 13 || position == 18 || position == 23 {
                    guard text[position] == UInt8(ascii: "-") else { return false }
                    position += 1
                }
                guard let high = nibble(text[position]), let low = nibble(text[position + 1]) else { return false }
                out[index] = high << 4 | low
                position += 2
            }
            return true
        }
        return parsed ? bytes : nil
    }

    /// The canonical form in lowercase (the wire's task ids).
    public var lowercasedText: String { text(HexDigits.lower) }

    /// The canonical form in uppercase: the same text as `uuidString` (the stores' keys).
    public var uppercasedText: String { text(HexDigits.upper) }

    private func text(_ digits: [UInt8]) -> String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                var o = 0
                for i in 0..<16 {
                    if i == 4 || i == 6 || i == 8 || i == 10 {
                        out[o] = UInt8(ascii: "-")
                        o += 1
                    }
                    out[o] = digits[Int(bytes[i] >> 4)]
                    out[o + 1] = digits[Int(bytes[i] & 0x0F)]
                    o += 2
                }
                return o
            }
        }
    }

    @inline(__always) private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
