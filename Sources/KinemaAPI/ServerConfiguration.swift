import Foundation
import KinemaCore
import KinemaFetch
import KinemaStore
import KinemaWorker

/// Everything `kinema serve` is configured with, read once (command line > environment > defaults) and passed down.
public struct ServerConfiguration: Sendable {
    /// Address to bind.
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks a free one (tests).
    public var port: Int = 8080
    /// Base of absolute result URLs; `nil` means `http://HOST:PORT` of the bound socket.
    public var publicURL: String?
    /// Holds the SQLite database, blobs, the URL-signing secret and the node id.
    public var dataDirectory: URL
    /// In-process workers (0 = API only).
    public var workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)
    /// Tasks each upstream provider runs at once on this node (`--upstream-concurrency`): I/O-bound workers, separate
    /// from the CPU render workers.
    public var upstreamConcurrency: Int = 16
    /// `GET /metrics` on a listener of its own (`--metrics-port`), never on the public port; `nil`: none.
    public var metrics: MetricsEndpoint?
    /// The web playground at `/` (`--no-playground` turns it off).
    public var playground = true
    /// Webhook delivery: attempts, backoff, time cap (`--webhook-…`).
    public var webhooks = WebhookConfiguration()
    /// Comment line interval on event streams (`--event-keepalive-seconds`).
    public var eventKeepAlive: Duration = .seconds(15)
    /// Most event streams one API key may hold open on a node (`--max-streams-per-key`); a node holds at most half of
    /// `maxConnections` streams in all.
    public var maxStreamsPerKey: Int = 8
    /// How often the node reads the tasks its event streams watch (one read for all of them).
    public var eventPollInterval: Duration = .milliseconds(250)
    /// Address ranges the safe fetcher may fetch from although they are normally refused.
    public var allowFetchFrom: [IPNetwork] = []
    /// What is deleted and when (`--keep-inputs`, `--result-retention`); one node at a time sweeps.
    public var retention = RetentionPolicy()
    /// How often the retention sweep runs.
    public var retentionInterval: Duration = .seconds(60)
    /// `--video-url-mode presigned`: `video_url` is the blob store's own presigned URL (S3), not a `/files/` link.
    public var presignedVideoURLs = false
    /// Lifetime of signed video URLs, in seconds.
    public var videoURLTTL: Int = 3600
    /// Largest accepted request body, checked before parsing (two 10 MB images in base64 fit).
    public var maxBodyBytes: Int = 32 * 1024 * 1024
    /// The contract's validation limits (the decode limits are configurable).
    public var limits = ValidationLimits()
    /// Attempts before a task whose worker keeps dying is failed.
    public var maxAttempts: Int = 3
    /// Engines tasks may be routed to (`kinema serve --engine`); the first is the default. In-process workers run
    /// `motion` and the upstream providers given to the server; other engines' tasks wait for remote workers.
    public var engines: [String] = [EngineNames.motion]
    /// Lease and heartbeat timing of the workers.
    public var leaseDuration: TimeInterval = 30
    public var heartbeatInterval: Duration = .seconds(2)
    public var rescueInterval: Duration = .seconds(5)
    /// How long running renders may continue after SIGTERM before their leases are released.
    public var shutdownGrace: Duration = .seconds(30)
    /// Seconds an idle keep-alive connection stays open (and bounds a stalled body between its parts).
    public var idleTimeoutSeconds: Int = 60
    /// Seconds a connection may take to send a complete request head: from the accept for its first request, from
    /// the request's first byte for later ones (between requests the idle timeout applies). 408 after it when a head
    /// was started, a silent close when nothing was sent.
    public var headerTimeoutSeconds: Int = 10
    /// Most HTTP connections open at once. At the cap the longest-idle connection is closed to make room for a new
    /// one; only when every connection is mid-request do new ones wait in the listen backlog.
    public var maxConnections: Int = 512
    /// Most HTTP connections open at once from one client address (the longest-idle of that client's connections
    /// makes room; with all of them mid-request a new one is closed). `nil`: a quarter of `maxConnections`, at least
    /// 16 (never more than `maxConnections`). Behind a reverse proxy every client shares its address: set it to
    /// `maxConnections` there.
    public var maxConnectionsPerClient: Int?
    /// The per-client cap in force.
    public var effectiveMaxConnectionsPerClient: Int {
        maxConnectionsPerClient ?? Self.defaultPerClient(maxConnections)
    }

    /// The per-client cap that follows `maxConnections` until one is set.
    static func defaultPerClient(_ maxConnections: Int) -> Int {
        min(maxConnections, max(16, maxConnections / 4))
    }
    /// Seconds a submit's whole body may take to arrive, however steadily it trickles (408 after).
    public var bodyTimeoutSeconds: Int = 120
    /// The remote worker protocol's limits (result size cap, long-poll length).
    public var workerProtocol = WorkerProtocolConfiguration()
    /// How long a verified API key is remembered (a revoked key works on this node for at most this long); 0 = never.
    public var authCacheSeconds: TimeInterval = 2
    /// Requests per second and burst allowed per API key (submits and polls alike); `nil` = unlimited.
    public var rateLimit: RateLimit?
    /// Most queued + running tasks per tenant; a submit over it answers 429. `nil` = unlimited.
    public var maxActiveTasks: Int?
    /// Redirects one image URL fetch may follow (each hop re-checked).
    public var fetchMaxRedirects: Int = 3
    /// Timeout of one image URL fetch.
    public var fetchTimeout: Duration = .seconds(15)

    public init(dataDirectory: URL) {
        self.dataDirectory = dataDirectory
    }
}

/// Where the metrics listener binds and what it serves: `render` returns the Prometheus text exposition (the composition
/// root owns the registry, so this module depends on the swift-metrics facade only).
public struct MetricsEndpoint: Sendable {
    public var host: String
    public var port: Int
    public var render: @Sendable () async -> [UInt8]

    public init(host: String, port: Int, render: @escaping @Sendable () async -> [UInt8]) {
        self.host = host
        self.port = port
        self.render = render
    }
}
