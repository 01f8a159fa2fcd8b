import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Promises of docs/security.md and the README that had no test of their own.
@Suite struct Promises {
    /// One raw HTTP/1.1 exchange (`Connection: close`), read to the end: no client library normalises the path.
    static func raw(port: Int, _ head: String) throws -> String {
        let fd = try RawSocket.connect(port: UInt16(port))
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(head.utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n > 0 { out.append(contentsOf: chunk[0..<n]) } else if n < 0, errno == EINTR { continue } else { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The server's own link signature for `key` (HMAC-SHA256 with its `url-signing.key`), made with openssl.
    static func sign(_ server: ServerProcess, key: String, expires: Int) async throws -> String {
        let secret = try Data(contentsOf: server.dataDir.appendingPathComponent("url-signing.key")).map { String(format: "%02x", $0) }.joined()
        let message = FileManager.default.temporaryDirectory.appendingPathComponent("sign-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: message) }
        try Data("\(key)\n\(expires)".utf8).write(to: message)
        let r = try await Tools.run("openssl", ["dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:\(secret)", "-r", message.path])
        guard r.status == 0, let hex = r.output.split(separator: " ").first else { throw TestFailure("openssl: \(r.output)") }
        return String(hex)
    }

    @Test func aValidlySignedLinkCannotLeaveTheBlobFolder() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let port = try #require(Int(server.baseURL.split(separator: ":").last ?? ""))
        let expires = Int(Date().timeIntervalSince1970) + 600
        // The same key signed as the server may see it (decoded or not), sent in several spellings.
        for (path, key) in [
            ("%2e%2e/kinema.sqlite", "../kinema.sqlite"), ("%2e%2e/kinema.sqlite", "%2e%2e/kinema.sqlite"),
            ("..%2fkinema.sqlite", "../kinema.sqlite"), ("results/..%2f..%2furl-signing.key", "results/../../url-signing.key"),
            ("%2fetc%2fpasswd", "/etc/passwd"), ("inputs/../../kinema.sqlite", "inputs/../../kinema.sqlite"),
        ] {
            let sig = try await Self.sign(server, key: key, expires: expires)
            let response = try Self.raw(
                port: port, "GET /files/\(path)?expires=\(expires)&sig=\(sig) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
            #expect([400, 403, 404].contains(status), "\(path): \(response.prefix(200))")
            #expect(!response.contains("SQLite format"), "\(path)")
            #expect(!response.contains("root:"), "\(path)")
        }
        await server.terminate()
    }

    @Test func environmentVariablesApplyAndTheCommandLineWins() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // The environment sets the public URL and the link lifetime; the command line overrides the lifetime.
        try await server.start(
            ["--video-url-ttl", "90"], workers: 1,
            environment: ["KINEMA_PUBLIC_URL": "https://videos.example.test/", "KINEMA_VIDEO_URL_TTL": "120", "KINEMA_MAX_BODY_BYTES": "900000"])
        let key = try #require(server.devKey)
        // KINEMA_MAX_BODY_BYTES took effect: a 1 MB body is refused before parsing.
        let big = try await HTTP.submit(server.baseURL, key: key, json: ["image": String(repeating: "A", count: 1_000_000), "prompt": "x"])
        #expect(big.status == 413, "\(big.text.prefix(200))")
        let image = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        // seed -1 (draw one) and an end image, through the API and a worker.
        let r = try await HTTP.submit(
            server.baseURL, key: key, json: ["image": image, "end_image": image, "prompt": "pan left", "duration": 3, "seed": -1])
        let id = try #require(r.json["task_id"] as? String)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        let seed = try #require((done["extra"] as? [String: Any])?["seed"] as? String)
        #expect(UInt32(seed) != nil, "extra.seed \(seed) is not the drawn seed")
        let video = try #require((done["videos"] as? [[String: Any]])?.first)
        #expect(video["video_url_ttl"] as? String == "90")
        let url = try #require(video["video_url"] as? String)
        #expect(url.hasPrefix("https://videos.example.test/files/"), "\(url)")
        // The link is this server's: served here under its own path.
        let local = server.baseURL + url.dropFirst("https://videos.example.test".count)
        #expect(try await HTTP.get(local).status == 200)
        await server.terminate()
    }

    @Test func aWorkerAskingForAnInputTheTaskDoesNotHaveGetsInputNotFound() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let token = try await RemoteWorkerTests.createToken(server)
        let id = try await RemoteWorkerTests.submit(server, key: key)
        let lease = try await RemoteWorkerTests.claim(server, token: token, worker: "w", leaseSeconds: 60)
        for name in ["end_image", "mask", "..%2fimage"] {
            let r = try await HTTP.get(server.baseURL + "/internal/v1/worker/tasks/\(id)/inputs/\(name)?lease_id=\(lease.leaseID)", key: token)
            #expect(r.status == 404, "\(name): \(r.text)")
            #expect(r.json["reason"] as? String == "INPUT_NOT_FOUND" || r.json["reason"] as? String == "API_NOT_FOUND", "\(name): \(r.text)")
        }
        let r = try await HTTP.get(server.baseURL + "/internal/v1/worker/tasks/\(id)/inputs/end_image?lease_id=\(lease.leaseID)", key: token)
        #expect(r.json["reason"] as? String == "INPUT_NOT_FOUND", "\(r.text)")
        await server.terminate()
    }
}
