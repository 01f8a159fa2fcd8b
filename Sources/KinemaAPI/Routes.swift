import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore

/// The public routes' paths, and the worker protocol's routes as docs/worker-protocol.md lists them. A test compares
/// what the router actually registers (`KinemaServer.registeredRoutes()`) with the OpenAPI document and this list.
public enum Routes {
    public static let submit = "/v3/async/kling-v3.0-std-i2v"
    public static let taskResult = "/v3/async/task-result"
    public static let taskCancel = "/v3/async/task-cancel"
    public static let taskEvents = "/v3/async/task-events"
    public static let taskWebhooks = "/v3/async/task-webhooks"
    public static let tasks = "/v3/async/tasks"
    public static let healthz = "/healthz"
    public static let readyz = "/readyz"
    public static let openAPI = "/openapi.yaml"
    public static let files = "/files/{key}"
    /// The web playground's page and files (`--no-playground` turns them off): not API, so not in the OpenAPI document.
    public static let playground = ["/", Playground.scriptPath, Playground.stylePath]

    /// (method, path) of every remote worker route (`docs/worker-protocol.md`); internal, so not in the OpenAPI document.
    public static let workerRoutes: [(method: String, path: String)] = WorkerRoute.allCases.map { ($0.method.lowercased(), $0.template) }
}

/// Builds the router with every controller and the contract error middleware.
func buildRouter(
    submit: SubmitController, taskResult: TaskResultController, cancel: TaskCancelController, events: TaskEventsController,
    webhooks: TaskWebhooksController, list: TaskListController, files: FilesController, store: any TaskStore,
    draining: DrainState,
    engineStatus: EngineStatusBoard = EngineStatusBoard(), worker: WorkerProtocolController? = nil, playground: Playground? = nil
) -> Router<KinemaRequestContext> {
    let router = Router(context: KinemaRequestContext.self)
    // Outermost: it logs the answer the contract middleware made of any error, and stamps X-Request-Id on it.
    router.add(middleware: RequestLogMiddleware())
    router.add(
        middleware: ContractErrorMiddleware { request in
            if request.uri.path.hasPrefix(WorkerProtocolPaths.base + "/") { return APIError.workerRequestFailed }
            return request.method == .post ? APIError.createTaskFailed : APIError.getResultFailed
        })
    worker?.addRoutes(to: router)
    playground?.addRoutes(to: router)
    router.post(RouterPath(stringLiteral: Routes.submit)) { request, context in
        try await submit.submit(request, context: context)
    }
    router.get(RouterPath(stringLiteral: Routes.taskResult)) { request, context in
        try await taskResult.get(request, context: context)
    }
    router.post(RouterPath(stringLiteral: Routes.taskCancel)) { request, context in
        try await cancel.cancel(request, context: context)
    }
    router.get(RouterPath(stringLiteral: Routes.taskEvents)) { request, context in
        try await events.events(request, context: context)
    }
    router.get(RouterPath(stringLiteral: Routes.tasks)) { request, context in
        try await list.list(request, context: context)
    }
    router.get(RouterPath(stringLiteral: Routes.taskWebhooks)) { request, context in
        try await webhooks.get(request, context: context)
    }
    router.get("/files/**") { request, context in
        try await files.get(request, context: context, headOnly: false)
    }
    router.head("/files/**") { request, context in
        try await files.get(request, context: context, headOnly: true)
    }
    // HEAD answers like GET (monitors use it); the HTTP encoder leaves the body out.
    let healthz: @Sendable (Request, KinemaRequestContext) async throws -> Response = { _, _ in
        JSONWire.response(["status": "ok"])
    }
    router.get(RouterPath(stringLiteral: Routes.healthz), use: healthz)
    router.head(RouterPath(stringLiteral: Routes.healthz), use: healthz)
    let readyz: @Sendable (Request, KinemaRequestContext) async throws -> Response = { _, _ in
        if draining.isDraining {
            throw APIError(.serviceUnavailable, "SERVICE_UNAVAILABLE", "This node is shutting down.", retryAfter: 5)
        }
        do {
            try await store.ping()
        } catch {
            throw APIError(.serviceUnavailable, "SERVICE_UNAVAILABLE", "The task store is unreachable.", retryAfter: 5)
        }
        // A paused upstream provider leaves the node ready (its tasks wait), but says so. Each node pauses a provider when
        // its own calls meet an account refusal, so nodes learn of it one by one.
        let paused = engineStatus.pausedEngines
        if paused.isEmpty { return JSONWire.response(["status": "ready"]) }
        return JSONWire.response(ReadyWithPausedEngines(status: "ready", pausedEngines: paused))
    }
    router.get(RouterPath(stringLiteral: Routes.readyz), use: readyz)
    router.head(RouterPath(stringLiteral: Routes.readyz), use: readyz)
    router.get(RouterPath(stringLiteral: Routes.openAPI)) { _, _ in
        Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml)))
    }
    return router
}

/// `/readyz` while an engine is paused: which, and the provider's words.
private struct ReadyWithPausedEngines: Encodable {
    var status: String
    var pausedEngines: [String: String]

    enum CodingKeys: String, CodingKey {
        case status
        case pausedEngines = "paused_engines"
    }
}
