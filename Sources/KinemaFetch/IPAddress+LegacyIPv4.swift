extension IPAddress {
    /// Whether a host label reads as a number (decimal digits, or "0x" and hex digits), which makes the host an
    /// IPv4 address rather than a DNS name (WHATWG URL "ends in a number").
    static func isNumericLabel(_ label: some StringProtocol) -> Bool {
        let lower = label.lowercased()
        if lower.hasPrefix("0x") { return lower.dropFirst(2).allSatisfy(\.isHexDigit) }
        return !lower.isEmpty && lower.allSatisfy(\.isASCIIDigitCharacter)
    }

    /// Parses the spellings `inet_aton` and browsers accept: one to four parts, each decimal, octal (leading
    /// 0) or hex (0x); the last part fills the remaining bytes ("127.1", "0x7f.1", "0177.0.0.1", "2130706433").
    ///
    /// Parsed here rather than by the resolver so these hosts never reach DNS and read the same on every platform.
    init?(legacyIPv4 parts: [String]) {
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for part in parts {
            guard let value = Self.legacyNumber(part) else { return nil }
            values.append(value)
        }
        for value in values.dropLast() where value > 255 { return nil }
        let lastBytes = 5 - values.count
        guard values[values.count - 1] < (UInt64(1) << (8 * UInt64(lastBytes))) else { return nil }
        var number = values[values.count - 1]
        for (index, value) in values.dropLast().enumerated() {
            number |= value << UInt64(8 * (3 - index))
        }
        self.init(bytes: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: number >> UInt64($0)) })
    }

    private static func legacyNumber(_ text: String) -> UInt64? {
        // Longer parts could only overflow; the largest valid value (0xffffffff) needs 12 octal digits.
        guard !text.isEmpty, text.count <= 12 else { return nil }
        let lower = text.lowercased()
        if lower.hasPrefix("0x") {
            let digits = lower.dropFirst(2)
            return digits.isEmpty ? 0 : UInt64(digits, radix: 16)
        }
        if lower.count > 1, lower.hasPrefix("0") { return UInt64(lower.dropFirst(), radix: 8) }
        guard lower.allSatisfy(\.isASCIIDigitCharacter) else { return nil }
        return UInt64(lower, radix: 10)
    }
}
