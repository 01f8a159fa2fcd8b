import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaEngines
import KinemaS3
import KinemaStore
import KinemaStorePostgres
import KinemaWorker
import Logging

/// `kinema worker`: a worker-only process rendering tasks with the built-in motion engine.
///
/// Tasks come from exactly one source: `--server` (an API node over HTTP with a worker token, for machines
/// that cannot reach the database), or `--database` (a shared PostgreSQL: `StoreWorkSource`, whose store's
/// `LISTEN/NOTIFY` wakes idle workers, plus a `LeaseRescuer` of its own).
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run workers that pull tasks from a Kinema API node (--server) or a shared PostgreSQL (--database) and render them with the built-in engine."
    )

    @Option(help: "Base URL of a Kinema API node to pull tasks from over HTTP (env KINEMA_SERVER).")
    var server: String?

    @Option(
        name: .customLong("worker-token"), help: "Worker token for --server (env KINEMA_WORKER_TOKEN); make one with 'kinema worker-token create'.")
    var workerToken: String?

    @Option(help: "Tasks rendered at once (env KINEMA_CONCURRENCY, default 1).")
    var concurrency: Int?

    @Option(
        name: .customLong("worker-id"),
        help:
            "Stable id of this worker process, unique among workers using the same token; a restart with the same id requeues its unfinished tasks at once (env KINEMA_WORKER_ID, default a random id)."
    )
    var workerID: String?

    @Option(name: .customLong("lease-seconds"), help: "Lease length asked for each task, in seconds (env KINEMA_LEASE_SECONDS, default 30).")
    var leaseSeconds: Int?

    @Option(name: .customLong("claim-wait"), help: "Seconds one claim waits on the server for work, 0–30.")
    var claimWait: Int = 20

    @Option(
        name: .customLong("shutdown-grace"),
        help: "Seconds running renders may finish after SIGTERM before their leases are released (env KINEMA_SHUTDOWN_GRACE, default 30).")
    var shutdownGrace: Int?

    @Option(name: .customLong("scratch-dir"), help: "Where renders are written before upload (default: a folder in the system temp dir).")
    var scratchDir: String?

    @Option(
        name: .customLong("database"),
        help: "Pull tasks straight from a shared PostgreSQL instead of --server (env KINEMA_DATABASE_URL); needs --blob-dir.")
    var database: String?

    @Option(name: .customLong("blob-dir"), help: "With --database: the blob directory the API nodes share (env KINEMA_BLOB_DIR).")
    var blobDir: String?

    @Flag(
        name: .customLong("direct-upload"),
        help:
            "With --server: PUT results straight into the node's object storage through presigned URLs the node hands out with each claim (env KINEMA_DIRECT_UPLOAD=1); through the node when it has none or the PUT fails."
    )
    var directUpload = false

    @OptionGroup(title: "Object storage (with --database: --blob-store s3://… instead of --blob-dir)")
    var blobOptions: BlobStoreOptions

    @Option(
        name: .customLong("poll-seconds"),
        help:
            "Seconds an idle worker waits before looking for work again when nothing woke it (env KINEMA_POLL_SECONDS, default 1); with --database, LISTEN/NOTIFY wakes it at once."
    )
    var pollSeconds: Double?

    @Option(
        name: .customLong("rescue-seconds"),
        help: "With --database: how often expired leases are swept back to the queue, in seconds (env KINEMA_RESCUE_SECONDS, default 5).")
    var rescueSeconds: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (env KINEMA_LOG_LEVEL, default info).")
    var logLevel: String?

    @Option(
        name: .customLong("log-format"),
        help: "json (one object per line) or text (env KINEMA_LOG_FORMAT; default text on a terminal, json otherwise).")
    var logFormat: LogFormat?

    @Flag(
        name: .customLong("group-access"),
        help:
            "With --database: let the owner's group read and write what this worker stores (folders 0770, files 0660) instead of the owner only; env KINEMA_GROUP_ACCESS=1."
    )
    var groupAccess = false

    func run() async throws {
        ProcessSignals.unblockTermination()
        let access = Env.fileAccess(groupAccess: groupAccess)
        let count = concurrency ?? Env.int("KINEMA_CONCURRENCY") ?? 1
        let lease = leaseSeconds ?? Env.int("KINEMA_LEASE_SECONDS") ?? 30
        let grace = shutdownGrace ?? Env.int("KINEMA_SHUTDOWN_GRACE") ?? 30
        let poll = pollSeconds ?? Env.string("KINEMA_POLL_SECONDS").flatMap(Double.init) ?? 1
        let rescue = rescueSeconds ?? Env.int("KINEMA_RESCUE_SECONDS") ?? 5
        guard count >= 1, lease >= 2, grace >= 0, (0...30).contains(claimWait), poll >= 0.05, poll <= 3600, rescue >= 1 else {
            throw CLIError(
                "--concurrency must be ≥ 1, --lease-seconds ≥ 2, --shutdown-grace ≥ 0, --claim-wait 0…30, --poll-seconds 0.05…3600 and --rescue-seconds ≥ 1."
            )
        }
        let timing = Timing(lease: lease, grace: grace, poll: .milliseconds(Int64(poll * 1000)), rescue: .seconds(rescue))
        let id = workerID ?? Env.string("KINEMA_WORKER_ID") ?? "worker-\(UUID().uuidString.prefix(8).lowercased())"
        guard (1...100).contains(id.utf8.count), id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw CLIError("--worker-id must be 1 to 100 printable ASCII characters without spaces.")
        }
        var logger = Logger(label: "kinema.worker")
        logger.logLevel = Logger.Level(rawValue: logLevel ?? Env.string("KINEMA_LOG_LEVEL") ?? "info") ?? .info

        if let url = database ?? Env.string("KINEMA_DATABASE_URL") {
            guard server == nil else {
                throw CLIError("Give one source of tasks: --server (HTTP) or --database (PostgreSQL), not both.")
            }
            try await runOnDatabase(url: url, id: id, count: count, timing: timing, access: access, logger: logger)
            return
        }
        let (remote, origin) = try remoteConfiguration()
        let scratch = URL(
            fileURLWithPath: scratchDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("kinema-worker-\(id)").path,
            isDirectory: true)
        let config = timing.apply(to: WorkerConfiguration(count: count, nodeID: id, scratchDirectory: scratch))

        // Written unbuffered: scripts and tests read this line through a pipe while the worker runs.
        FileHandle.standardOutput.write(Data("Kinema worker \(id) pulling tasks from \(origin) (concurrency \(count))\n".utf8))
        do {
            try await RemoteWorkSource.withSource(configuration: remote, concurrency: count) { source in
                try await WorkerProcess(configuration: config, source: source, engine: EngineCatalog.motion(), logger: logger).run()
            }
        } catch {
            // The pool stops only on a failure it cannot ride out (the first call at start); say where it talked to.
            throw CLIError("the worker stopped talking to \(origin): \(error)")
        }
    }

    /// Database mode: claims from the shared PostgreSQL, blobs from the shared directory, and a lease rescuer of
    /// its own (safe beside the API nodes' rescuers: each task is rescued once).
    func runOnDatabase(url: String, id: String, count: Int, timing: Timing, access: FileAccess, logger: Logger) async throws {
        let blobs: any BlobStore
        let scratch: URL
        if let s3 = try blobOptions.s3Store() {
            guard blobDir ?? Env.string("KINEMA_BLOB_DIR") == nil else {
                throw CLIError("--blob-store and --blob-dir exclude each other: blobs live in one place.")
            }
            blobs = s3
            scratch = URL(
                fileURLWithPath: scratchDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("kinema-worker-\(id)").path,
                isDirectory: true)
        } else {
            guard let blobPath = blobDir ?? Env.string("KINEMA_BLOB_DIR") else {
                throw CLIError(
                    "--database needs --blob-dir (or KINEMA_BLOB_DIR), the blob directory the API nodes share, or --blob-store s3://BUCKET.")
            }
            let local = try LocalBlobStore(root: URL(fileURLWithPath: blobPath, isDirectory: true), access: access)
            blobs = local
            // Same filesystem as the blobs, so a finished render is moved, not copied.
            scratch = URL(
                fileURLWithPath: scratchDir ?? local.root.deletingLastPathComponent().appendingPathComponent("scratch").path, isDirectory: true)
        }
        let config = timing.apply(to: WorkerConfiguration(count: count, nodeID: id, scratchDirectory: scratch))
        let store = try PostgresTaskStore(url: url, logger: logger)
        FileHandle.standardOutput.write(Data("Kinema worker \(id) pulling tasks from the database (concurrency \(count))\n".utf8))
        try await store.withRunning {
            try await store.migrate()
            let rescuer = LeaseRescuer(store: store, interval: timing.rescue, signal: WorkSignal(), logger: logger)
            try await WorkerProcess(
                configuration: config, source: StoreWorkSource(store: store, blobs: blobs), engine: EngineCatalog.motion(),
                services: [rescuer], logger: logger
            ).run()
        }
    }

    /// The pool's timing as the options give it.
    struct Timing {
        var lease: Int
        var grace: Int
        var poll: Duration
        var rescue: Duration

        func apply(to base: WorkerConfiguration) -> WorkerConfiguration {
            var config = base
            config.leaseDuration = TimeInterval(lease)
            // Heartbeat a few times per lease so one slow or lost request does not lose the task.
            config.heartbeatInterval = .milliseconds(max(500, lease * 1000 / 4))
            config.shutdownGrace = .seconds(grace)
            config.pollInterval = poll
            return config
        }
    }

    /// The HTTP source the options name (`--server`, `--worker-token`).
    func remoteConfiguration() throws -> (RemoteWorkSource.Configuration, String) {
        guard let server = server ?? Env.string("KINEMA_SERVER") else {
            throw CLIError("Name where tasks come from: --server URL (an API node, with --worker-token).")
        }
        guard let url = URL(string: server), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw CLIError("--server must be an http(s) URL such as http://10.0.0.5:8080.")
        }
        guard let token = workerToken ?? Env.string("KINEMA_WORKER_TOKEN") else {
            throw CLIError("--server needs --worker-token (or KINEMA_WORKER_TOKEN); make one on the server with 'kinema worker-token create'.")
        }
        guard Credential.isWellFormed(token, as: .workerToken) else {
            throw CLIError(
                "--worker-token is not a worker token (they start with '\(CredentialKind.workerToken.prefix)'; API keys are not accepted).")
        }
        var remote = RemoteWorkSource.Configuration(serverURL: server, token: token)
        remote.claimWaitSeconds = claimWait
        remote.directUpload = directUpload || Env.int("KINEMA_DIRECT_UPLOAD") == 1
        return (remote, remote.serverURL)
    }
}
