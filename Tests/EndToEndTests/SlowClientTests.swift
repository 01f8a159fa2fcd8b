import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Slow and stalled clients (slowloris) against the real server: they cannot starve a normal client, and the
/// server closes them itself instead of holding their sockets forever.
@Suite(.serialized) struct SlowClients {
    /// 40 connections that trickle a request head one byte at a time and never finish it, and 20 that connect
    /// and send nothing. A normal client is served meanwhile, and the server closes every slow connection:
    /// trickled header bytes do not count as activity (no request head was ever read), so they are closed
    /// one header timeout (20 s here, `--header-timeout`) after they opened, however steadily they keep sending.
    @Test func slowlorisConnectionsDoNotStarveOthersAndAreClosedByTheServer() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--idle-timeout", "45", "--header-timeout", "20"], workers: 0)
        let key = try #require(server.devKey)
        let port = try #require(Int(server.baseURL.split(separator: ":").last ?? ""))

        let slow = try SlowConnections(port: port, tricklers: 40, silent: 20)
        defer { slow.stop() }
        slow.start(interval: .milliseconds(250))

        // A normal client, while the slow connections are open: each request completes (HTTP's own 60 s bound).
        var openWhileServed = 0
        for i in 0..<10 {
            #expect(try await HTTP.get(server.baseURL + "/healthz").status == 200)
            let r = try await HTTP.result(server.baseURL, key: key, id: UUID().uuidString.lowercased())
            #expect(r.status == 404 && r.json["reason"] as? String == "TASK_NOT_FOUND", "request \(i): \(r.text)")
            if i == 0 { openWhileServed = slow.openCount }
        }
        #expect(openWhileServed > 0, "the slow connections were closed before the normal client was served; the test proved nothing")

        // Bounded wait for the server to close every slow connection (header timeout 20 s, plus slack for a loaded machine).
        let deadline = ContinuousClock.now + .seconds(150)
        while slow.openCount > 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(slow.openCount == 0, "\(slow.openCount) slow connections are still open after 150 s")
        // The tricklers kept sending until the end: the server closed them although they were never idle.
        #expect(slow.minimumTrickled >= 20, "a trickler sent only \(slow.minimumTrickled) bytes")

        // And the server still serves.
        #expect(try await HTTP.get(server.baseURL + "/healthz").status == 200)
        await server.terminate()
    }
}

/// Raw loopback sockets driven from one dedicated thread (never the cooperative pool): some trickle an
/// endless request head, some stay silent; each is marked closed once the server closes it.
final class SlowConnections: @unchecked Sendable {
    // SAFETY: every mutable field below is read and written only under `lock`.
    private let lock = NSLock()
    private var sockets: [Int32] = []
    private var open: [Bool] = []
    private var trickled: [Int] = []
    private var stopping = false
    private let tricklers: Int

    /// A request head that never ends: a header value growing forever.
    private static let head = Array("POST /v3/async/kling-v3.0-std-i2v HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8)

    init(port: Int, tricklers: Int, silent: Int) throws {
        self.tricklers = tricklers
        for _ in 0..<(tricklers + silent) {
            let fd = try RawSocket.connect(port: UInt16(port))
            sockets.append(fd)
            open.append(true)
            trickled.append(0)
        }
    }

    var openCount: Int { lock.withLock { open.filter { $0 }.count } }

    /// Fewest bytes any trickler sent before the server closed it.
    var minimumTrickled: Int { lock.withLock { trickled.prefix(tricklers).min() ?? 0 } }

    /// Starts the thread: every `interval` each trickler sends one more byte, and every socket is checked for EOF.
    func start(interval: Duration) {
        let micros = useconds_t(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)
        let thread = Thread { [self] in
            while true {
                let (fds, isOpen, stop) = lock.withLock { (sockets, open, stopping) }
                if stop || !isOpen.contains(true) {
                    for fd in fds { close(fd) }
                    return
                }
                for (i, fd) in fds.enumerated() where isOpen[i] {
                    if i < tricklers {
                        let sent = lock.withLock { trickled[i] }
                        var byte = sent < Self.head.count ? Self.head[sent] : UInt8(ascii: "a")
                        if send(fd, &byte, 1, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) == 1 {
                            lock.withLock { trickled[i] += 1 }
                        } else if errno != EAGAIN {
                            markClosed(i)
                            continue
                        }
                    }
                    // Readable means the server answered or closed: EOF or a reset ends the connection.
                    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    if poll(&p, 1, 0) > 0 {
                        var buffer = [UInt8](repeating: 0, count: 4096)
                        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
                        if n == 0 || (n < 0 && errno != EAGAIN) { markClosed(i) }
                    }
                }
                usleep(micros)
            }
        }
        thread.start()
    }

    private func markClosed(_ i: Int) {
        lock.withLock { open[i] = false }
    }

    /// Tells the thread to close every socket and end.
    func stop() {
        lock.withLock { stopping = true }
    }
}
