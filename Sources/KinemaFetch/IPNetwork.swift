/// An IPv4 or IPv6 network in CIDR form ("127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"); a bare address means /32 or /128.
///
/// Host bits below the prefix are cleared, so "10.1.2.3/8" and "10.0.0.0/8" are the same network.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// The network's first address (host bits cleared).
    public let address: IPAddress
    /// The number of leading bits that every member shares with `address`.
    public let prefixLength: Int

    /// Parses "address/prefix" or a bare address; nil for a malformed address or an out-of-range prefix.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maxLength = address.bytes.count * 8
        var length = maxLength
        if parts.count == 2 {
            // Digits only: Int("+8") would accept a sign, which no CIDR writer means.
            guard !parts[1].isEmpty, parts[1].count <= 3, parts[1].allSatisfy(\.isASCIIDigitCharacter),
                let parsed = Int(parts[1]), parsed <= maxLength
            else { return nil }
            length = parsed
        }
        self.init(address: address, prefixLength: length)
    }

    /// A network from an address and a prefix length (clamped to 0...32 or 0...128).
    public init(address: IPAddress, prefixLength: Int) {
        let maxLength = address.bytes.count * 8
        let length = min(max(prefixLength, 0), maxLength)
        self.address = IPAddress(bytes: Self.masked(address.bytes, length))!
        self.prefixLength = length
    }

    /// Whether `address` lies inside this network.
    ///
    /// An IPv4 network also contains the IPv4-mapped IPv6 form of its members (`::ffff:127.0.0.1` is in
    /// `127.0.0.0/8`), because a socket connected to that form reaches the same IPv4 host.
    public func contains(_ candidate: IPAddress) -> Bool {
        var bytes = candidate.bytes
        if address.isIPv4, let unmapped = candidate.unmappedIPv4 { bytes = unmapped.bytes }
        guard bytes.count == address.bytes.count else { return false }
        return Self.masked(bytes, prefixLength) == address.bytes
    }

    /// CIDR text, e.g. "10.0.0.0/8".
    public var description: String { "\(address)/\(prefixLength)" }

    private static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        var result = bytes
        for index in result.indices {
            let bitsKept = min(max(length - index * 8, 0), 8)
            result[index] &= bitsKept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsKept))
        }
        return result
    }
}

extension Character {
    var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}
