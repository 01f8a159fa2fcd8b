import Foundation
import KinemaFetch
import KinemaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// https image URLs: the certificate is verified against the URL's host. A self-signed server on loopback (allowed
/// on purpose) serves the image to a client that skips verification, and is refused by the fetcher.
@Suite struct SafeFetcherOverTLS {
    @Test func aCertificateNoTrustedAuthoritySignedIsRefused() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cert = dir.appendingPathComponent("cert.pem").path, keyFile = dir.appendingPathComponent("key.pem").path
        try Data(repeating: 0x89, count: 64).write(to: dir.appendingPathComponent("image.png"))
        #expect(
            try await run(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", keyFile, "-out", cert,
                ]) == 0)
        let server = """
            import http.server, ssl, sys, functools
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[3])
            httpd = http.server.HTTPServer(("127.0.0.1", 0), handler)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(sys.argv[1], sys.argv[2])
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
            print(httpd.server_address[1], flush=True)
            httpd.serve_forever()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", server, cert, keyFile, dir.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // A time limit for the whole test's server: should it never print its port, the read below ends when it dies.
        let serverLimit = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 180, execute: serverLimit)
        defer { serverLimit.cancel() }
        let portLine = String(decoding: out.fileHandleForReading.availableDataOrEnd(), as: UTF8.self)
        let port = try #require(Int(portLine.trimmingCharacters(in: .whitespacesAndNewlines)), "no port: \(portLine)")
        let url = "https://127.0.0.1:\(port)/image.png"

        // The server works: a client that skips verification gets the bytes.
        #expect(try await run("/usr/bin/curl", ["-skf", "-o", "/dev/null", url]) == 0)
        // The fetcher verifies the certificate: refused, with a reason that says the connection failed.
        let fetcher = SafeFetcher(configuration: .init(allow: [IPNetwork("127.0.0.1/32")!], timeout: .seconds(120)))
        do {
            let data = try await fetcher.fetch(url)
            Issue.record("a self-signed certificate was accepted (\(data.count) bytes)")
        } catch {
            #expect([.connectionFailed].contains(error.code), "\(error)")
        }
    }

    func run(_ tool: String, _ args: [String]) async throws -> Int32 {
        try await ChildProcess.run(tool, args, timeout: .seconds(60)).status
    }
}

extension FileHandle {
    /// The first chunk the other side wrote (or nothing at its end), reading past interruptions by signals.
    func availableDataOrEnd() -> Data {
        var chunk = [UInt8](repeating: 0, count: 256)
        while true {
            let n = Glibc.read(fileDescriptor, &chunk, chunk.count)
            if n >= 0 { return Data(chunk[0..<n]) }
            if errno != EINTR { return Data() }
        }
    }
}
