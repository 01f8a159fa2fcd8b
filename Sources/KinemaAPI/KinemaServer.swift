import Foundation
import Hummingbird
import HummingbirdCore
import KinemaCore
import KinemaFetch
import KinemaStore
import KinemaWorker
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// One embedded Kinema node: HTTP API, in-process workers and the lease rescuer, run as one `ServiceGroup`.
///
/// Shutdown order on SIGTERM/SIGINT (reverse of the service list): readiness turns false and submits
/// answer 503, the rescuer stops, workers finish running renders within the grace period (or release
/// their leases), then the HTTP server stops.
public struct KinemaServer: Sendable {
    public let configuration: ServerConfiguration
    public let store: any TaskStore
    public let blobs: any BlobStore
    public let engine: any VideoEngine
    /// Hosted-provider engines run by this node's I/O-bound workers (`configuration.upstreamConcurrency` each).
    public let upstreamEngines: [any VideoEngine]
    /// Engines paused for every task (an upstream provider refusing the account), shown by `/readyz`.
    public let engineStatus: EngineStatusBoard
    /// Checks that uploaded images decode, at submit time.
    public let imageVerifier: any ImageVerifier
    public let logger: Logger
    private let signingSecret: [UInt8]
    private let nodeID: String
    private let boundURL = BoundURL()
    /// Renders running in this process, so a cancel received here stops them at once.
    private let running = RunningTasks()
    /// Event streams open on this node, and the one reader of the tasks they watch.
    private let openStreams = OpenStreams()
    private var watch: TaskWatch { watchBox.value(store: store, interval: configuration.eventPollInterval, logger: logger) }
    private let watchBox = TaskWatchBox()

    /// Wires a node over already opened stores (tests pass their own; `serve` opens the data dir's).
    public init(
        configuration: ServerConfiguration, store: any TaskStore, blobs: any BlobStore, engine: any VideoEngine,
        imageVerifier: any ImageVerifier, signingSecret: [UInt8], nodeID: String, logger: Logger,
        upstreamEngines: [any VideoEngine] = [], engineStatus: EngineStatusBoard = EngineStatusBoard()
    ) {
        self.upstreamEngines = upstreamEngines
        self.engineStatus = engineStatus
        self.imageVerifier = imageVerifier
        self.configuration = configuration
        self.store = store
        self.blobs = blobs
        self.engine = engine
        self.signingSecret = signingSecret
        self.nodeID = nodeID
        self.logger = logger
    }

    /// Runs until a shutdown signal, or until `group` is told to shut down. `onRunning` receives the base URL.
    public func run(
        gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint],
        onRunning: @escaping @Sendable (String) async -> Void = { _ in }
    ) async throws {
        let signal = WorkSignal()
        let draining = DrainState()
        let config = configuration
        let boundURL = self.boundURL
        let router = makeRouter(signal: signal, draining: draining)
        let logger = self.logger
        // Every connection registers here: at a cap the longest-idle connection makes room for a new one, and only
        // when all are mid-request does the server stop accepting (new connections wait in the listen backlog).
        let connections = ConnectionRegistry(maxConnections: config.maxConnections, maxPerClient: config.effectiveMaxConnectionsPerClient)
        let guardSettings = HTTPConnectionGuard.Settings(registry: connections, headerTimeoutSeconds: config.headerTimeoutSeconds)
        let app = Application(
            router: router,
            // The guard enforces the caps and the header timeout and answers parser errors in the contract's shape;
            // idle keep-alive connections are closed after the idle timeout.
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [HTTPConnectionGuard(settings: guardSettings, logger: logger)],
                    idleTimeout: .seconds(Int64(config.idleTimeoutSeconds))
                )),
            configuration: .init(
                address: .hostname(config.host, port: config.port), serverName: "Kinema",
                availableConnectionsDelegate: ConnectionAdmission(registry: connections)
            ),
            onServerRunning: { channel in
                // A read on the server channel makes the accept loop ask `ConnectionAdmission` again.
                connections.setAcceptLoopWaker { channel.read() }
                let port = channel.localAddress?.port ?? config.port
                let host = config.host == "0.0.0.0" || config.host == "::" ? "127.0.0.1" : config.host
                let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
                boundURL.value.withLock { $0 = url }
                await onRunning(url)
            },
            logger: logger
        )

        var workerConfig = WorkerConfiguration(count: config.workers, nodeID: nodeID, scratchDirectory: scratchDirectory)
        workerConfig.leaseDuration = config.leaseDuration
        workerConfig.heartbeatInterval = config.heartbeatInterval
        workerConfig.shutdownGrace = config.shutdownGrace
        let workers = WorkerPool(
            configuration: workerConfig, source: StoreWorkSource(store: store, blobs: blobs), engine: engine, signal: signal, logger: logger,
            running: running)
        // Each upstream provider gets its own pool of I/O-bound workers, claiming only that provider's tasks.
        let upstreamPools = upstreamEngines.map { engine in
            var poolConfig = WorkerConfiguration(
                count: config.upstreamConcurrency, nodeID: "\(nodeID)/\(engine.name)", scratchDirectory: scratchDirectory)
            poolConfig.leaseDuration = config.leaseDuration
            poolConfig.heartbeatInterval = config.heartbeatInterval
            poolConfig.shutdownGrace = config.shutdownGrace
            // Many idle I/O workers: submits, rescues and the database's notifications wake them; the poll is only
            // the fallback, so it need not be frequent.
            poolConfig.pollInterval = .seconds(5)
            return WorkerPool(
                configuration: poolConfig, source: StoreWorkSource(store: store, blobs: blobs), engine: engine, signal: signal, logger: logger,
                running: running)
        }
        let rescuer = LeaseRescuer(store: store, interval: config.rescueInterval, signal: signal, logger: logger)
        let webhooks = WebhookDispatcher(
            store: store, links: resultLinks, configuration: config.webhooks, allow: config.allowFetchFrom, nodeID: nodeID, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] =
            [
                .init(service: app),
                .init(service: workers, successTerminationBehavior: .ignore),
                .init(service: rescuer, successTerminationBehavior: .ignore),
                .init(service: webhooks, successTerminationBehavior: .ignore),
                .init(
                    service: RetentionSweeper(
                        store: store, blobs: blobs, policy: config.retention, interval: config.retentionInterval, holder: nodeID, logger: logger),
                    successTerminationBehavior: .ignore),
            ] + upstreamPools.map { .init(service: $0, successTerminationBehavior: .ignore) } + [
                .init(service: DrainMonitor(state: draining), successTerminationBehavior: .ignore)
            ]
        if let metrics = config.metrics {
            services.append(.init(service: Self.metricsApplication(metrics, logger: logger)))
        }
        // An API-only node on PostgreSQL still long-polls for remote workers: wake those polls on the
        // database's notifications too (with in-process workers, their pool already relays them).
        if config.workers == 0, let notifications = store as? any WorkNotifications {
            services.append(.init(service: WorkNotificationRelay(notifications: notifications, signal: signal), successTerminationBehavior: .ignore))
        }

        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: gracefulShutdownSignals,
                logger: logger
            ))
        try await group.run()
    }

    /// The router with every controller, exactly as `run` serves it (building it does no I/O).
    func makeRouter(signal: WorkSignal, draining: DrainState) -> Router<KinemaRequestContext> {
        // Nodes sharing a database count rate limits there, so a key's limit holds across all of them.
        let limiter = (store as? any RateLimiter) ?? LocalRateLimiter()
        let auth = Authenticator(store: store, cacheTTL: configuration.authCacheSeconds, rateLimit: configuration.rateLimit, limiter: limiter)
        let config = configuration
        let links = resultLinks
        var fetchConfig = SafeFetcher.Configuration()
        fetchConfig.allow = config.allowFetchFrom
        fetchConfig.timeout = config.fetchTimeout
        fetchConfig.maxRedirects = config.fetchMaxRedirects
        fetchConfig.maxBytes = config.limits.maxImageBytes
        let submit = SubmitController(
            store: store, blobs: blobs, auth: auth, fetcher: SafeFetcher(configuration: fetchConfig),
            validator: RequestValidator(limits: config.limits), imageVerifier: imageVerifier, maxBodyBytes: config.maxBodyBytes,
            bodyTimeoutSeconds: config.bodyTimeoutSeconds,
            maxAttempts: config.maxAttempts, engines: config.engines, maxActiveTasks: config.maxActiveTasks, signal: signal,
            draining: draining
        )
        let worker = WorkerProtocolController(
            store: store, blobs: blobs, auth: WorkerAuthenticator(store: store), signal: signal, draining: draining,
            configuration: config.workerProtocol, defaultLeaseSeconds: Int(config.leaseDuration),
            uploadDirectory: scratchDirectory.appendingPathComponent("uploads")
        )
        return buildRouter(
            submit: submit, taskResult: TaskResultController(store: store, auth: auth, links: links),
            cancel: TaskCancelController(
                store: store, auth: auth, links: links, bodyTimeoutSeconds: config.bodyTimeoutSeconds, running: running),
            events: TaskEventsController(
                store: store, auth: auth, links: links, watch: watch,
                limits: .init(keepAlive: config.eventKeepAlive, perKey: config.maxStreamsPerKey, total: max(1, config.maxConnections / 2)),
                open: openStreams),
            webhooks: TaskWebhooksController(store: store, auth: auth), list: TaskListController(store: store, auth: auth, links: links),
            files: FilesController(blobs: blobs, signer: URLSigner(secret: signingSecret)), store: store, draining: draining,
            engineStatus: engineStatus, worker: worker,
            playground: config.playground
                ? Playground(engines: config.engines, limits: config.limits, mediaOrigin: config.publicURL.flatMap(Playground.origin(of:)))
                : nil
        )
    }

    /// Every (method, path) the router answers, paths in OpenAPI notation (`{task_id}`; a catch-all as `{key}`): what
    /// the OpenAPI check compares with the document, so a route added without documentation fails a test.
    public func registeredRoutes() -> [(method: String, path: String)] {
        makeRouter(signal: WorkSignal(), draining: DrainState()).routes.map { route in
            let path = route.path.components.map { component -> String in
                let text = component.description
                if text == "**" { return "{key}" }
                if text.hasPrefix(":") { return "{" + text.dropFirst() + "}" }
                return text
            }.joined(separator: "/")
            return (route.method.rawValue.lowercased(), "/" + path)
        }
    }

    /// The metrics listener: `GET /metrics` and nothing else, on its own address.
    static func metricsApplication(_ endpoint: MetricsEndpoint, logger: Logger) -> some Service {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            let body = await endpoint.render()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        return Application(
            router: router, configuration: .init(address: .hostname(endpoint.host, port: endpoint.port), serverName: "Kinema metrics"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? endpoint.port
                logger.notice("metrics listening", metadata: ["url": "http://\(endpoint.host):\(port)/metrics"])
            }, logger: logger)
    }

    /// Absolute signed result URLs on this node's public (or bound) address.
    private var resultLinks: ResultLinks {
        let config = configuration
        let boundURL = self.boundURL
        let blobs = self.blobs
        var presign: (@Sendable (String, Int) -> String?)? = nil
        if config.presignedVideoURLs {
            presign = { key, ttl in blobs.presignedURL(for: key, method: "GET", expires: ttl) }
        }
        return ResultLinks(
            baseURL: { config.publicURL ?? boundURL.value.withLock { $0 } ?? "http://\(config.host):\(config.port)" },
            signer: URLSigner(secret: signingSecret), ttl: config.videoURLTTL, presign: presign
        )
    }

    private var scratchDirectory: URL {
        if let local = blobs as? LocalBlobStore {
            // Same filesystem as the blobs, so finishing a render is a rename, not a copy.
            return local.root.deletingLastPathComponent().appendingPathComponent("scratch")
        }
        return FileManager.default.temporaryDirectory.appendingPathComponent("kinema-scratch")
    }
}

/// The URL the server actually bound (port 0 picks one), known once it runs.
private final class BoundURL: Sendable {
    let value = Mutex<String?>(nil)
}

/// The node's one `TaskWatch`, made on first use (the router is built once per run; tests build it more often).
private final class TaskWatchBox: Sendable {
    private let made = Mutex<TaskWatch?>(nil)

    func value(store: any TaskStore, interval: Duration, logger: Logger) -> TaskWatch {
        made.withLock { watch in
            if let watch { return watch }
            let new = TaskWatch(store: store, interval: interval, logger: logger)
            watch = new
            return new
        }
    }
}
