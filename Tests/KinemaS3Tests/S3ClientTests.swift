import AsyncHTTPClient
import Foundation
import KinemaS3
import KinemaStore
import KinemaTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// The S3 client against moto with signatures checked: presigned URLs work for anyone and only as signed, a wrong
/// secret is refused (not retried), and an unreachable server is reported as unavailable after the retries.
@Suite(.serialized) struct S3ClientTests {
    static func fetch(_ url: String, method: HTTPMethod = .GET, body: Data? = nil) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body { request.body = .bytes(body) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return (Int(response.status.code), Data(collected.readableBytesView))
    }

    @Test func presignedURLsWorkForAPlainClientAndOnlyAsSigned() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let client = try S3Client(BlobConformanceTests.configuration(moto, prefix: "p"))
        let data = BlobConformanceTests.bytes(50_000, seed: 9)
        try await client.put(data, key: "results/aa/x.mp4", contentType: "video/mp4")

        let url = client.presignedURL(key: "results/aa/x.mp4", expires: 600)
        #expect(url.hasPrefix("\(moto.endpoint)/\(moto.bucket)/p/results/aa/x.mp4?"))
        let fetched = try await Self.fetch(url)
        #expect(fetched.status == 200 && fetched.body == data)

        // Tampered: another key under the same signature, or a longer life.
        let otherKey = url.replacingOccurrences(of: "/x.mp4?", with: "/y.mp4?")
        #expect(try await Self.fetch(otherKey).status == 403)
        let longer = url.replacingOccurrences(of: "X-Amz-Expires=600", with: "X-Amz-Expires=6000")
        #expect(try await Self.fetch(longer).status == 403)

        // A presigned PUT lets its holder store that one key.
        let put = client.presignedURL(.PUT, key: "results/aa/direct.mp4", expires: 600)
        #expect(try await Self.fetch(put, method: .PUT, body: Data("direct".utf8)).status == 200)
        #expect(try await client.get("results/aa/direct.mp4") == Data("direct".utf8))
    }

    @Test func aWrongSecretIsRefusedAtOnceAndADeadServerIsUnavailable() async throws {
        let moto = try await MotoServer.start()
        var configuration = BlobConformanceTests.configuration(moto)
        configuration.credentials.secretAccessKey = "not-the-secret"
        let wrong = S3BlobStore(client: try S3Client(configuration))
        do {
            try await wrong.put(Data("x".utf8), key: "inputs/aa/x.png")
            Issue.record("a wrong signature was accepted")
        } catch let error as BlobError {
            #expect(error.code == .io && error.message.contains("SignatureDoesNotMatch"), "\(error)")
        }
        // A refusal is not retried (a throttle or a 5xx would be).
        do {
            try await wrong.client.put(Data("x".utf8), key: "inputs/aa/x.png")
            Issue.record("a wrong signature was accepted")
        } catch let error as S3Error {
            #expect(error.code == "SignatureDoesNotMatch" && error.status == 403 && error.attempts == 1, "\(error)")
        }

        let store = S3BlobStore(client: try S3Client(BlobConformanceTests.configuration(moto)))
        moto.stop()
        do {
            try await store.put(Data("x".utf8), key: "inputs/aa/x.png")
            Issue.record("stored into a stopped server")
        } catch let error as BlobError {
            #expect(error.code == .unavailable, "\(error)")
        }
        do {
            _ = try await store.size(of: "inputs/aa/x.png")
            Issue.record("looked up in a stopped server")
        } catch let error as BlobError {
            #expect(error.code == .unavailable, "\(error)")
        }
        // Unreachable is retried, up to the configured attempts.
        do {
            _ = try await store.client.size(of: "inputs/aa/x.png")
            Issue.record("looked up in a stopped server")
        } catch let error as S3Error {
            #expect(error.isUnavailable && error.attempts == store.client.configuration.maxAttempts, "\(error)")
        }
    }

    @Test func aFailedMultipartUploadLeavesNoParts() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let client = try S3Client(BlobConformanceTests.configuration(moto))
        var upload = try await client.startMultipart(key: "results/bb/partial.mp4")
        try await upload.add(BlobConformanceTests.bytes(5 * 1024 * 1024, seed: 4), number: 1)
        await upload.abort()
        // Completing an aborted upload fails; nothing is stored under the key.
        await #expect(throws: S3Error.self) { try await upload.complete() }
        #expect(try await client.size(of: "results/bb/partial.mp4") == nil)
    }
}
