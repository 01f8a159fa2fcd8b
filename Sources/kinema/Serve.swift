import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaEngines
import KinemaFetch
import KinemaMotion
import KinemaS3
import KinemaStore
import KinemaStoreSQLite
import KinemaStorePostgres
import Logging

/// `kinema serve`: the API with in-process workers on an embedded SQLite data directory.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the API server with in-process workers (embedded SQLite, or a shared PostgreSQL with --database).")

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

    @Option(
        name: .customLong("allow-fetch-from"),
        help: "CIDR range image URLs may be fetched from although normally refused; repeatable (env KINEMA_ALLOW_FETCH_FROM, comma-separated).")
    var allowFetchFrom: [String] = []

    @Option(name: .customLong("video-url-ttl"), help: "Lifetime of signed video URLs in seconds (env KINEMA_VIDEO_URL_TTL, default 3600).")
    var videoURLTTL: Int?

    @Option(
        name: .customLong("shutdown-grace"),
        help: "Seconds running renders may finish after SIGTERM before their leases are released (env KINEMA_SHUTDOWN_GRACE, default 30).")
    var shutdownGrace: Int?

    @Option(name: .customLong("max-attempts"), help: "Attempts per task before it fails (env KINEMA_MAX_ATTEMPTS, default 3).")
    var maxAttempts: Int?

    @Option(name: .customLong("lease-seconds"), help: "Worker lease length in seconds (env KINEMA_LEASE_SECONDS, default 30).")
    var leaseSeconds: Int?

    @Option(
        name: .customLong("rescue-seconds"),
        help: "How often expired leases are swept back to the queue, in seconds (env KINEMA_RESCUE_SECONDS, default 5).")
    var rescueSeconds: Int?

    @Option(
        name: .customLong("max-result-bytes"),
        help: "Largest result a remote worker may upload, in bytes (env KINEMA_MAX_RESULT_BYTES, default 536870912).")
    var maxResultBytes: Int?

    @Option(
        name: .customLong("auth-cache-seconds"),
        help:
            "How long a verified API key is remembered, in seconds; a revoked key stops working on a node within this time; 0 checks the store on every request (env KINEMA_AUTH_CACHE_SECONDS, default 2)."
    )
    var authCacheSeconds: Double?

    @Option(
        name: .customLong("rate-limit-rps"),
        help:
            "Requests per second allowed per API key, submits and polls alike; 0 = unlimited (env KINEMA_RATE_LIMIT_RPS, default 0). Counted in the shared database with --database, so it holds across nodes."
    )
    var rateLimitRPS: Double?

    @Option(
        name: .customLong("rate-limit-burst"),
        help: "Requests a key may send at once after a quiet period (env KINEMA_RATE_LIMIT_BURST, default: twice the rate, at least 1).")
    var rateLimitBurst: Int?

    @Option(
        name: .customLong("max-queued-tasks"),
        help: "Most queued + running tasks per tenant; submits over it answer 429; 0 = unlimited (env KINEMA_MAX_QUEUED_TASKS, default 0).")
    var maxQueuedTasks: Int?

    @Option(
        name: .customLong("idle-timeout"),
        help: "Seconds a keep-alive connection may stay idle between requests before it is closed (env KINEMA_IDLE_TIMEOUT, default 60).")
    var idleTimeout: Int?

    @Option(
        name: .customLong("max-connections"),
        help:
            "Most HTTP connections open at once; at the cap the longest-idle one is closed for a new one, and only when all are mid-request do new ones wait (env KINEMA_MAX_CONNECTIONS, default 512)."
    )
    var maxConnections: Int?

    @Option(
        name: .customLong("max-connections-per-client"),
        help:
            "Most HTTP connections open at once from one client address (env KINEMA_MAX_CONNECTIONS_PER_CLIENT, default a quarter of --max-connections, at least 16; behind a reverse proxy set it to --max-connections)."
    )
    var maxConnectionsPerClient: Int?

    @Option(
        name: .customLong("header-timeout"),
        help:
            "Seconds a connection may take to send a complete request head, from the accept for its first request and from the first byte for later ones; 408 after it (env KINEMA_HEADER_TIMEOUT, default 10)."
    )
    var headerTimeout: Int?

    @Option(
        name: .customLong("body-timeout"),
        help: "Seconds a submit's whole body may take to arrive before it is answered 408 (env KINEMA_BODY_TIMEOUT, default 120).")
    var bodyTimeout: Int?

    @Option(name: .customLong("fetch-timeout"), help: "Seconds one image URL fetch may take (env KINEMA_FETCH_TIMEOUT, default 15).")
    var fetchTimeout: Int?

    @Option(
        name: .customLong("fetch-max-redirects"),
        help: "Redirects one image URL fetch may follow, each re-checked (env KINEMA_FETCH_MAX_REDIRECTS, default 3).")
    var fetchMaxRedirects: Int?

    @Option(
        name: .customLong("json-max-depth"), help: "Deepest nesting of arrays and objects in a request body (env KINEMA_JSON_MAX_DEPTH, default 64).")
    var jsonMaxDepth: Int?

    @Option(
        name: .customLong("max-body-bytes"),
        help:
            "Largest submit body in bytes, checked before parsing; larger answers 413 (env KINEMA_MAX_BODY_BYTES, default 33554432: two 10 MB images in base64 fit)."
    )
    var maxBodyBytes: Int?

    @Option(
        name: .customLong("max-image-side"),
        help: "Most pixels per image side, read from the header before any decode (env KINEMA_MAX_IMAGE_SIDE, default 8192).")
    var maxImageSide: Int?

    @Option(
        name: .customLong("max-image-pixels"),
        help: "Most pixels per image, read from the header before any decode (env KINEMA_MAX_IMAGE_PIXELS, default 40000000).")
    var maxImagePixels: Int?

    @Option(
        name: .customLong("claim-poll-seconds"),
        help:
            "How often a waiting remote-worker claim looks at the queue when no wake-up arrived, in seconds (env KINEMA_CLAIM_POLL_SECONDS, default 1); submits on this node and PostgreSQL notifications wake claims at once."
    )
    var claimPollSeconds: Double?

    @Option(
        name: .customLong("upload-timeout"),
        help: "Seconds a remote worker's whole result upload may take to arrive before it is answered 408 (env KINEMA_UPLOAD_TIMEOUT, default 600).")
    var uploadTimeout: Int?

    @Option(
        name: .customLong("database"),
        help: "Shared PostgreSQL URL (env KINEMA_DATABASE_URL): API nodes and workers share it instead of --data-dir's SQLite; needs --blob-dir.")
    var database: String?

    @Option(name: .customLong("blob-dir"), help: "With --database: blob directory shared by every node and worker (env KINEMA_BLOB_DIR).")
    var blobDir: String?

    @Option(
        name: .customLong("node-id"),
        help: "With --database: stable id of this node's in-process workers, unique per process (env KINEMA_NODE_ID, default random).")
    var nodeID: String?

    @Flag(name: .customLong("no-migrate"), help: "With --database: do not apply migrations at start (run 'kinema migrate' instead).")
    var noMigrate = false

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (env KINEMA_LOG_LEVEL, default info).")
    var logLevel: String?

    @Option(
        name: .customLong("log-format"),
        help: "json (one object per line) or text (env KINEMA_LOG_FORMAT; default text on a terminal, json otherwise).")
    var logFormat: LogFormat?

    @Option(
        name: .customLong("engine"),
        help:
            "An engine tasks may be routed to: \(EngineNames.known.joined(separator: ", ")); repeatable, the first is the default (env KINEMA_ENGINES, comma-separated; default motion). In-process workers run motion and the upstream providers (novita, kling, fal); diffusers tasks wait for remote workers."
    )
    var engines: [String] = []

    @Option(
        name: .customLong("event-keepalive-seconds"),
        help:
            "Seconds between comment lines on idle event streams (task-events), so proxies keep them open (env KINEMA_EVENT_KEEPALIVE_SECONDS, default 15)."
    )
    var eventKeepAliveSeconds: Double?

    @Option(
        name: .customLong("max-streams-per-key"),
        help:
            "Most event streams one API key may hold open on a node; 429 over it; a node holds at most half of --max-connections streams (env KINEMA_MAX_STREAMS_PER_KEY, default 8)."
    )
    var maxStreamsPerKey: Int?

    @Flag(
        name: .customLong("no-playground"),
        help: "Do not serve the web playground at / (env KINEMA_PLAYGROUND=0); the API is unchanged.")
    var noPlayground = false

    @Option(
        name: .customLong("video-url-mode"),
        help:
            "kinema: video_url is this server's signed /files/ link (bytes pass through the API node); presigned: an S3 presigned GET URL straight to the bucket (needs --blob-store; env KINEMA_VIDEO_URL_MODE, default kinema)."
    )
    var videoURLMode: String?

    @OptionGroup(title: "Object storage (--blob-store s3://…)")
    var blobOptions: BlobStoreOptions

    @OptionGroup(title: "Retention")
    var retention: RetentionOptions

    @OptionGroup(title: "Upstream providers (--engine novita|kling|fal)")
    var upstream: UpstreamOptions

    @OptionGroup(title: "Webhooks (extra.webhook.url)")
    var webhooks: WebhookOptions

    @OptionGroup(title: "Metrics")
    var metrics: MetricsOptions

    @Flag(
        name: .customLong("group-access"),
        help:
            "Let the owner's group read and write the data and blob directories (folders 0770, files 0660) instead of the owner only (0700/0600); env KINEMA_GROUP_ACCESS=1."
    )
    var groupAccess = false

    func run() async throws {
        ProcessSignals.unblockTermination()
        let access = Env.fileAccess(groupAccess: groupAccess)
        let dataDirectory = try DataDirectory(Env.dataDirectory(dataDir), access: access)
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
        config.authCacheSeconds = authCacheSeconds ?? Env.double("KINEMA_AUTH_CACHE_SECONDS") ?? config.authCacheSeconds
        config.idleTimeoutSeconds = idleTimeout ?? Env.int("KINEMA_IDLE_TIMEOUT") ?? config.idleTimeoutSeconds
        config.bodyTimeoutSeconds = bodyTimeout ?? Env.int("KINEMA_BODY_TIMEOUT") ?? config.bodyTimeoutSeconds
        config.workerProtocol.uploadTimeoutSeconds = uploadTimeout ?? Env.int("KINEMA_UPLOAD_TIMEOUT") ?? config.workerProtocol.uploadTimeoutSeconds
        guard config.workerProtocol.uploadTimeoutSeconds >= 1 else { throw CLIError("--upload-timeout must be at least 1 second.") }
        let engineNames = engines.isEmpty ? Env.list("KINEMA_ENGINES") : engines
        if !engineNames.isEmpty {
            for name in engineNames where !EngineNames.known.contains(name) {
                throw CLIError("--engine \(name): unknown engine; choose from \(EngineNames.known.joined(separator: ", ")).")
            }
            var unique: [String] = []
            for name in engineNames where !unique.contains(name) { unique.append(name) }
            config.engines = unique
        }
        let claimPoll = claimPollSeconds ?? Env.double("KINEMA_CLAIM_POLL_SECONDS") ?? 1
        guard claimPoll >= 0.05, claimPoll <= 3600 else { throw CLIError("--claim-poll-seconds must be from 0.05 to 3600.") }
        config.workerProtocol.pollInterval = .milliseconds(Int64(claimPoll * 1000))
        config.maxConnections = maxConnections ?? Env.int("KINEMA_MAX_CONNECTIONS") ?? config.maxConnections
        config.maxConnectionsPerClient = maxConnectionsPerClient ?? Env.int("KINEMA_MAX_CONNECTIONS_PER_CLIENT")
        config.headerTimeoutSeconds = headerTimeout ?? Env.int("KINEMA_HEADER_TIMEOUT") ?? config.headerTimeoutSeconds
        guard config.idleTimeoutSeconds >= 1, config.bodyTimeoutSeconds >= 1, config.headerTimeoutSeconds >= 1,
            config.maxConnections >= 1, config.effectiveMaxConnectionsPerClient >= 1
        else {
            throw CLIError(
                "--idle-timeout, --header-timeout and --body-timeout must be at least 1 second, --max-connections and --max-connections-per-client at least 1."
            )
        }
        config.fetchTimeout = .seconds(fetchTimeout ?? Env.int("KINEMA_FETCH_TIMEOUT") ?? 15)
        config.fetchMaxRedirects = fetchMaxRedirects ?? Env.int("KINEMA_FETCH_MAX_REDIRECTS") ?? config.fetchMaxRedirects
        config.limits.maxJSONDepth = jsonMaxDepth ?? Env.int("KINEMA_JSON_MAX_DEPTH") ?? config.limits.maxJSONDepth
        guard config.fetchTimeout >= .seconds(1), (0...20).contains(config.fetchMaxRedirects),
            (4...1000).contains(config.limits.maxJSONDepth)
        else {
            throw CLIError(
                "--fetch-timeout must be at least 1 s, --fetch-max-redirects 0…20 and --json-max-depth 4…1000 (the contract's bodies nest 4 deep).")
        }
        config.maxBodyBytes = maxBodyBytes ?? Env.int("KINEMA_MAX_BODY_BYTES") ?? config.maxBodyBytes
        config.limits.maxImageSide = maxImageSide ?? Env.int("KINEMA_MAX_IMAGE_SIDE") ?? config.limits.maxImageSide
        config.limits.maxImagePixels = maxImagePixels ?? Env.int("KINEMA_MAX_IMAGE_PIXELS") ?? config.limits.maxImagePixels
        guard config.maxBodyBytes >= 1024, config.limits.maxImageSide >= config.limits.minImageSide,
            config.limits.maxImagePixels >= config.limits.minImageSide * config.limits.minImageSide
        else {
            throw CLIError(
                "--max-body-bytes must be at least 1024, --max-image-side at least \(config.limits.minImageSide) and --max-image-pixels at least \(config.limits.minImageSide * config.limits.minImageSide) (the contract's smallest image)."
            )
        }
        let rps = rateLimitRPS ?? Env.double("KINEMA_RATE_LIMIT_RPS") ?? 0
        let burst = rateLimitBurst ?? Env.int("KINEMA_RATE_LIMIT_BURST") ?? max(1, Int((rps * 2).rounded(.up)))
        guard rps >= 0, rps.isFinite, burst >= 1 else {
            throw CLIError("--rate-limit-rps must be ≥ 0 (0 = unlimited) and --rate-limit-burst ≥ 1.")
        }
        config.rateLimit = rps > 0 ? RateLimit(perSecond: rps, burst: burst) : nil
        let queuedCap = maxQueuedTasks ?? Env.int("KINEMA_MAX_QUEUED_TASKS") ?? 0
        guard queuedCap >= 0 else { throw CLIError("--max-queued-tasks must be ≥ 0 (0 = unlimited).") }
        config.maxActiveTasks = queuedCap > 0 ? queuedCap : nil
        let ranges = allowFetchFrom.isEmpty ? Env.list("KINEMA_ALLOW_FETCH_FROM") : allowFetchFrom
        config.allowFetchFrom = try ranges.map { text in
            guard let net = IPNetwork(text) else {
                throw CLIError("--allow-fetch-from: '\(text)' is not an address range in CIDR form (e.g. 127.0.0.1/32).")
            }
            return net
        }
        guard config.workers >= 0, config.videoURLTTL > 0, config.maxAttempts >= 1, config.leaseDuration >= 2, (0...65535).contains(config.port),
            config.workerProtocol.maxResultBytes > 0, config.authCacheSeconds >= 0, config.authCacheSeconds <= 3600
        else {
            throw CLIError(
                "--workers must be ≥ 0, --video-url-ttl > 0, --max-attempts ≥ 1, --lease-seconds ≥ 2, --max-result-bytes > 0, --auth-cache-seconds 0…3600 and --port 0…65535."
            )
        }

        var logger = Logger(label: "kinema")
        logger.logLevel = Logger.Level(rawValue: logLevel ?? Env.string("KINEMA_LOG_LEVEL") ?? "info") ?? .info
        config.upstreamConcurrency = try upstream.concurrency()
        let keepAlive = eventKeepAliveSeconds ?? Env.double("KINEMA_EVENT_KEEPALIVE_SECONDS") ?? 15
        config.maxStreamsPerKey = maxStreamsPerKey ?? Env.int("KINEMA_MAX_STREAMS_PER_KEY") ?? config.maxStreamsPerKey
        config.playground = !noPlayground && Env.int("KINEMA_PLAYGROUND") != 0
        config.retention = try retention.policy()
        if let seconds = Env.double("KINEMA_RETENTION_SWEEP_SECONDS"), seconds >= 0.05 {
            // For tests and operators who want deletions to follow retention closely (default: once a minute).
            config.retentionInterval = .milliseconds(Int64(seconds * 1000))
        }
        guard (0.05...3600).contains(keepAlive), config.maxStreamsPerKey >= 1 else {
            throw CLIError("--event-keepalive-seconds must be 0.05…3600 and --max-streams-per-key at least 1.")
        }
        config.eventKeepAlive = .milliseconds(Int64(keepAlive * 1000))
        config.webhooks = try webhooks.configuration()
        let database = self.database ?? Env.string("KINEMA_DATABASE_URL")
        let blobPath = blobDir ?? Env.string("KINEMA_BLOB_DIR")
        let s3 = try blobOptions.s3Store()
        if s3 != nil, blobPath != nil { throw CLIError("--blob-store and --blob-dir exclude each other: blobs live in one place.") }
        // Nodes sharing a database and a bucket share the secret kept in the bucket.
        switch videoURLMode ?? Env.string("KINEMA_VIDEO_URL_MODE") ?? "kinema" {
        case "kinema": config.presignedVideoURLs = false
        case "presigned":
            guard s3 != nil else { throw CLIError("--video-url-mode presigned needs --blob-store s3://…: only object storage presigns URLs.") }
            guard config.videoURLTTL <= 604_800 else {
                throw CLIError("--video-url-mode presigned allows --video-url-ttl up to 604800 (7 days, S3's limit).")
            }
            config.presignedVideoURLs = true
        case let other: throw CLIError("--video-url-mode must be kinema or presigned, not \(other).")
        }
        let bucketSecret: [UInt8]?
        if database != nil, let s3 { bucketSecret = try await BlobStoreOptions.sharedSigningSecret(s3) } else { bucketSecret = nil }
        let gateway = try upstream.gateway(
            enabled: config.engines, allowFetchFrom: config.allowFetchFrom, publicURL: config.publicURL, logger: logger,
            signingSecret: {
                // The secret this node signs links with: beside the shared blobs with --database, else the data dir's.
                if let bucketSecret { return bucketSecret }
                if database != nil, let blobPath {
                    return try Self.sharedSecrets(blobRoot: URL(fileURLWithPath: blobPath, isDirectory: true), access: access).signingSecret()
                }
                return try dataDirectory.signingSecret()
            })
        do {
            try await serve(
                config: config, dataDirectory: dataDirectory, access: access, gateway: gateway, s3: s3, bucketSecret: bucketSecret,
                logger: logger)
        } catch {
            await gateway?.shutdown()
            throw error
        }
        await gateway?.shutdown()
    }

    /// Runs the node on the embedded data directory, or on the shared database when one is given.
    func serve(
        config: ServerConfiguration, dataDirectory: DataDirectory, access: FileAccess, gateway: UpstreamGateway?, s3: S3BlobStore?,
        bucketSecret: [UInt8]?, logger: Logger
    ) async throws {
        if let url = database ?? Env.string("KINEMA_DATABASE_URL") {
            let blobs: any BlobStore
            let secret: [UInt8]
            let place: String
            if let s3, let bucketSecret {
                (blobs, secret, place) = (s3, bucketSecret, "blobs: s3://\(s3.client.configuration.bucket)")
            } else {
                guard let blobPath = blobDir ?? Env.string("KINEMA_BLOB_DIR") else {
                    throw CLIError(
                        "--database needs --blob-dir (or KINEMA_BLOB_DIR), a directory every node and worker shares, or --blob-store s3://BUCKET.")
                }
                let local = try LocalBlobStore(root: URL(fileURLWithPath: blobPath, isDirectory: true), access: access)
                (blobs, secret, place) = (local, try Self.sharedSecrets(blobRoot: local.root, access: access).signingSecret(), "blobs: \(blobPath)")
            }
            try await runShared(
                databaseURL: url, config: config, blobs: blobs, secret: secret, place: place, gateway: gateway, logger: logger)
            return
        }

        let lock = try dataDirectory.lockExclusively()
        defer { lock.release() }
        let store = try dataDirectory.openStore()
        let devKey = try await Self.createDevKeyIfNone(store)
        var config = config
        config.metrics = try metrics.endpoint(store: store, engines: config.engines)
        let server = KinemaServer(
            configuration: config, store: store, blobs: try s3 ?? dataDirectory.openBlobs(), engine: EngineCatalog.motion(),
            imageVerifier: MediaImageVerifier(),
            signingSecret: try dataDirectory.signingSecret(), nodeID: try dataDirectory.nodeID(), logger: logger,
            upstreamEngines: gateway?.engines ?? [], engineStatus: gateway?.status ?? EngineStatusBoard()
        )
        let workers = config.workers
        try await server.run { url in
            Self.announce(
                url: url, where: "data: \(dataDirectory.url.path)", workers: workers, devKey: devKey,
                keysHint: "--data-dir \(dataDirectory.url.path)")
        }
    }

    /// Scale-out mode: tasks in a shared PostgreSQL, blobs (and the URL-signing secret) in a shared directory.
    /// No data-dir lock: any number of nodes may serve the same database.
    func runShared(
        databaseURL: String, config: ServerConfiguration, blobs: any BlobStore, secret: [UInt8], place: String, gateway: UpstreamGateway?,
        logger: Logger
    ) async throws {
        let node = nodeID ?? Env.string("KINEMA_NODE_ID") ?? "node-\(UUID().uuidString.prefix(8).lowercased())"
        let store = try PostgresTaskStore(url: databaseURL, logger: logger)
        let migrate = !noMigrate
        try await store.withRunning {
            if migrate { try await store.migrate() }
            let devKey = try await Self.createDevKeyIfNone(store)
            var config = config
            config.metrics = try metrics.endpoint(store: store, engines: config.engines)
            let server = KinemaServer(
                configuration: config, store: store, blobs: blobs, engine: EngineCatalog.motion(), imageVerifier: MediaImageVerifier(),
                signingSecret: secret, nodeID: node, logger: logger, upstreamEngines: gateway?.engines ?? [],
                engineStatus: gateway?.status ?? EngineStatusBoard()
            )
            let workers = config.workers
            try await server.run { url in
                Self.announce(
                    url: url, where: "database, \(place)", workers: workers, devKey: devKey,
                    keysHint: "--database URL")
            }
        }
    }

    /// Where scale-out nodes keep the URL-signing secret: beside the shared blobs, so every node signs and verifies
    /// links alike.
    static func sharedSecrets(blobRoot: URL, access: FileAccess) throws -> DataDirectory {
        try DataDirectory(blobRoot.appendingPathComponent(".kinema-node-secrets", isDirectory: true), access: access)
    }

    /// The first start on an empty store creates a key for tenant `default`; it is shown once.
    static func createDevKeyIfNone(_ store: any TaskStore) async throws -> String? {
        guard try await store.credentials(.apiKey).isEmpty else { return nil }
        let secret = Credential.generate(.apiKey)
        try await store.insertCredential(CredentialRecord.new(.apiKey, secret: secret, owner: "default"))
        return secret
    }

    /// Prints where the server listens (and the dev key once); unbuffered, since scripts and tests read it through a pipe.
    static func announce(url: String, where location: String, workers: Int, devKey: String?, keysHint: String) {
        var lines = ["Kinema is listening on \(url) (\(location), workers: \(workers))"]
        if let devKey {
            lines.append("Dev API key (tenant 'default', shown only this once; store it now):")
            lines.append(devKey)
        } else {
            lines.append("API keys already exist; create another with: kinema keys create \(keysHint)")
        }
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}
