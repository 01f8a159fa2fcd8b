import Foundation
import KinemaS3
import KinemaStore
import KinemaTestSupport
import Testing

/// What every blob store must do, run against the local directory store and against S3 (moto on loopback, with
/// signature checking): the same keys, the same answers.
@Suite(.serialized) struct BlobConformanceTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case local, s3
        var testDescription: String { rawValue }
    }

    /// Runs `body` with a fresh store of `backend`; S3 parts are small here (5 MiB, S3's least) so a 12 MiB file
    /// takes the multipart path.
    static func withStore(_ backend: Backend, _ body: (any BlobStore) async throws -> Void) async throws {
        switch backend {
        case .local:
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-blobs-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: root) }
            try await body(try LocalBlobStore(root: root))
        case .s3:
            let moto = try await MotoServer.start()
            defer { moto.stop() }
            try await body(S3BlobStore(client: try S3Client(Self.configuration(moto, prefix: "conformance"))))
        }
    }

    static func configuration(_ moto: MotoServer, prefix: String = "") -> S3Configuration {
        var configuration = S3Configuration(
            bucket: moto.bucket, prefix: prefix, endpoint: moto.endpoint, region: moto.region, pathStyle: true,
            credentials: S3Credentials(accessKeyID: moto.accessKey, secretAccessKey: moto.secretKey))
        configuration.multipartThreshold = 6 * 1024 * 1024
        configuration.partSize = 5 * 1024 * 1024
        configuration.backoff = .milliseconds(20)
        configuration.maxAttempts = 3
        return configuration
    }

    static func bytes(_ count: Int, seed: UInt64) -> Data {
        var generator = SplitMix64(seed: seed)
        return Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    static func collect(_ stream: AsyncThrowingStream<Data, any Error>?) async throws -> Data? {
        guard let stream else { return nil }
        var out = Data()
        for try await chunk in stream { out.append(chunk) }
        return out
    }

    @Test(arguments: Backend.allCases)
    func putGetSizeDelete(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store in
            let data = Self.bytes(100_000, seed: 1)
            try await store.put(data, key: "inputs/ab/one.png")
            #expect(try await store.get("inputs/ab/one.png") == data)
            #expect(try await store.size(of: "inputs/ab/one.png") == 100_000)
            // Put again replaces.
            try await store.put(Data("short".utf8), key: "inputs/ab/one.png")
            #expect(try await store.get("inputs/ab/one.png") == Data("short".utf8))
            try await store.delete("inputs/ab/one.png")
            #expect(try await store.size(of: "inputs/ab/one.png") == nil)
            // Deleting what is not there is fine; reading it is notFound.
            try await store.delete("inputs/ab/one.png")
            await #expect(throws: BlobError.self) { try await store.get("inputs/ab/one.png") }
            do {
                _ = try await store.get("results/zz/none.mp4")
                Issue.record("a missing blob was read")
            } catch let error as BlobError {
                #expect(error.code == .notFound)
            }
            #expect(try await store.stream("results/zz/none.mp4", range: nil) == nil)
        }
    }

    @Test(arguments: Backend.allCases)
    func filesMoveInWholeAndRangesReadBack(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store in
            // Small (one PUT) and large (multipart on S3) files; the source is gone afterwards.
            for (size, seed) in [(300_000, UInt64(2)), (12 * 1024 * 1024 + 123, UInt64(3))] {
                let data = Self.bytes(size, seed: seed)
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-blob-src-\(UUID().uuidString)")
                try data.write(to: file)
                let key = "results/cd/\(size).lease.mp4"
                try await store.putFile(at: file, key: key)
                #expect(!FileManager.default.fileExists(atPath: file.path))
                #expect(try await store.size(of: key) == Int64(size))
                #expect(try await Self.collect(try await store.stream(key, range: nil)) == data)
                #expect(try await Self.collect(try await store.stream(key, range: 10...4109)) == data[10...4109])
                let tail = Int64(size - 7)...Int64(size - 1)
                #expect(try await Self.collect(try await store.stream(key, range: tail)) == data[(size - 7)...])
                try await store.delete(key)
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func unsafeKeysAreRefused(_ backend: Backend) async throws {
        try await Self.withStore(backend) { store in
            for key in ["../escape", "a//b", "/abs", "a/./b", "spaces here", ""] {
                do {
                    try await store.put(Data("x".utf8), key: key)
                    Issue.record("\(key) was accepted")
                } catch let error as BlobError {
                    #expect(error.code == .invalidKey, "\(key): \(error)")
                }
            }
        }
    }
}
