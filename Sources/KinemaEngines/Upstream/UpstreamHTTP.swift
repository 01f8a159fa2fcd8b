import AsyncHTTPClient
import Foundation
import KinemaCore
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix

/// One call to a provider's API, as a provider builds it.
struct UpstreamRequest: Sendable {
    enum Method: String, Sendable { case GET, POST, PUT }

    var method: Method
    var url: String
    var headers: [(String, String)] = []
    var body: Data?
    /// Whether the call may cost money (a submit): it is never retried on an unknown outcome, only reconciled.
    var paid = false

    /// Bytes to reserve for a submit body carrying `job`'s images in base64.
    static func capacity(_ job: RenderJob) -> Int {
        (job.image.count + (job.endImage?.count ?? 0)) * 4 / 3 + 16 * 1024
    }
}

/// A provider's answer (the body capped at `UpstreamHTTP.maxBodyBytes`).
struct UpstreamResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: Data

    /// The first value of header `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// The body as a JSON object, or `nil`.
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }

    /// The body as text for a reason, short and on one line.
    var snippet: String {
        let text = String(decoding: body.prefix(300), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return text.isEmpty ? "(empty body)" : text
    }

    /// `Retry-After` in seconds when the provider sent one (seconds form only), capped at five minutes.
    var retryAfter: Duration? {
        guard let text = header("retry-after"), let seconds = Int(text.trimmingCharacters(in: .whitespaces)), seconds >= 0 else { return nil }
        return .seconds(min(seconds, 300))
    }
}

/// Why a call got no answer, split by what it means for a paid submit.
enum UpstreamTransportError: Error, Sendable, CustomStringConvertible {
    /// Nothing reached the provider (no connection): safe to send again.
    case notSent(String)
    /// The request may have reached the provider but no answer was read (timeout, broken connection): a submit's
    /// outcome is unknown.
    case noAnswer(String)

    var description: String {
        switch self {
        case .notSent(let why): "could not connect: \(why)"
        case .noAnswer(let why): "no answer: \(why)"
        }
    }
}

/// The HTTP client every upstream engine of a node shares: keep-alive connections per provider host, a time cap on
/// each call, and answers capped in size. Provider URLs come from the operator's configuration (and, for fal, from
/// fal's own answers, checked against it), so no address policy applies here; results are fetched with `SafeFetcher`.
final class UpstreamHTTP: Sendable {
    /// Largest API answer read (JSON); a larger one is a provider fault.
    static let maxBodyBytes = 4 * 1024 * 1024

    let client: HTTPClient

    init(connectionsPerHost: Int) {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, decompression: .disabled)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, connectionsPerHost)
        configuration.timeout.connect = .seconds(10)
        // A refused connection surfaces at once as a connection error (nothing sent), not as a deadline after retries.
        configuration.connectionPool.retryConnectionEstablishment = false
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    func shutdown() async {
        try? await client.shutdown()
    }

    /// For a start that fails before anything ran.
    func syncShutdown() {
        try? client.syncShutdown()
    }

    /// Sends `request` as `send(_:timeout:)` does and counts it: `kinema_upstream_calls_total{provider,call,outcome}`
    /// (outcome: the answer's status class, `not_sent` or `no_answer`) and `kinema_upstream_call_duration_seconds`.
    func send(_ request: UpstreamRequest, timeout: Duration, provider: String, call: String) async throws -> UpstreamResponse {
        let started = ContinuousClock.now
        var outcome = "no_answer"
        defer {
            Counter(label: "kinema_upstream_calls_total", dimensions: [("provider", provider), ("call", call), ("outcome", outcome)])
                .increment()
            let elapsed = ContinuousClock.now - started
            Timer(label: "kinema_upstream_call_duration_seconds", dimensions: [("provider", provider), ("call", call)])
                .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        do {
            let response = try await send(request, timeout: timeout)
            outcome = "\(response.status / 100)xx"
            return response
        } catch let error as UpstreamTransportError {
            if case .notSent = error { outcome = "not_sent" } else { outcome = "no_answer" }
            throw error
        }
    }

    /// Sends `request`, waiting at most `timeout` for the whole answer.
    func send(_ request: UpstreamRequest, timeout: Duration) async throws -> UpstreamResponse {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method.rawValue)
        outgoing.headers.add(name: "User-Agent", value: "Kinema/1")
        outgoing.headers.add(name: "Accept", value: "application/json")
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body {
            outgoing.headers.add(name: "Content-Type", value: "application/json")
            outgoing.body = .bytes(ByteBuffer(bytes: body))
        }
        let deadline = NIODeadline.now() + .nanoseconds(timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(outgoing, deadline: deadline)
        } catch {
            try Task.checkCancellation()
            throw Self.transportError(error)
        }
        var body = ByteBuffer()
        do {
            for try await chunk in response.body {
                guard body.readableBytes + chunk.readableBytes <= Self.maxBodyBytes else {
                    throw UpstreamTransportError.noAnswer("the answer is larger than \(Self.maxBodyBytes / 1024 / 1024) MiB")
                }
                var chunk = chunk
                body.writeBuffer(&chunk)
            }
        } catch let error as UpstreamTransportError {
            throw error
        } catch {
            try Task.checkCancellation()
            throw UpstreamTransportError.noAnswer("the answer broke off: \(Self.describe(error))")
        }
        return UpstreamResponse(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: body.withUnsafeReadableBytes { Data($0) })
    }

    /// Connection failures mean nothing was sent; anything else may have reached the provider (the safe assumption
    /// for a paid call).
    static func transportError(_ error: any Error) -> UpstreamTransportError {
        if let client = error as? HTTPClientError {
            if client == .connectTimeout { return .notSent("the connection timed out") }
            if client == .deadlineExceeded || client == .readTimeout { return .noAnswer("no answer within the time limit") }
        }
        if error is NIOConnectionError { return .notSent(describe(error)) }
        if case .connectTimeout = error as? ChannelError { return .notSent("the connection timed out") }
        if let io = error as? IOError, [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH].contains(io.errnoCode) {
            return .notSent(describe(error))
        }
        return .noAnswer(describe(error))
    }

    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return String(describing: error).prefix(200).description
    }
}
