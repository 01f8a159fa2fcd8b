import Foundation
import HTTPTypes
import Hummingbird
import KinemaAPIModels
import KinemaCore
import Logging
import Metrics
import Synchronization

/// One log line per request (method, path, status, duration, request id), and an `X-Request-Id` on every answer: the
/// client's own when it sent a usable one (1–128 printable ASCII characters), else a new one. The id is also in the
/// request's logger metadata, so every line a request logs carries it.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    static var header: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = Self.usable(request.headers[Self.header]) ?? RequestIDs.next()
        var context = context
        context.logger[metadataKey: "request_id"] = .string(id)
        let started = ContinuousClock.now
        do {
            var response = try await next(request, context)
            response.headers[Self.header] = id
            log(request, status: Int(response.status.code), started: started, logger: context.logger)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            log(request, status: Int(status), started: started, logger: context.logger)
            throw error
        }
    }

    func log(_ request: Request, status: Int, started: ContinuousClock.Instant, logger: Logger) {
        let elapsed = ContinuousClock.now - started
        let ms = elapsed.components
        let duration = Double(ms.seconds) * 1000 + Double(ms.attoseconds) / 1e15
        let metrics = RequestMetrics.handles(route: Self.route(request.uri.path), status: status)
        metrics.requests.increment()
        metrics.duration.recordNanoseconds(ms.seconds * 1_000_000_000 + ms.attoseconds / 1_000_000_000)
        logger.info(
            "request",
            metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.uri.path)", "status": "\(status)",
                "duration_ms": "\(String(format: "%.1f", duration))",
            ])
    }

    /// The route a path belongs to, as a metric label: a documented path, `/files/{key}`, the worker protocol, or
    /// `other` (so a client cannot make labels without end).
    static func route(_ path: String) -> String {
        if RequestMetrics.knownRoutes.contains(path) { return path }
        if path.hasPrefix("/files/") { return Routes.files }
        if path.hasPrefix(WorkerProtocolPaths.base + "/") { return WorkerProtocolPaths.base }
        return "other"
    }

    static func usable(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count), value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return value
    }
}

/// The request metrics' handles by route and status, made once each: making a handle looks it up in the metrics
/// registry (name checks, label sorting, a lock), which per request cost more than counting (issue 16). Both keys
/// are bounded (`RequestLogMiddleware.route` maps every path to a few labels).
enum RequestMetrics {
    struct Handles: Sendable {
        let requests: Counter
        let duration: Timer
    }

    private static let cache = Mutex<[String: Handles]>([:])

    /// The documented paths, each its own route label (made once: labels are looked up for every request).
    static let knownRoutes: Set<String> = [
        Routes.submit, Routes.taskResult, Routes.taskCancel, Routes.taskEvents, Routes.taskWebhooks, Routes.tasks, Routes.healthz,
        Routes.readyz, Routes.openAPI,
    ]

    static func handles(route: String, status: Int) -> Handles {
        let key = "\(status) \(route)"
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let made = Handles(
            requests: Counter(label: "kinema_http_requests_total", dimensions: [("route", route), ("status", "\(status)")]),
            duration: Timer(label: "kinema_http_request_duration_seconds", dimensions: [("route", route)]))
        cache.withLock { $0[key] = made }
        return made
    }
}

/// Request ids for requests that bring none: UUID-shaped text (opaque: no version bits), unique within the process (a
/// counter through a keyed bijection) and across processes (a random half), without a random-number system call per
/// request.
enum RequestIDs {
    private static let node = UInt64.random(in: .min ... .max)
    private static let key = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        // SplitMix64's finalizer: a bijection, so distinct counters give distinct ids.
        var z = n ^ key
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        var bytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &bytes) { out in
            out.storeBytes(of: node.bigEndian, toByteOffset: 0, as: UInt64.self)
            out.storeBytes(of: z.bigEndian, toByteOffset: 8, as: UInt64.self)
        }
        return UUID(uuid: bytes).lowercasedText
    }
}
