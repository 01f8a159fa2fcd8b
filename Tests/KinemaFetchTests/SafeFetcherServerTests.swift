import Foundation
import KinemaFetch
import Testing
import NIOHTTP1

/// Fetches against a real HTTP server on a loopback address (see `TestImageServer` for its routes).
@Suite struct SafeFetcherAgainstALocalServer {
    /// These tests are about redirects, refusals and bodies, not speed. A CI run once took 26 s for a loopback fetch,
    /// when CPU-heavy synchronous suites held Swift's cooperative pool; they now run off the pool (`offPool`), but the
    /// whole suite also starts S3 stand-ins and a browser beside these (two fetches passed 30 s in one run), so the
    /// bound is generous: it only has to end a fetch that hangs.
    static let patient = Duration.seconds(90)
    static let loopbackAllowed = SafeFetcher.Configuration(allow: [IPNetwork("127.0.0.1/32")!], timeout: patient)

    func failure(_ fetcher: SafeFetcher, _ url: String) async -> FetchError? {
        do {
            _ = try await fetcher.fetch(url)
            return nil
        } catch {
            return error
        }
    }

    @Test func fetchesAnImageFromAnAllowListedAddress() async throws {
        try await TestImageServer.with { server in
            let data = try await SafeFetcher(configuration: Self.loopbackAllowed).fetch("\(server.baseURL)/image")
            #expect(Array(data) == TestImageServer.imageBody)
        }
    }

    @Test func sendsAPlainUserAgentAndNoCredentials() async throws {
        try await TestImageServer.with { server in
            let url = "\(server.baseURL)/image?token=1#fragment"
            _ = try await SafeFetcher(configuration: Self.loopbackAllowed).fetch(url)
            let request = try #require(server.requests.first)
            #expect(request.uri == "/image?token=1")
            #expect(request.headers["User-Agent"] == ["Kinema/1"])
            #expect(request.headers["Authorization"].isEmpty)
            #expect(request.headers["Cookie"].isEmpty)
            #expect(request.headers["Host"] == ["127.0.0.1:\(server.port)"])
        }
    }

    @Test func refusesTheLoopbackServerWhenItIsNotAllowListed() async throws {
        try await TestImageServer.with { server in
            let error = try #require(await failure(SafeFetcher(configuration: .init()), "\(server.baseURL)/image"))
            #expect(error.code == .refusedAddress)
            #expect(error.message.contains("127.0.0.1"))
            #expect(error.message.contains("loopback"))
            // Refused before connecting: the server never saw a connection.
            #expect(server.connectionCount == 0)
        }
    }

    @Test(arguments: ["localhost", "2130706433", "0x7f.1", "127.1", "0177.0.0.1"])
    func otherSpellingsReachTheSameCheckedAddress(_ host: String) async throws {
        try await TestImageServer.with { server in
            let url = "http://\(host):\(server.port)/image"
            // ::1 too, for systems where localhost also has ::1: that address is tried, refused by the closed
            // port, and the next address (127.0.0.1) serves.
            let allow = [IPNetwork("127.0.0.1/32")!, IPNetwork("::1/128")!]
            let data = try await SafeFetcher(configuration: .init(allow: allow, timeout: Self.patient)).fetch(url)
            #expect(Array(data) == TestImageServer.imageBody)
            #expect(server.paths == ["/image"])
        }
    }

    @Test(.enabled(if: hasIPv6Loopback(), "this machine has no ::1"))
    func fetchesOverIPv6FromAnAllowListedAddress() async throws {
        try await TestImageServer.with(host: "::1") { server in
            let fetcher = SafeFetcher(configuration: .init(allow: [IPNetwork("::1/128")!], timeout: Self.patient))
            let data = try await fetcher.fetch("\(server.baseURL)/image")
            #expect(Array(data) == TestImageServer.imageBody)
        }
    }

    @Test func followsARedirectToAnotherPathOnTheSameHost() async throws {
        try await TestImageServer.with { server in
            let data = try await SafeFetcher(configuration: Self.loopbackAllowed).fetch("\(server.baseURL)/redirect/self")
            #expect(Array(data) == TestImageServer.imageBody)
            #expect(server.paths == ["/redirect/self", "/image"])
        }
    }

    @Test func followsUpToMaxRedirectsAndNoMore() async throws {
        try await TestImageServer.with { server in
            let fetcher = SafeFetcher(configuration: Self.loopbackAllowed) // maxRedirects 3
            let data = try await fetcher.fetch("\(server.baseURL)/chain/7")
            #expect(Array(data) == TestImageServer.imageBody)

            let error = try #require(await failure(fetcher, "\(server.baseURL)/chain/6"))
            #expect(error.code == .tooManyRedirects)
            #expect(error.message.contains("more than 3 times"))
            // The fourth redirect (to /chain/10) is refused without being requested.
            #expect(server.paths == ["/chain/7", "/chain/8", "/chain/9", "/chain/10", "/chain/6", "/chain/7", "/chain/8", "/chain/9"])
        }
    }

    @Test func refusesARedirectToAPrivateAddressBeforeConnecting() async throws {
        try await TestImageServer.with { server in
            let error = try #require(
                await failure(SafeFetcher(configuration: Self.loopbackAllowed), "\(server.baseURL)/redirect/private")
            )
            // refusedAddress (not connectionFailed or timeout) shows the decision was made without a connection.
            #expect(error.code == .refusedAddress)
            #expect(error.message.contains("the redirect target http://10.1.2.3/image"))
            #expect(error.message.contains("a private address"))
            #expect(server.paths == ["/redirect/private"])
        }
    }

    @Test func refusesARedirectToTheMetadataAddress() async throws {
        try await TestImageServer.with { server in
            let error = try #require(
                await failure(SafeFetcher(configuration: Self.loopbackAllowed), "\(server.baseURL)/redirect/metadata")
            )
            #expect(error.code == .refusedAddress)
            #expect(error.message.contains("cloud metadata"))
        }
    }

    @Test func refusesARedirectToAnotherScheme() async throws {
        try await TestImageServer.with { server in
            let error = try #require(
                await failure(SafeFetcher(configuration: Self.loopbackAllowed), "\(server.baseURL)/redirect/ftp")
            )
            #expect(error.code == .unsupportedScheme)
        }
    }

    @Test func detectsARedirectLoop() async throws {
        try await TestImageServer.with { server in
            let fetcher = SafeFetcher(configuration: .init(allow: [IPNetwork("127.0.0.1")!], timeout: Self.patient, maxRedirects: 10))
            let error = try #require(await failure(fetcher, "\(server.baseURL)/loop/a"))
            #expect(error.code == .tooManyRedirects)
            #expect(error.message.contains("loop"))
            #expect(server.paths == ["/loop/a", "/loop/b"])
        }
    }

    @Test func reportsARedirectWithoutLocation() async throws {
        try await TestImageServer.with { server in
            let error = try #require(
                await failure(SafeFetcher(configuration: Self.loopbackAllowed), "\(server.baseURL)/redirect/nolocation")
            )
            #expect(error.code == .httpStatus)
            #expect(error.message.contains("302"))
            #expect(error.message.contains("Location"))
        }
    }

    @Test func reportsANonSuccessStatusWithItsCode() async throws {
        try await TestImageServer.with { server in
            let error = try #require(
                await failure(SafeFetcher(configuration: Self.loopbackAllowed), "\(server.baseURL)/missing.png")
            )
            #expect(error.code == .httpStatus)
            #expect(error.message.contains("404"))
        }
    }

    @Test(arguments: ["", "?declared"])
    func acceptsABodyOfExactlyTheCap(_ query: String) async throws {
        try await TestImageServer.with { server in
            var configuration = Self.loopbackAllowed
            configuration.maxBytes = 1000
            let data = try await SafeFetcher(configuration: configuration).fetch("\(server.baseURL)/bytes/1000\(query)")
            #expect(data.count == 1000)
        }
    }

    @Test(arguments: ["", "?declared"])
    func refusesABodyOverTheCap(_ query: String) async throws {
        try await TestImageServer.with { server in
            var configuration = Self.loopbackAllowed
            configuration.maxBytes = 1000
            let fetcher = SafeFetcher(configuration: configuration)
            let justOver = try #require(await failure(fetcher, "\(server.baseURL)/bytes/1001\(query)"))
            #expect(justOver.code == .tooLarge)
            #expect(justOver.message.contains("1000 bytes"))
            let farOver = try #require(await failure(fetcher, "\(server.baseURL)/bytes/200000\(query)"))
            #expect(farOver.code == .tooLarge)
            if query == "?declared" {
                // Refused on the declared length, before reading the body.
                #expect(farOver.message.contains("is 200000 bytes"))
            }
        }
    }

    @Test func defaultCapIsTheContractsTenMegabytes() async throws {
        try await TestImageServer.with { server in
            let fetcher = SafeFetcher(configuration: Self.loopbackAllowed)
            #expect(fetcher.configuration.maxBytes == 10 * 1024 * 1024)
            let error = try #require(await failure(fetcher, "\(server.baseURL)/bytes/\(10 * 1024 * 1024 + 1)?declared"))
            #expect(error.code == .tooLarge)
            #expect(error.message.contains("10 MB (10485760 bytes)"))
        }
    }

    @Test func givesUpOnASlowBodyAtTheTimeCap() async throws {
        try await TestImageServer.with { server in
            var configuration = Self.loopbackAllowed
            configuration.timeout = .milliseconds(500)
            let error = try #require(await failure(SafeFetcher(configuration: configuration), "\(server.baseURL)/slow"))
            #expect(error.code == .timeout)
            #expect(error.message.contains("0.5 seconds"))
        }
    }

    @Test func stopsWhenTheCallerCancels() async throws {
        try await TestImageServer.with { server in
            let fetcher = SafeFetcher(configuration: Self.loopbackAllowed)
            let url = "\(server.baseURL)/slow"
            // Unstructured so the test can cancel it from outside, as a caller dropping the request would.
            let download = Task { () -> FetchError? in
                do throws(FetchError) {
                    _ = try await fetcher.fetch(url)
                    return nil
                } catch {
                    return error
                }
            }
            // Wait for the request to arrive (a signal, not a fixed delay), then cancel mid-body.
            let clock = ContinuousClock()
            let giveUp = clock.now.advanced(by: .seconds(60))
            while server.paths.isEmpty, clock.now < giveUp { try await Task.sleep(for: .milliseconds(10)) }
            #expect(server.paths == ["/slow"])
            download.cancel()
            let error = try #require(await download.value)
            #expect(error.code == .cancelled)
        }
    }

    @Test func reportsAConnectionFailureOnAClosedPort() async throws {
        // A port that nothing listens on and nothing else can take meanwhile: bound by a socket that never listens
        // (a freed port could be handed to another test's server between the check and the request).
        let reserved = try ReservedPort()
        defer { reserved.release() }
        let error = try #require(
            await failure(SafeFetcher(configuration: Self.loopbackAllowed), "http://127.0.0.1:\(reserved.port)/image")
        )
        #expect(error.code == .connectionFailed, "\(error.code): \(error.message)")
        #expect(error.message.contains("127.0.0.1"), "\(error.message)")
    }
}

/// A loopback TCP port held by a bound socket that never listens: a connection to it is refused at once.
struct ReservedPort {
    let descriptor: Int32
    let port: UInt16

    init() throws {
        #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #endif
        guard fd >= 0 else { throw ReservedPortError(message: "socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0 else {
            close(fd)
            throw ReservedPortError(message: "bind/getsockname: \(errno)")
        }
        descriptor = fd
        port = UInt16(bigEndian: address.sin_port)
    }

    func release() { close(descriptor) }
}

struct ReservedPortError: Error { var message: String }

/// Whether a socket can bind to ::1 (containers without IPv6 have no such address).
func hasIPv6Loopback() -> Bool {
    #if canImport(Darwin)
    let descriptor = socket(AF_INET6, SOCK_STREAM, 0)
    #else
    let descriptor = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    #endif
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
    } == 0
}
