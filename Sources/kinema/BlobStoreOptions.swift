import ArgumentParser
import Foundation
import KinemaS3
import KinemaStore

/// `--blob-store s3://BUCKET/PREFIX` and the S3 options: where inputs and results live when no filesystem is shared.
struct BlobStoreOptions: ParsableArguments {
    @Option(
        name: .customLong("blob-store"),
        help:
            "Keep inputs and results in S3-compatible object storage: s3://BUCKET[/PREFIX] (env KINEMA_BLOB_STORE). Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. Default: the data directory (or --blob-dir with --database)."
    )
    var blobStore: String?

    @Option(
        name: .customLong("s3-endpoint"),
        help: "S3 endpoint, http(s)://HOST[:PORT] (env KINEMA_S3_ENDPOINT; default AWS's regional endpoint).")
    var endpoint: String?

    @Option(name: .customLong("s3-region"), help: "S3 region (env AWS_REGION, default us-east-1).")
    var region: String?

    @Flag(
        name: .customLong("s3-path-style"),
        help: "Address the bucket in the path (ENDPOINT/BUCKET/KEY), as MinIO and Ceph want (env KINEMA_S3_PATH_STYLE=1).")
    var pathStyle = false

    /// The S3 store the options name, or `nil` for the local store.
    func s3Store() throws -> S3BlobStore? {
        guard let text = blobStore ?? Env.string("KINEMA_BLOB_STORE") else { return nil }
        guard let (bucket, prefix) = S3Configuration.location(text) else {
            throw CLIError(
                "--blob-store must be s3://BUCKET or s3://BUCKET/PREFIX (bucket: 3-63 of a-z 0-9 . -; prefix segments of A-Z a-z 0-9 . _ -), not \(text)."
            )
        }
        guard let credentials = S3Credentials.fromEnvironment() else {
            throw CLIError("--blob-store s3://… needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment.")
        }
        let configuration = S3Configuration(
            bucket: bucket, prefix: prefix, endpoint: endpoint ?? Env.string("KINEMA_S3_ENDPOINT"),
            region: region ?? Env.string("AWS_REGION") ?? Env.string("AWS_DEFAULT_REGION") ?? "us-east-1",
            pathStyle: pathStyle || Env.int("KINEMA_S3_PATH_STYLE") == 1, credentials: credentials)
        do {
            return S3BlobStore(client: try S3Client(configuration))
        } catch let error as S3Error {
            throw CLIError("--s3-endpoint: \(error.message).")
        }
    }

    /// The URL-signing secret nodes share when blobs are in a bucket: an object beside them (made by the first node,
    /// with a conditional write so two first nodes cannot make two), read by every node at start.
    static func sharedSigningSecret(_ store: S3BlobStore) async throws -> [UInt8] {
        let key = ".kinema/signing-secret"
        for _ in 0..<3 {
            if let data = try? await store.get(key) {
                guard data.count == 32 else { throw CLIError("the bucket's \(key) is not a 32-byte secret; remove it to make a new one.") }
                return [UInt8](data)
            }
            var secret = [UInt8](repeating: 0, count: 32)
            var rng = SystemRandomNumberGenerator()
            for i in secret.indices { secret[i] = UInt8.random(in: 0...255, using: &rng) }
            if try await store.client.putIfAbsent(Data(secret), key: key) { return secret }
        }
        throw CLIError("could not read or create the signing secret \(key) in the bucket.")
    }
}
