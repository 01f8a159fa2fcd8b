#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address held as its network-order bytes (4 or 16 of them).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address bytes in network order: 4 for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Parses the canonical text forms only: dotted-quad IPv4 ("10.0.0.1") or IPv6 ("fd00::1",
    /// "::ffff:10.0.0.1"), without brackets, zone or prefix.
    ///
    /// Legacy IPv4 spellings ("127.1", "0x7f.1", "2130706433") are deliberately not accepted here: they
    /// are host spellings in URLs, handled by `FetchURL`, not addresses an operator writes in an allow-list.
    public init?(_ text: String) {
        // inet_pton is the strict POSIX parser: no octal, no short forms, no trailing garbage.
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            self.bytes = withUnsafeBytes(of: &raw) { Array($0) }
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.bytes = withUnsafeBytes(of: &raw) { Array($0) }
        }
    }

    /// Wraps raw bytes; nil unless there are exactly 4 or 16.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Whether this is an IPv4 address (4 bytes).
    public var isIPv4: Bool { bytes.count == 4 }

    /// The IPv4 address carried in the low 32 bits of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), if this is one.
    public var unmappedIPv4: IPAddress? {
        guard bytes.count == 16,
            bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff
        else { return nil }
        return IPAddress(bytes: Array(bytes[12..<16]))
    }

    /// The canonical text form (RFC 5952 for IPv6, as `inet_ntop` writes it).
    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = isIPv4 ? AF_INET : AF_INET6
        let written = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
        }
        guard written != nil else { return bytes.map(String.init).joined(separator: ".") }
        let end = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The address as it appears in a URL: IPv6 in brackets.
    var urlHost: String { isIPv4 ? description : "[\(description)]" }
}
