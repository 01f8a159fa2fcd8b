import KinemaFetch
import Testing
import KinemaCore

/// URLs refused before any connection: every host here is an IP literal or `localhost`, so nothing leaves the
/// machine (and nothing listens on these ports: a connection attempt would fail with `connectionFailed`, not
/// with the codes expected here).
@Suite struct SafeFetcherRefusals {
    let fetcher = SafeFetcher(configuration: .init())

    func failure(_ url: String, with fetcher: SafeFetcher? = nil) async -> FetchError? {
        do {
            _ = try await (fetcher ?? self.fetcher).fetch(url)
            return nil
        } catch {
            return error
        }
    }

    @Test func privateAddressMessageSaysWhatAndWhy() async throws {
        let error = try #require(await failure("http://10.0.0.5/cat.png"))
        #expect(error.code == .refusedAddress)
        #expect(error.message == "the image URL resolves to 10.0.0.5, a private address, which is refused")
    }

    /// (URL, the address the message must name, the reason it must give)
    static let refusedURLs: [(String, String, String)] = [
        ("http://127.0.0.1/x.png", "127.0.0.1", "loopback"),
        ("http://127.8.9.10:8080/x.png", "127.8.9.10", "loopback"),
        // Which loopback address localhost has first depends on /etc/hosts; the message names the host.
        ("http://localhost/x.png", "(localhost) resolves to", "loopback"),
        ("http://LOCALHOST./x.png", "(localhost) resolves to", "loopback"),
        ("http://2130706433/", "127.0.0.1", "loopback"),
        ("http://0177.0.0.1/", "127.0.0.1", "loopback"),
        ("http://0x7f.1/", "127.0.0.1", "loopback"),
        ("http://0x7F000001/", "127.0.0.1", "loopback"),
        ("http://127.1/", "127.0.0.1", "loopback"),
        ("http://127.0.0.1./", "127.0.0.1", "loopback"),
        ("http://[::1]/", "::1", "loopback"),
        ("http://[0:0:0:0:0:0:0:1]:8080/", "::1", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1", "IPv4-mapped"),
        ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", "embedding 127.0.0.1"),
        ("http://[::127.0.0.1]/", "127.0.0.1", "IPv4-compatible"),
        ("http://[64:ff9b::a00:5]/", "10.0.0.5", "NAT64"),
        ("http://[2002:a9fe:a9fe::1]/", "169.254.169.254", "6to4"),
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "127.0.0.1", "Teredo"),
        ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
        ("http://0/", "0.0.0.0", "unspecified"),
        ("http://[::]/", "::", "unspecified"),
        ("http://10.1.2.3/", "10.1.2.3", "private"),
        ("http://172.16.0.1/", "172.16.0.1", "private"),
        ("http://192.168.1.1/", "192.168.1.1", "private"),
        ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "cloud metadata"),
        ("http://169.254.1.1/", "169.254.1.1", "link-local"),
        ("http://[fe80::1]/", "fe80::1", "link-local"),
        ("http://[fd00::1]/", "fd00::1", "unique-local"),
        ("http://[fc00::1]/", "fc00::1", "unique-local"),
        ("http://224.0.0.1/", "224.0.0.1", "multicast"),
        ("http://[ff02::1]/", "ff02::1", "multicast"),
        ("http://255.255.255.255/", "255.255.255.255", "broadcast"),
        ("http://240.0.0.1/", "240.0.0.1", "reserved"),
        ("http://192.0.2.1/", "192.0.2.1", "documentation"),
        ("http://198.51.100.7/", "198.51.100.7", "documentation"),
        ("http://203.0.113.9/", "203.0.113.9", "documentation"),
        ("http://[2001:db8::1]/", "2001:db8::1", "documentation"),
        ("https://10.0.0.1:8443/a.jpg", "10.0.0.1", "private"),
        ("HTTP://10.0.0.1/", "10.0.0.1", "private"),
    ]

    @Test(arguments: refusedURLs)
    func refusesNonPublicDestinationsInEverySpelling(_ url: String, _ address: String, _ reason: String) async throws {
        let error = try #require(await failure(url), "\(url) must be refused")
        #expect(error.code == .refusedAddress, "\(url): \(error)")
        #expect(error.message.contains(address), "\(url): \(error.message)")
        #expect(error.message.contains(reason), "\(url): \(error.message)")
        #expect(error.message.hasSuffix("which is refused"))
    }

    @Test func allowListingOneAddressDoesNotOpenItsNeighbours() async throws {
        let fetcher = SafeFetcher(configuration: .init(allow: [IPNetwork("127.0.0.1/32")!]))
        let error = try #require(await failure("http://127.0.0.2/", with: fetcher))
        #expect(error.code == .refusedAddress)
        #expect(error.message.contains("127.0.0.2"))
    }

    @Test(arguments: [
        "ftp://127.0.0.1/x.png", "file:///etc/passwd", "gopher://127.0.0.1/", "javascript:alert(1)",
        "data:image/png;base64,iVBORw0KGgo=", "ws://127.0.0.1/",
    ])
    func refusesSchemesOtherThanHTTP(_ url: String) async throws {
        let error = try #require(await failure(url))
        #expect(error.code == .unsupportedScheme, "\(url): \(error)")
        #expect(error.message.contains("only http and https"))
    }

    @Test(arguments: [
        "http://user:secret@127.0.0.1/x.png", "http://user@10.0.0.1/", "https://:pw@[::1]/",
        "http://127.0.0.1\\@10.0.0.1/",
    ])
    func refusesCredentialsInTheURL(_ url: String) async throws {
        let error = try #require(await failure(url))
        #expect(error.code == .invalidURL, "\(url): \(error)")
        #expect(error.message.contains("credentials"))
        #expect(!error.message.contains("secret"))
    }

    /// (URL, words the message must contain)
    static let malformed: [(String, String)] = [
        ("", "not a valid URL"),
        ("not a url", "not an absolute URL"),
        ("/relative/cat.png", "not an absolute URL"),
        ("http:///cat.png", "has no host"),
        ("http://[::1/", "not a valid URL"),
        ("http://256.1.1.1/", "invalid IPv4 address"),
        ("http://1.2.3.4.5/", "invalid IPv4 address"),
        ("http://0x100000000/", "invalid IPv4 address"),
        ("http://09.1.1.1/", "invalid IPv4 address"),
        ("http://example.08/", "invalid IPv4 address"),
        ("http://a..b/", "malformed host name"),
        ("http://b%C3%BCcher.example/", "plain ASCII"),
        ("http://[fe80::1%25eth0]/", "invalid IPv6 address"),
        ("http://[10.0.0.1]/", "invalid IPv6 address"),
        ("http://127.0.0.1:99999/", "port"),
        ("http://127.0.0.1:0/", "port"),
    ]

    @Test(arguments: malformed)
    func rejectsMalformedURLsWithoutTouchingTheNetwork(_ url: String, _ words: String) async throws {
        let error = try #require(await failure(url))
        #expect(error.code == .invalidURL, "\(url): \(error)")
        #expect(error.message.contains(words), "\(url): \(error.message)")
    }

    @Test func errorsMapOntoTheContractsValidationKinds() {
        let tooLarge = FetchError(code: .tooLarge, message: "too big")
        #expect(tooLarge.validationError(field: "image").kind.reason == "IMAGE_FILE_EXCEEDS_MAX_SIZE")
        let scheme = FetchError(code: .unsupportedScheme, message: "ftp")
        #expect(scheme.validationError(field: "image").kind.reason == "INVALID_IMAGE_FORMAT")
        let refused = FetchError(code: .refusedAddress, message: "no")
        let mapped = refused.validationError(field: "image_tail")
        #expect(mapped.kind.reason == "IMAGE_FETCH_FAILED")
        #expect(mapped.field == "image_tail")
        #expect(mapped.message == "no")
    }
}
