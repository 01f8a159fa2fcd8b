import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaFetch
import KinemaMotion
import KinemaStore
import Logging

/// `kinema serve`: the API with in-process workers on an embedded SQLite data directory.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the API server with in-process workers (embedded SQLite mode).")

    @Option(help: "Address to bind (env KINEMA_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to bind, 0 for any free port (env KINEMA_PORT, default 8080).")
    var port: Int?

    @Option(name: .customLong("data-dir"), help: "Data directory: database, blobs, secrets (env KINEMA_DATA_DIR, default ./data).")
    var dataDir: String?

    @Option(help: "In-process workers, 0 for API only (env KINEMA_WORKERS, default one per core).")
    var workers: Int?

    @Option(name: .customLong("public-url"), help: "Base of absolute result URLs (env KINEMA_PUBLIC_URL, default http://HOST:PORT).")
    var publicURL: String?

    @Option(name: .customLong("allow-fetch-from"), help: "CIDR range image URLs may be fetched from although normally refused; repeatable (env KINEMA_ALLOW_FETCH_FROM, comma-separated).")
    var allowFetchFrom: [String] = []

    @Option(name: .customLong("video-url-ttl"), help: "Lifetime of signed video URLs in seconds (env KINEMA_VIDEO_URL_TTL, default 3600).")
    var videoURLTTL: Int?

    @Option(name: .customLong("shutdown-grace"), help: "Seconds running renders may finish after SIGTERM before their leases are released (env KINEMA_SHUTDOWN_GRACE, default 30).")
    var shutdownGrace: Int?

    @Option(name: .customLong("max-attempts"), help: "Attempts per task before it fails (env KINEMA_MAX_ATTEMPTS, default 3).")
    var maxAttempts: Int?

    @Option(name: .customLong("lease-seconds"), help: "Worker lease length in seconds (env KINEMA_LEASE_SECONDS, default 30).")
    var leaseSeconds: Int?

    @Option(name: .customLong("rescue-seconds"), help: "How often expired leases are swept back to the queue, in seconds (env KINEMA_RESCUE_SECONDS, default 5).")
    var rescueSeconds: Int?

    @Option(name: .customLong("max-result-bytes"), help: "Largest result a remote worker may upload, in bytes (env KINEMA_MAX_RESULT_BYTES, default 536870912).")
    var maxResultBytes: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (env KINEMA_LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        ProcessSignals.unblockTermination()
        let dataDirectory = try DataDirectory(Env.dataDirectory(dataDir))
        var config = ServerConfiguration(dataDirectory: dataDirectory.url)
        config.host = host ?? Env.string("KINEMA_HOST") ?? config.host
        config.port = port ?? Env.int("KINEMA_PORT") ?? config.port
        config.workers = workers ?? Env.int("KINEMA_WORKERS") ?? config.workers
        config.publicURL = (publicURL ?? Env.string("KINEMA_PUBLIC_URL")).map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        config.videoURLTTL = videoURLTTL ?? Env.int("KINEMA_VIDEO_URL_TTL") ?? config.videoURLTTL
        config.shutdownGrace = .seconds(shutdownGrace ?? Env.int("KINEMA_SHUTDOWN_GRACE") ?? 30)
        config.maxAttempts = maxAttempts ?? Env.int("KINEMA_MAX_ATTEMPTS") ?? config.maxAttempts
        config.leaseDuration = TimeInterval(leaseSeconds ?? Env.int("KINEMA_LEASE_SECONDS") ?? Int(config.leaseDuration))
        config.rescueInterval = .seconds(max(1, rescueSeconds ?? Env.int("KINEMA_RESCUE_SECONDS") ?? 5))
        config.workerProtocol.maxResultBytes = maxResultBytes ?? Env.int("KINEMA_MAX_RESULT_BYTES") ?? config.workerProtocol.maxResultBytes
        let ranges = allowFetchFrom.isEmpty ? Env.list("KINEMA_ALLOW_FETCH_FROM") : allowFetchFrom
        config.allowFetchFrom = try ranges.map { text in
            guard let net = IPNetwork(text) else { throw CLIError("--allow-fetch-from: '\(text)' is not an address range in CIDR form (e.g. 127.0.0.1/32).") }
            return net
        }
        guard config.workers >= 0, config.videoURLTTL > 0, config.maxAttempts >= 1, config.leaseDuration >= 2, (0...65535).contains(config.port),
              config.workerProtocol.maxResultBytes > 0 else {
            throw CLIError("--workers must be ≥ 0, --video-url-ttl > 0, --max-attempts ≥ 1, --lease-seconds ≥ 2, --max-result-bytes > 0 and --port 0…65535.")
        }

        var logger = Logger(label: "kinema")
        logger.logLevel = Logger.Level(rawValue: logLevel ?? Env.string("KINEMA_LOG_LEVEL") ?? "info") ?? .info

        let lock = try dataDirectory.lockExclusively()
        defer { lock.release() }
        let store = try dataDirectory.openStore()
        var devKey: String?
        if try await store.listAPIKeys().isEmpty {
            let secret = APIKey.generate()
            try await store.insertAPIKey(APIKeyRecord(
                id: UUID().uuidString.lowercased(), tenant: "default", keyHash: APIKey.hash(secret),
                prefix: APIKey.displayPrefix(secret), createdAt: Date(), revokedAt: nil))
            devKey = secret
        }
        let server = KinemaServer(
            configuration: config, store: store, blobs: try dataDirectory.openBlobs(), engine: EngineCatalog.motion(),
            signingSecret: try dataDirectory.signingSecret(), nodeID: try dataDirectory.nodeID(), logger: logger
        )
        let workers = config.workers
        let shownKey = devKey
        try await server.run { url in
            var lines = ["Kinema is listening on \(url) (data: \(dataDirectory.url.path), workers: \(workers))"]
            if let devKey = shownKey {
                lines.append("Dev API key (tenant 'default', shown only this once; store it now):")
                lines.append(devKey)
            } else {
                lines.append("API keys already exist in this data directory; create another with: kinema keys create --data-dir \(dataDirectory.url.path)")
            }
            // Written unbuffered: scripts and tests read these lines through a pipe while the server runs.
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
    }
}
