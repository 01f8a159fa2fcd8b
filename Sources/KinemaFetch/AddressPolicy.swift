/// Decides which resolved addresses the fetcher may connect to.
///
/// Everything that is not ordinary public unicast is refused: loopback, unspecified, private (RFC 1918, CGNAT,
/// unique-local), link-local (including the cloud metadata address 169.254.169.254), multicast, broadcast,
/// reserved, benchmarking and documentation ranges, and IPv6 forms that carry a refused IPv4 address
/// (IPv4-mapped, NAT64, 6to4, Teredo). An operator allow-list re-opens chosen networks.
public struct AddressPolicy: Sendable {
    /// Networks the operator has opened (`--allow-fetch-from`); they win over every refusal.
    public var allow: [IPNetwork]

    /// A policy with the given allow-list.
    public init(allow: [IPNetwork] = []) {
        self.allow = allow
    }

    /// Why `address` is refused, as a noun phrase ("a private address"); nil when it may be connected to.
    public func refusalReason(for address: IPAddress) -> String? {
        if isAllowListed(address) { return nil }
        if address.isIPv4 { return Self.ipv4Reason(address) }
        return ipv6Reason(address)
    }

    private func isAllowListed(_ address: IPAddress) -> Bool {
        if allow.contains(where: { $0.contains(address) }) { return true }
        // An operator who opened 10.1.0.0/16 also means the NAT64/6to4 spellings of those hosts.
        if let (_, embedded) = Self.embeddedIPv4(address), allow.contains(where: { $0.contains(embedded) }) {
            return true
        }
        return false
    }

    private func ipv6Reason(_ address: IPAddress) -> String? {
        for rule in Self.ipv6Leading where rule.network.contains(address) { return rule.reason }
        if let (form, embedded) = Self.embeddedIPv4(address) {
            if let inner = Self.ipv4Reason(embedded) {
                return "\(form) embedding \(embedded) (\(inner))"
            }
            // IPv4-compatible addresses are deprecated (RFC 4291) and never routed: nothing legitimate uses them.
            if form == Self.compatibleForm { return "a deprecated IPv4-compatible IPv6 address" }
            return nil
        }
        for rule in Self.ipv6Rules where rule.network.contains(address) { return rule.reason }
        if !Self.globalUnicast.contains(address) { return "a reserved address" }
        return nil
    }

    private static func ipv4Reason(_ address: IPAddress) -> String? {
        for rule in ipv4Rules where rule.network.contains(address) { return rule.reason }
        return nil
    }

    private static let compatibleForm = "an IPv4-compatible IPv6 address"

    /// The IPv4 address an IPv6 address stands for, with the name of the form, for the forms whose packets
    /// end up at that IPv4 host (directly, or through a translator or relay).
    private static func embeddedIPv4(_ address: IPAddress) -> (form: String, IPAddress)? {
        let b = address.bytes
        guard b.count == 16 else { return nil }
        func v4(_ slice: ArraySlice<UInt8>) -> IPAddress { IPAddress(bytes: Array(slice))! }
        if let mapped = address.unmappedIPv4 { return ("an IPv4-mapped IPv6 address", mapped) }
        if network("::/96").contains(address) { return (compatibleForm, v4(b[12..<16])) }
        if network("64:ff9b::/96").contains(address) { return ("a NAT64 address", v4(b[12..<16])) }
        if network("2002::/16").contains(address) { return ("a 6to4 address", v4(b[2..<6])) }
        if network("2001::/32").contains(address) {
            // Teredo stores the client's IPv4 address bit-inverted in the last 32 bits (RFC 4380).
            return ("a Teredo address", IPAddress(bytes: b[12..<16].map { ~$0 })!)
        }
        return nil
    }

    private struct Rule: Sendable {
        var network: IPNetwork
        var reason: String
    }

    private static func network(_ text: String) -> IPNetwork { IPNetwork(text)! }

    private static func rules(_ pairs: [(String, String)]) -> [Rule] {
        pairs.map { Rule(network: network($0.0), reason: $0.1) }
    }

    // Order matters: the first match names the reason, so specific ranges come before the ones containing them.
    private static let ipv4Rules = rules([
        ("0.0.0.0/8", "an unspecified (\"this network\") address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.169.254/32", "the cloud metadata address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved protocol-assignment address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a reserved 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("255.255.255.255/32", "the broadcast address"),
        ("240.0.0.0/4", "a reserved address"),
    ])

    /// Checked before the embedded-IPv4 forms, because `::` and `::1` also sit inside `::/96`.
    private static let ipv6Leading = rules([
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
    ])

    private static let ipv6Rules = rules([
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard-only address"),
        ("2001:2::/48", "a benchmarking address"),
        ("2001:10::/28", "a reserved (ORCHID) address"),
        ("2001:20::/28", "a reserved (ORCHID) address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a private (unique-local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a private (site-local) address"),
        ("ff00::/8", "a multicast address"),
    ])

    /// Only this block is allocated as global unicast; every other IPv6 address left over is reserved.
    private static let globalUnicast = network("2000::/3")
}
