import KinemaFetch
import Testing

@Suite struct AddressPolicyDecisions {
    /// (address, words the reason must contain)
    static let refused: [(String, String)] = [
        ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"),
        ("10.0.0.5", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"), ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"), ("100.127.255.254", "carrier-grade NAT"),
        ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"),
        ("169.254.169.254", "cloud metadata"), ("169.254.1.1", "link-local"),
        ("192.0.0.170", "reserved"), ("192.0.2.1", "documentation"), ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"), ("198.18.0.1", "benchmarking"), ("192.88.99.1", "reserved"),
        ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"), ("240.0.0.1", "reserved"), ("254.1.2.3", "reserved"),
        ("::", "unspecified"), ("::1", "loopback"),
        ("::ffff:127.0.0.1", "IPv4-mapped IPv6 address embedding 127.0.0.1 (a loopback address)"),
        ("::ffff:169.254.169.254", "embedding 169.254.169.254 (the cloud metadata address)"),
        ("::127.0.0.1", "IPv4-compatible IPv6 address embedding 127.0.0.1"),
        ("::8.8.8.8", "deprecated IPv4-compatible"),
        ("64:ff9b::a00:5", "NAT64 address embedding 10.0.0.5 (a private address)"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:a9fe:a9fe::1", "6to4 address embedding 169.254.169.254"),
        ("2002:c0a8:101::1", "6to4 address embedding 192.168.1.1"),
        // Teredo keeps the client's IPv4 bit-inverted: 80ff:fffe is 127.0.0.1.
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo address embedding 127.0.0.1"),
        ("fc00::1", "unique-local"), ("fd00::2", "unique-local"), ("fd00:ec2::254", "unique-local"),
        ("fe80::1", "link-local"), ("febf::1", "link-local"), ("fec0::1", "site-local"),
        ("ff02::1", "multicast"), ("ff05::1:3", "multicast"),
        ("2001:db8::1", "documentation"), ("3fff::1", "documentation"), ("2001:2::1", "benchmarking"),
        ("100::1", "discard-only"), ("4000::1", "reserved"), ("::2", "IPv4-compatible"), ("5f00::1", "reserved"),
    ]

    @Test(arguments: refused)
    func refusesNonPublicAddresses(_ text: String, _ reason: String) throws {
        let address = try #require(IPAddress(text))
        let said = try #require(AddressPolicy().refusalReason(for: address), "\(text) should be refused")
        #expect(said.contains(reason), "\(text): \(said)")
    }

    @Test(arguments: [
        "8.8.8.8", "1.1.1.1", "93.184.215.14", "172.32.0.1", "172.15.255.255", "100.128.0.1",
        "100.63.255.255", "192.169.0.1", "169.255.0.1", "223.255.255.255", "11.0.0.1",
        "2606:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8", "64:ff9b::808:808",
        "2002:808:808::1", "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
    ])
    func allowsPublicUnicast(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(AddressPolicy().refusalReason(for: address) == nil, "\(text) is public")
    }

    @Test func allowListOpensOnlyTheListedNetworks() throws {
        let policy = AddressPolicy(allow: [IPNetwork("10.0.0.0/8")!, IPNetwork("::1")!])
        #expect(policy.refusalReason(for: IPAddress("10.1.2.3")!) == nil)
        #expect(policy.refusalReason(for: IPAddress("::1")!) == nil)
        // The IPv6 spellings of an allowed IPv4 host are allowed with it.
        #expect(policy.refusalReason(for: IPAddress("::ffff:10.1.2.3")!) == nil)
        #expect(policy.refusalReason(for: IPAddress("64:ff9b::a01:203")!) == nil)
        // Everything else stays refused.
        #expect(policy.refusalReason(for: IPAddress("127.0.0.1")!) != nil)
        #expect(policy.refusalReason(for: IPAddress("192.168.0.1")!) != nil)
        #expect(policy.refusalReason(for: IPAddress("::ffff:192.168.0.1")!) != nil)
    }
}
