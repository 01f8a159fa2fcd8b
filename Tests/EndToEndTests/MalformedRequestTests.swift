import Foundation
import KinemaCore
import Testing
import NIOHTTP1

/// Requests no well-behaved client sends, over raw sockets against the real server: each is answered with a 4xx in
/// the contract's error shape (never a 500, never an empty body), nothing is logged at error level, and the server
/// keeps serving (issue 15, items 2 and 4).
@Suite(.serialized) struct MalformedRequests {
    /// Sends `request` on a fresh connection and returns the answer (one whole response, or what came before the
    /// server closed; bounded).
    static func exchange(_ port: UInt16, _ request: [UInt8]) async throws -> (RawResponse?, String) {
        let c = try await RawConnection.open(port: port)
        await c.send(request)
        // Generous: the first request of a freshly started server once took over 10 s under the whole suite.
        let response = await c.receiveResponse(timeout: .seconds(30))
        return (response, response == nil ? "[\(c.state)] \(c.text)" : c.text)
    }

    static func exchange(_ port: UInt16, _ request: String) async throws -> (RawResponse?, String) {
        try await exchange(port, Array(request.utf8))
    }

    @Test func framingAndHeadErrorsAnswerInTheContractsShape() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // Debug: the connection guard's refusals and closes are in the log a failure message quotes.
        try await server.start(["--max-body-bytes", "2048"], workers: 0, logLevel: "debug", captureLog: true)
        let key = try #require(server.devKey)
        let port = try #require(UInt16(server.baseURL.split(separator: ":").last ?? ""))
        /// One exchange; when no whole answer came, the text says the connection's state and ends with the server's
        /// latest log lines (a close without an answer was seen once in CI: they tell who closed and why).
        func exchange(_ request: String) async throws -> (RawResponse?, String) {
            let (r, text) = try await Self.exchange(port, request)
            return (r, r == nil ? text + "\nserver log (end):\n" + server.log.suffix(4000) : text)
        }
        let submit =
            "POST /v3/async/kling-v3.0-std-i2v HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\n"

        // A chunked body over the cap: 413 like one announced by Content-Length (it was 500 CREATE_TASK_FAILED).
        let chunk = String(repeating: " ", count: 1000)
        let overCap = submit + "Transfer-Encoding: chunked\r\n\r\n" + String(repeating: "3e8\r\n\(chunk)\r\n", count: 4) + "0\r\n\r\n"
        var (r, text) = try await exchange(overCap)
        expectContractError(r, status: 413, reason: "REQUEST_BODY_TOO_LARGE", "chunked body over the cap: \(text)")
        // The same with Content-Length, for comparison (the announced body is read and discarded: no close).
        (r, text) = try await exchange(submit + "Content-Length: 4000\r\n\r\n" + String(repeating: " ", count: 4000))
        expectContractError(r, status: 413, reason: "REQUEST_BODY_TOO_LARGE", closes: false, "Content-Length over the cap: \(text)")

        let cases: [(String, String, Int)] = [
            ("chunk size fffffffffffffffff", submit + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n", 400),
            ("Transfer-Encoding: xchunked", submit + "Transfer-Encoding: xchunked\r\n\r\n{}", 400),
            ("unknown method", "FROB /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
            ("bare LF line endings", "GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n", 400),
            ("83 KB header", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: \(String(repeating: "a", count: 83 * 1024))\r\n\r\n", 431),
            ("1001 headers", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (0..<1001).map { "X-H\($0): v\r\n" }.joined() + "\r\n", 431),
            ("Content-Length and Transfer-Encoding", submit + "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400),
            ("two Content-Lengths", submit + "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
            ("Content-Length -1", submit + "Content-Length: -1\r\n\r\n{}", 400),
            ("HTTP/0.9", "GET /healthz\r\n\r\n", 400),
        ]
        for (what, request, status) in cases {
            (r, text) = try await exchange(request)
            expectContractError(r, status: status, "\(what): \(r == nil ? text : String(text.prefix(400)))")
        }

        // A client that goes away mid-body: nothing to answer, but no error either (checked in the log below).
        let gone = try await RawConnection.open(port: port)
        await gone.send(submit + "Content-Length: 1000\r\n\r\n{\"image\":")
        try await Task.sleep(for: .milliseconds(200)) // let the server start reading the body before the client goes
        gone.shutdownBoth()
        let goneChunked = try await RawConnection.open(port: port)
        await goneChunked.send(submit + "Transfer-Encoding: chunked\r\n\r\n10\r\n{\"image\":")
        try await Task.sleep(for: .milliseconds(200))
        goneChunked.shutdownBoth()

        // HEAD /healthz and /readyz answer like GET without a body (monitors use HEAD); a GET pipelined behind
        // each proves no body bytes followed.
        for path in ["/healthz", "/readyz"] {
            let c = try await RawConnection.open(port: port)
            await c.send("HEAD \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            await c.receiveUntilClosed(timeout: .seconds(10))
            let answers = RawResponse.parseAll(c.bytes, bodyless: [true, false])
            #expect(answers.count == 2, "HEAD \(path): \(c.text)")
            #expect(answers.first?.status == 200, "HEAD \(path): \(c.text)")
            #expect(answers.last?.status == 200, "GET after HEAD \(path): \(c.text)")
            #expect(answers.first?.headers["content-length"] == answers.last.map { String($0.body.count) }, "HEAD \(path): \(c.text)")
        }

        // The server still serves, and logged none of this at error level.
        #expect(try await HTTP.get(server.baseURL + "/healthz").status == 200)
        await server.terminate()
        let errors = server.log.split(separator: "\n").filter { line in
            // "2026-… LEVEL label: message": the level is the second word (debug messages may say "error").
            let words = line.split(separator: " ", maxSplits: 2)
            return words.count > 1 && (words[1] == "error" || words[1] == "critical")
        }
        #expect(errors.isEmpty, "error-level log lines: \(errors.joined(separator: "\n"))")
    }

    /// `Expect: 100-continue` (curl sends it for every body over 1 MB): `100 Continue` at once when the head passes
    /// (key, route, announced length), the final error at once and without a 100 otherwise (issue 15, item 3).
    @Test func expectContinueIsAnsweredAtOnce() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--max-body-bytes", "4096"], workers: 0)
        let key = try #require(server.devKey)
        let port = try #require(UInt16(server.baseURL.split(separator: ":").last ?? ""))
        func head(key: String, length: Int) -> String {
            "POST /v3/async/kling-v3.0-std-i2v HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\nExpect: 100-continue\r\n\r\n"
        }
        let continueLine = Array("HTTP/1.1 100 Continue\r\n".utf8)

        // Passes the head's checks: 100 well within curl's 1 s wait, then the body, then the final answer.
        let ok = try await RawConnection.open(port: port)
        let started = ContinuousClock.now
        await ok.send(head(key: key, length: 2))
        let gotContinue = await ok.receive(timeout: .seconds(5)) { $0.starts(with: continueLine) && $0.count >= continueLine.count + 2 }
        let waited = ContinuousClock.now - started
        #expect(gotContinue, "no 100 Continue: \(ok.text)")
        // Before the fix no 100 came at all (curl waits 1 s, then sends anyway); the bound leaves room for a starved
        // test machine (2.2 s seen once under the whole suite) while still catching a 100 that only comes after a
        // long timer.
        #expect(waited < .seconds(4), "100 Continue took \(waited)")
        await ok.send("[]")
        expectContractError(
            await ok.receiveResponse(timeout: .seconds(5)), status: 400, reason: "INVALID_REQUEST_BODY", closes: false, "body after 100 Continue")

        // Too large by Content-Length: 413 at once, no 100, and the body is never sent.
        let large = try await RawConnection.open(port: port)
        await large.send(head(key: key, length: 1_000_000))
        let tooLarge = await large.receiveResponse(timeout: .seconds(5), skippingInterim: false)
        expectContractError(tooLarge, status: 413, reason: "REQUEST_BODY_TOO_LARGE", "Content-Length over the cap with Expect")
        #expect(!large.text.contains("100 Continue"), "\(large.text)")
        #expect(await large.receiveUntilClosed(timeout: .seconds(15)))

        // A bad key: 403 at once, no 100.
        let badKey = try await RawConnection.open(port: port)
        await badKey.send(head(key: "kin_" + String(repeating: "A", count: 43), length: 2))
        let refused = await badKey.receiveResponse(timeout: .seconds(5), skippingInterim: false)
        expectContractError(refused, status: 403, reason: "INVALID_API_KEY", "bad key with Expect")
        #expect(!badKey.text.contains("100 Continue"), "\(badKey.text)")

        // An expectation the server cannot meet: 417 at once, no 100, nothing stored, the connection closes.
        let unknown = try await RawConnection.open(port: port)
        await unknown.send(head(key: key, length: 2).replacingOccurrences(of: "Expect: 100-continue", with: "Expect: 200-ok"))
        let unmet = await unknown.receiveResponse(timeout: .seconds(5), skippingInterim: false)
        expectContractError(unmet, status: 417, reason: "EXPECTATION_FAILED", "unknown Expect")
        #expect(!unknown.text.contains("100 Continue"), "\(unknown.text)")
        #expect(await unknown.receiveUntilClosed(timeout: .seconds(15)))
        await server.terminate()
    }

    /// `X-Content-Type-Options: nosniff` on every response, `Cache-Control: no-store` on task results, and a 206
    /// from `/files` only while `If-Range` names the file's strong ETag (issue 15, item 5).
    @Test func responseHeadersAndIfRange() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)

        for r in [
            try await HTTP.get(server.baseURL + "/healthz"), try await HTTP.get(server.baseURL + "/nope"),
            try await HTTP.get(server.baseURL + "/openapi.yaml"),
        ] {
            #expect(r.headers["X-Content-Type-Options"].first == "nosniff", "\(r.status) \(r.headers)")
        }
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        let submitted = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "a", "duration": 3])
        let id = try #require(submitted.json["task_id"] as? String, "\(submitted.text)")
        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect(result.status == 200)
        #expect(result.headers["Cache-Control"].first == "no-store", "\(result.headers)")
        #expect(result.headers["X-Content-Type-Options"].first == "nosniff", "\(result.headers)")

        // A result file as the workers leave it, with a link signed by the node's secret.
        let blobKey = "results/\(id)/video.mp4"
        let file = server.dataDir.appendingPathComponent("blobs").appendingPathComponent(blobKey)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let content = Data((0..<1000).map { UInt8($0 % 251) })
        try content.write(to: file)
        let secret = [UInt8](try Data(contentsOf: server.dataDir.appendingPathComponent("url-signing.key")))
        let url = server.baseURL + "/files/\(blobKey)?" + URLSigner(secret: secret).query(key: blobKey, ttl: 600, now: Date())

        let whole = try await HTTP.get(url)
        #expect(whole.status == 200 && whole.body == content, "\(whole.status)")
        let etag = try #require(whole.headers["ETag"].first, "no ETag: \(whole.headers)")
        #expect(etag.hasPrefix("\"") && etag.hasSuffix("\""), "not a strong ETag: \(etag)")

        let partial = try await HTTP.get(url, headers: [("Range", "bytes=0-9"), ("If-Range", etag)])
        #expect(partial.status == 206 && partial.body == content.prefix(10), "\(partial.status)")
        #expect(partial.headers["ETag"].first == etag)
        for validator in ["\"another\"", "W/\(etag)", "Sat, 01 Jan 2000 00:00:00 GMT"] {
            let stale = try await HTTP.get(url, headers: [("Range", "bytes=0-9"), ("If-Range", validator)])
            #expect(stale.status == 200 && stale.body == content, "If-Range \(validator): \(stale.status)")
        }
        let unsatisfiable = try await HTTP.get(url, headers: [("Range", "bytes=5000-")])
        #expect(unsatisfiable.status == 416)
        #expect(unsatisfiable.headers["Content-Type"].first == "application/json", "\(unsatisfiable.headers)")
        #expect(unsatisfiable.headers["Content-Range"].first == "bytes */1000", "\(unsatisfiable.headers)")
        #expect(unsatisfiable.json["reason"] as? String == "RANGE_NOT_SATISFIABLE", "\(unsatisfiable.text)")
        #expect(unsatisfiable.json["code"] as? Int == 416, "\(unsatisfiable.text)")
        await server.terminate()
    }
}

extension RawConnection {
    /// Ends the connection from the client's side at once (both directions), like a client that went away.
    func shutdownBoth() {
        _ = shutdown(fd, Int32(SHUT_RDWR))
    }
}
