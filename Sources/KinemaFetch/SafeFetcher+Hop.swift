import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOHTTP1

extension SafeFetcher {
    enum HopResult: Sendable {
        case body(Data)
        case redirect(status: UInt, location: String)
        /// A delivery's answer, whatever its status (redirects are not followed), with at most `maxBytes` of its body.
        case answer(status: Int, body: Data)
    }

    /// What one hop sends: a GET for a download, or a POST whose every answer is returned (a webhook delivery).
    struct Outgoing: Sendable {
        var method: HTTPMethod = .GET
        var headers: [(String, String)] = []
        var body: Data?

        static let get = Outgoing()
        var returnsAnyAnswer: Bool { method != .GET }
    }

    private static let redirectStatuses: Set<UInt> = [301, 302, 303, 307, 308]

    /// One request: check the host's addresses, then GET from a checked address; a redirect is returned, not followed.
    func fetchHop(_ url: FetchURL, subject: String, outgoing: Outgoing = .get) async throws -> HopResult {
        let addresses: [IPAddress]
        var named = subject
        switch url.host {
        case .address(let address):
            addresses = [address]
        case .name(let name):
            addresses = try await HostResolver.resolve(name)
            named += " (\(name))"
        }
        // All of them, not just the one we will use: a name that also points inside is refused outright, so
        // which address wins (resolver order, a retry) can never matter.
        for address in addresses {
            if let reason = policy.refusalReason(for: address) {
                throw FetchError(
                    code: .refusedAddress,
                    message: "\(named) resolves to \(address), \(reason), which is refused"
                )
            }
        }
        var failures: [String] = []
        for address in addresses {
            switch try await request(url, connectingTo: address, outgoing: outgoing) {
            case .finished(let result):
                return result
            case .couldNotConnect(let reason):
                failures.append("\(address): \(reason)")
            }
        }
        throw FetchError(
            code: .connectionFailed,
            message: "could not connect to \(url.urlHost) port \(url.effectivePort) (\(failures.joined(separator: "; ")))"
        )
    }

    private enum Attempt: Sendable {
        case finished(HopResult)
        case couldNotConnect(String)
    }

    /// The request to `url` over a connection to `address` only.
    ///
    /// AsyncHTTPClient rather than raw NIO because it brings HTTP/1.1 and HTTP/2, TLS with certificate and SNI
    /// checks against the URL's host, and body streaming with back-pressure. Its `dnsOverride` maps the URL's
    /// host to the checked address, so it never resolves the name itself; `dnsOverride` is per client, so each
    /// hop gets its own short-lived client (on the shared event loops, so this costs no threads). As a second
    /// lock, each new connection's peer address is compared with the checked one before any request is written.
    private func request(_ url: FetchURL, connectingTo address: IPAddress, outgoing: Outgoing) async throws -> Attempt {
        let peerCheck = PeerCheck(expected: address)
        var clientConfiguration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        clientConfiguration.dnsOverride = Self.dnsOverride(for: url, to: address)
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1
        clientConfiguration.http1_1ConnectionDebugInitializer = { channel in peerCheck.verify(channel) }
        clientConfiguration.http2ConnectionDebugInitializer = { channel in peerCheck.verify(channel) }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)

        let outcome: Result<Attempt, any Error>
        do {
            outcome = .success(try await exchange(url, client: client, peerCheck: peerCheck, outgoing: outgoing))
        } catch {
            outcome = .failure(error)
        }
        // Shut down on every path (it also cancels a body left unread after a redirect); a failure to shut
        // down cleanly changes nothing for the caller, so it is not reported.
        try? await client.shutdown()
        return try outcome.get()
    }

    private func exchange(_ url: FetchURL, client: HTTPClient, peerCheck: PeerCheck, outgoing: Outgoing) async throws -> Attempt {
        var request = HTTPClientRequest(url: url.requestURL)
        request.method = outgoing.method
        request.headers.add(name: "User-Agent", value: "Kinema/1")
        request.headers.add(name: "Accept", value: configuration.accept)
        for (name, value) in outgoing.headers { request.headers.add(name: name, value: value) }
        if let body = outgoing.body { request.body = .bytes(ByteBuffer(bytes: body)) }

        let response: HTTPClientResponse
        do {
            // The time cap is enforced by the caller; this deadline only has to be no shorter than that.
            response = try await client.execute(request, deadline: .distantFuture)
        } catch let error as FetchError {
            throw error
        } catch {
            try Task.checkCancellation()
            if !peerCheck.connected {
                if let mismatch = error as? PeerMismatch { return .couldNotConnect(mismatch.description) }
                return .couldNotConnect(Self.describeConnectionError(error))
            }
            throw FetchError(
                code: .connectionFailed,
                message: "the request to \(url.urlHost) failed before a response arrived: \(Self.describeConnectionError(error))"
            )
        }

        let status = response.status.code
        if outgoing.returnsAnyAnswer {
            return .finished(.answer(status: Int(status), body: await readPrefix(response)))
        }
        if Self.redirectStatuses.contains(status) {
            guard let location = response.headers.first(name: "location"), !location.isEmpty else {
                throw FetchError(
                    code: .httpStatus,
                    message: "\(url) answered with redirect status \(status) but no Location header"
                )
            }
            return .finished(.redirect(status: status, location: location))
        }
        guard (200...299).contains(status) else {
            throw FetchError(
                code: .httpStatus,
                message: "\(url) answered with HTTP status \(status) (\(response.status.reasonPhrase)) instead of 2xx", status: Int(status)
            )
        }
        return .finished(.body(try await readBody(response, from: url)))
    }

    private func readBody(_ response: HTTPClientResponse, from url: FetchURL) async throws -> Data {
        let limit = configuration.maxBytes
        let limitText = Self.describeLimit(limit)
        if let declared = response.headers.first(name: "content-length").flatMap(Int.init), declared > limit {
            throw FetchError(
                code: .tooLarge,
                message: "the \(configuration.subject) at \(url) is \(declared) bytes, more than the limit of \(limitText)"
            )
        }
        var body = ByteBuffer()
        do {
            for try await chunk in response.body {
                // Stop at the first byte past the cap; the rest is never read.
                guard body.readableBytes + chunk.readableBytes <= limit else {
                    throw FetchError(
                        code: .tooLarge,
                        message: "the \(configuration.subject) at \(url) is larger than the limit of \(limitText)"
                    )
                }
                var chunk = chunk
                body.writeBuffer(&chunk)
            }
        } catch let error as FetchError {
            throw error
        } catch {
            try Task.checkCancellation()
            throw FetchError(
                code: .connectionFailed,
                message: "the download from \(url.urlHost) broke off after \(body.readableBytes) bytes: \(Self.describeConnectionError(error))"
            )
        }
        return body.withUnsafeReadableBytes { Data($0) }
    }

    /// Up to `maxBytes` of an answer's body; the rest is never read (the client is shut down after the hop), and a
    /// body that breaks off is what arrived.
    private func readPrefix(_ response: HTTPClientResponse) async -> Data {
        var body = ByteBuffer()
        do {
            for try await var chunk in response.body {
                let room = configuration.maxBytes - body.readableBytes
                if chunk.readableBytes >= room {
                    if let part = chunk.readSlice(length: room) { body.writeImmutableBuffer(part) }
                    break
                }
                body.writeBuffer(&chunk)
            }
        } catch {}
        return body.withUnsafeReadableBytes { Data($0) }
    }

    /// The override that makes AsyncHTTPClient connect to `address` for this URL's host.
    ///
    /// AsyncHTTPClient looks the override up under the host it parses from the request URL: the name for a
    /// DNS host, the literal (IPv6 in brackets) for an IP host. Both spellings are entered so the lookup cannot
    /// miss; the peer check catches it if it ever did.
    static func dnsOverride(for url: FetchURL, to address: IPAddress) -> [String: String] {
        var hosts = [url.urlHost]
        if case .address(let literal) = url.host, !literal.isIPv4 { hosts.append(literal.description) }
        return Dictionary(uniqueKeysWithValues: hosts.map { ($0, address.description) })
    }

    /// "10 MB (10485760 bytes)" for whole mebibytes (the contract's unit), else "1000 bytes".
    static func describeLimit(_ bytes: Int) -> String {
        let mebibyte = 1024 * 1024
        return bytes >= mebibyte && bytes % mebibyte == 0 ? "\(bytes / mebibyte) MB (\(bytes) bytes)" : "\(bytes) bytes"
    }

    static func describeConnectionError(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return "the connection timed out"
            case .remoteConnectionClosed: return "the server closed the connection"
            default: return "\(error)"
            }
        }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return describeConnectionError(first.error)
        }
        return "\(error)"
    }
}
