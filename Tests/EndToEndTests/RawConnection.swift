import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A loopback TCP connection spoken to byte for byte, for requests no HTTP client would send. Every blocking call
/// runs on a dedicated thread (never Swift's cooperative pool) and is bounded by a timeout.
final class RawConnection: @unchecked Sendable {
    // SAFETY: `received` and `peerClosed` are only touched under `lock`; a test awaits each call before the next.
    private let lock = NSLock()
    let fd: Int32
    private var received: [UInt8] = []
    private var peerClosed = false
    /// How the server's side ended, when it did: "EOF" or the errno of a failed read (a reset).
    private var closeCause = ""
    /// When the connection was opened (for diagnostics).
    private let opened = ContinuousClock.now

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        Glibc.close(fd)
    }

    /// Connects to 127.0.0.1:`port` from `source` (any 127.x.y.z address is local, so tests can act as several clients).
    static func open(port: UInt16, from source: String = "127.0.0.1") async throws -> RawConnection {
        let fd = try await offPool { try RawConnection.connect(port: port, from: source) }.get()
        return RawConnection(fd: fd)
    }

    /// A connected socket (blocking; call off the cooperative pool).
    static func connect(port: UInt16, from source: String) throws -> Int32 {
        // Close-on-exec: a child process another test starts meanwhile must not hold this connection open.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(source)
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            Glibc.close(fd)
            throw TestFailure("bind() to \(source) failed: errno \(errno)")
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw TestFailure("connect() from \(source) to 127.0.0.1:\(port) failed: errno \(errno)")
        }
        return fd
    }

    /// Sends all of `text`; `false` when the server has closed (or reset) the connection.
    @discardableResult
    func send(_ text: String) async -> Bool {
        await send(Array(text.utf8))
    }

    /// Sends all of `bytes`; `false` when the server has closed (or reset) the connection.
    @discardableResult
    func send(_ bytes: [UInt8]) async -> Bool {
        let fd = self.fd
        return await Self.offPool {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    /// Everything received so far.
    var bytes: [UInt8] { lock.withLock { received } }
    /// What was received so far, as text.
    var text: String { String(decoding: bytes, as: UTF8.self) }
    /// Whether the server closed its side.
    var isClosedByPeer: Bool { lock.withLock { peerClosed } }
    /// The connection's state for a failure message: open or how it ended, bytes received, and its age.
    var state: String {
        lock.withLock {
            "\(peerClosed ? "closed by the server (\(closeCause))" : "still open"), \(received.count) bytes received, \(ContinuousClock.now - opened) after opening"
        }
    }

    /// Reads until `done` holds for what was received, the server closes, or `timeout` passes; returns whether `done` held.
    @discardableResult
    func receive(timeout: Duration, until done: @escaping @Sendable ([UInt8]) -> Bool) async -> Bool {
        let fd = self.fd
        return await Self.offPool { [self] in
            let deadline = ContinuousClock.now + timeout
            while true {
                let (sofar, closed) = lock.withLock { (received, peerClosed) }
                if done(sofar) { return true }
                if closed { return false }
                let left = deadline - ContinuousClock.now
                if left <= .zero { return false }
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ms = Int32(max(1, min(Int64(left.components.seconds) * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 1000)))
                if poll(&p, 1, ms) <= 0 { continue }
                var chunk = [UInt8](repeating: 0, count: 64 * 1024)
                let n = recv(fd, &chunk, chunk.count, 0)
                if n > 0 {
                    lock.withLock { received += chunk[0..<n] }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    let cause = n == 0 ? "EOF" : "errno \(errno)"
                    lock.withLock {
                        peerClosed = true
                        closeCause = cause
                    }
                }
            }
        }
    }

    /// Reads until the server closes the connection or `timeout` passes; returns whether it closed.
    @discardableResult
    func receiveUntilClosed(timeout: Duration) async -> Bool {
        await receive(timeout: timeout) { _ in false }
        return isClosedByPeer
    }

    /// Reads until one whole response (after any `100 Continue`) arrived, the server closes, or `timeout` passes.
    func receiveResponse(timeout: Duration, skippingInterim: Bool = true) async -> RawResponse? {
        await receive(timeout: timeout) { RawResponse.parse($0, skippingInterim: skippingInterim) != nil }
        return RawResponse.parse(bytes, skippingInterim: skippingInterim)
    }

    /// Runs blocking work on its own thread and returns its result without blocking the cooperative pool.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: work()) }.start()
        }
    }

    /// `offPool` for throwing work.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async -> Result<T, any Error> {
        await offPool { () -> Result<T, any Error> in Result { try work() } }
    }
}

/// One HTTP/1.1 response as bytes on the wire: status, header fields (names lowercased) and body.
struct RawResponse {
    var status: Int
    var headers: [String: String]
    var body: Data
    /// Bytes the response took on the wire.
    var length: Int

    /// The body as contract JSON.
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }

    /// The first complete response in `bytes` (skipping 1xx ones when asked), or `nil` while incomplete. A response
    /// without Content-Length ends where the bytes end. `bodyless`: the response answers HEAD.
    static func parse(_ bytes: [UInt8], skippingInterim: Bool = true, bodyless: Bool = false) -> RawResponse? {
        var offset = 0
        while true {
            guard let response = parseOne(Array(bytes[offset...]), bodyless: bodyless) else { return nil }
            if skippingInterim, (100..<200).contains(response.status) {
                offset += response.length
                continue
            }
            return response
        }
    }

    /// Every complete response in `bytes`, in order; `bodyless[i]` says whether the i-th answers HEAD.
    static func parseAll(_ bytes: [UInt8], bodyless: [Bool]) -> [RawResponse] {
        var out: [RawResponse] = []
        var offset = 0
        while offset < bytes.count, let r = parseOne(Array(bytes[offset...]), bodyless: bodyless.count > out.count ? bodyless[out.count] : false) {
            out.append(r)
            offset += r.length
        }
        return out
    }

    private static func parseOne(_ bytes: [UInt8], bodyless: Bool) -> RawResponse? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let bodyStart = end + 4
        if (100..<200).contains(status) || bodyless || status == 204 || status == 304 {
            return RawResponse(status: status, headers: headers, body: Data(), length: bodyStart)
        }
        if let length = headers["content-length"].flatMap(Int.init) {
            guard bytes.count >= bodyStart + length else { return nil }
            return RawResponse(status: status, headers: headers, body: Data(bytes[bodyStart..<bodyStart + length]), length: bodyStart + length)
        }
        return RawResponse(status: status, headers: headers, body: Data(bytes[bodyStart...]), length: bytes.count)
    }
}

/// Checks that `response` is an error in the contract's shape.
func expectContractError(
    _ response: RawResponse?, status: Int, reason: String? = nil, closes: Bool = true, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let response else {
        Issue.record("\(what): no complete response", sourceLocation: sourceLocation)
        return
    }
    #expect(
        response.status == status, "\(what): status \(response.status), body \(String(decoding: response.body, as: UTF8.self))",
        sourceLocation: sourceLocation)
    #expect(response.headers["content-type"] == "application/json", "\(what): \(response.headers)", sourceLocation: sourceLocation)
    let json = response.json
    #expect(json["code"] as? Int == status, "\(what): \(String(decoding: response.body, as: UTF8.self))", sourceLocation: sourceLocation)
    if let reason {
        #expect(json["reason"] as? String == reason, "\(what): \(String(decoding: response.body, as: UTF8.self))", sourceLocation: sourceLocation)
    }
    #expect(!(json["message"] as? String ?? "").isEmpty, "\(what)", sourceLocation: sourceLocation)
    #expect(json["metadata"] is [String: String], "\(what)", sourceLocation: sourceLocation)
    #expect(response.headers["x-content-type-options"] == "nosniff", "\(what): \(response.headers)", sourceLocation: sourceLocation)
    if closes { #expect(response.headers["connection"]?.lowercased() == "close", "\(what): \(response.headers)", sourceLocation: sourceLocation) }
}
