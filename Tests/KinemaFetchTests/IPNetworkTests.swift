import KinemaFetch
import Testing

@Suite struct IPAddressParsing {
    @Test func parsesDottedQuadIntoFourBytes() throws {
        let address = try #require(IPAddress("192.168.1.20"))
        #expect(address.bytes == [192, 168, 1, 20])
        #expect(address.isIPv4)
        #expect(address.description == "192.168.1.20")
    }

    @Test func parsesIPv6IntoSixteenBytesAndPrintsCanonically() throws {
        let address = try #require(IPAddress("2001:0DB8:0:0:0:0:0:0001"))
        #expect(address.bytes.count == 16)
        #expect(!address.isIPv4)
        #expect(address.description == "2001:db8::1")
        #expect(IPAddress("::1")?.bytes == Array(repeating: 0, count: 15) + [1])
    }

    @Test func unwrapsIPv4MappedAddresses() throws {
        let mapped = try #require(IPAddress("::ffff:10.1.2.3"))
        #expect(mapped.unmappedIPv4 == IPAddress("10.1.2.3"))
        #expect(IPAddress("::ffff:a01:203") == mapped)
        // The compatible form and plain IPv6 addresses are not mapped.
        #expect(IPAddress("::10.1.2.3")?.unmappedIPv4 == nil)
        #expect(IPAddress("2001:db8::1")?.unmappedIPv4 == nil)
    }

    @Test(arguments: [
        "", "1.2.3", "256.1.1.1", "1.2.3.4.5", "127.1", "0x7f.0.0.1", "2130706433", "::g", "1::2::3",
        "[::1]", "1.2.3.4/8", " 1.2.3.4", "fe80::1%eth0",
    ])
    func rejectsAnythingButCanonicalForms(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func bytesInitializerAcceptsOnlyFourOrSixteen() {
        #expect(IPAddress(bytes: [1, 2, 3, 4])?.description == "1.2.3.4")
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: Array(repeating: 0, count: 15)) == nil)
    }
}

@Suite struct IPNetworkParsingAndMembership {
    @Test func bareAddressIsAHostNetwork() throws {
        let v4 = try #require(IPNetwork("127.0.0.1"))
        #expect(v4.prefixLength == 32)
        #expect(v4.description == "127.0.0.1/32")
        let v6 = try #require(IPNetwork("::1"))
        #expect(v6.prefixLength == 128)
        #expect(v6.description == "::1/128")
    }

    @Test func hostBitsAreCleared() {
        #expect(IPNetwork("10.1.2.3/8") == IPNetwork("10.0.0.0/8"))
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(IPNetwork("fd12:3456::1/8")?.description == "fd00::/8")
        #expect(IPNetwork("172.31.0.0/12")?.description == "172.16.0.0/12")
    }

    @Test(arguments: [
        "10.0.0.0/33", "::/129", "10.0.0/8", "abc", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/-1",
        "/8", "10.0.0.0/8/8", "0177.0.0.1/8", "[::1]/128", "10.0.0.0/0008", "",
    ])
    func rejectsMalformedNetworks(_ text: String) {
        #expect(IPNetwork(text) == nil)
    }

    @Test func ipv4Membership() throws {
        let tenSlash8 = try #require(IPNetwork("10.0.0.0/8"))
        #expect(tenSlash8.contains(IPAddress("10.0.0.0")!))
        #expect(tenSlash8.contains(IPAddress("10.255.255.255")!))
        #expect(!tenSlash8.contains(IPAddress("11.0.0.0")!))
        #expect(!tenSlash8.contains(IPAddress("9.255.255.255")!))

        let private12 = try #require(IPNetwork("172.16.0.0/12"))
        #expect(private12.contains(IPAddress("172.31.255.255")!))
        #expect(!private12.contains(IPAddress("172.32.0.0")!))
        #expect(!private12.contains(IPAddress("172.15.255.255")!))

        let cgnat = try #require(IPNetwork("100.64.0.0/10"))
        #expect(cgnat.contains(IPAddress("100.127.255.255")!))
        #expect(!cgnat.contains(IPAddress("100.128.0.0")!))

        let host = try #require(IPNetwork("127.0.0.1/32"))
        #expect(host.contains(IPAddress("127.0.0.1")!))
        #expect(!host.contains(IPAddress("127.0.0.2")!))
    }

    @Test func ipv6Membership() throws {
        let linkLocal = try #require(IPNetwork("fe80::/10"))
        #expect(linkLocal.contains(IPAddress("fe80::1")!))
        #expect(linkLocal.contains(IPAddress("febf:ffff::1")!))
        #expect(!linkLocal.contains(IPAddress("fec0::1")!))

        let uniqueLocal = try #require(IPNetwork("fc00::/7"))
        #expect(uniqueLocal.contains(IPAddress("fd00::2")!))
        #expect(!uniqueLocal.contains(IPAddress("fe00::1")!))

        let loopback = try #require(IPNetwork("::1/128"))
        #expect(loopback.contains(IPAddress("::1")!))
        #expect(!loopback.contains(IPAddress("::2")!))
    }

    @Test func familiesDoNotMixExceptThroughTheMappedForm() throws {
        let allV4 = try #require(IPNetwork("0.0.0.0/0"))
        let allV6 = try #require(IPNetwork("::/0"))
        #expect(allV4.contains(IPAddress("203.0.113.5")!))
        #expect(!allV4.contains(IPAddress("2001:db8::1")!))
        #expect(allV6.contains(IPAddress("2001:db8::1")!))
        #expect(!allV6.contains(IPAddress("203.0.113.5")!))

        // A socket connected to ::ffff:127.0.0.1 reaches 127.0.0.1, so the IPv4 network contains it.
        let loopback = try #require(IPNetwork("127.0.0.0/8"))
        #expect(loopback.contains(IPAddress("::ffff:127.0.0.1")!))
        #expect(!loopback.contains(IPAddress("::127.0.0.1")!))
        #expect(try #require(IPNetwork("::ffff:0:0/96")).contains(IPAddress("::ffff:8.8.8.8")!))
    }
}
