import Foundation
import HTTPTypes
import Hummingbird
import KinemaAPIModels
import Logging
import Metrics

/// One log line per request (method, path, status, duration, request id), and an `X-Request-Id` on every answer: the
/// client's own when it sent a usable one (1–128 printable ASCII characters), else a new one. The id is also in the
/// request's logger metadata, so every line a request logs carries it.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    static var header: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = Self.usable(request.headers[Self.header]) ?? UUID().uuidString.lowercased()
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
        let route = Self.route(request.uri.path)
        Counter(label: "kinema_http_requests_total", dimensions: [("route", route), ("status", "\(status)")]).increment()
        Timer(label: "kinema_http_request_duration_seconds", dimensions: [("route", route)]).recordNanoseconds(
            ms.seconds * 1_000_000_000 + ms.attoseconds / 1_000_000_000)
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
        let known = [
            Routes.submit, Routes.taskResult, Routes.taskCancel, Routes.taskEvents, Routes.taskWebhooks, Routes.tasks, Routes.healthz,
            Routes.readyz, Routes.openAPI,
        ]
        if known.contains(path) { return path }
        if path.hasPrefix("/files/") { return Routes.files }
        if path.hasPrefix(WorkerProtocolPaths.base + "/") { return WorkerProtocolPaths.base }
        return "other"
    }

    static func usable(_ value: String?) -> String? {
        guard let value, (1...128).contains(value.utf8.count), value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return value
    }
}
