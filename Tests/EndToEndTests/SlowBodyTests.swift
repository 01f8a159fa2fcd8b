import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A client that sends a complete request head and then trickles its body is cut off by the body deadline
/// (408 in the contract's shape, then the connection closes), like a stalled head is by the idle timeout.
@Suite(.serialized) struct SlowBodies {
    @Test func aTrickledRequestBodyIsCutOff() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--body-timeout", "3"], workers: 0)
        let key = try #require(server.devKey)
        let port = try #require(UInt16(server.baseURL.split(separator: ":").last ?? ""))
        let fd = try RawSocket.connect(port: port)
        defer { close(fd) }
        let head = Array(
            "POST /v3/async/kling-v3.0-std-i2v HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
                .utf8)
        _ = head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // One byte every 500 ms: never idle for long, never done. Bounded: 60 s (the deadline is 3 s).
        let deadline = ContinuousClock.now + .seconds(60)
        var cutOff = false
        var received = ""
        while ContinuousClock.now < deadline, !cutOff {
            var byte = UInt8(ascii: " ")
            if send(fd, &byte, 1, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) != 1, errno != EAGAIN { cutOff = true; break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) > 0 { // a 408 answer, then EOF
                var answer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &answer, answer.count, Int32(MSG_DONTWAIT))
                if n > 0 { received += String(decoding: answer[0..<n], as: UTF8.self) }
                if n == 0 || received.contains("REQUEST_TIMEOUT") { cutOff = true }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(cutOff, "a request body trickled at 2 bytes/s was still being read after 60 s")
        #expect(received.hasPrefix("HTTP/1.1 408"), "\(received)")
        #expect(received.contains("\"reason\":\"REQUEST_TIMEOUT\""), "\(received)")
        // The server still serves others.
        #expect(try await HTTP.get(server.baseURL + "/healthz").status == 200)
        await server.terminate()
    }
}
