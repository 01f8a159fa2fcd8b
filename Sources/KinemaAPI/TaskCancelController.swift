import Foundation
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import KinemaWorker
import Logging
import NIOCore

/// `POST /v3/async/task-cancel` (ext) with `{"task_id": "…"}`: a queued or running task ends `TASK_STATUS_FAILED` with
/// reason `canceled` (a running attempt's worker is fenced out at its next heartbeat and stores nothing); a finished
/// one is returned unchanged. The answer is the Task Result body after the cancel.
struct TaskCancelController: Sendable {
    let store: any TaskStore
    let auth: Authenticator
    let links: ResultLinks
    let bodyTimeoutSeconds: Int
    /// Renders of this process: a canceled one stops at once (others learn it at their next heartbeat).
    let running: RunningTasks

    /// `{"task_id": "<uuid>"}` with room to spare; a larger body is not a cancel.
    static let maxBodyBytes = 4096

    func cancel(_ request: Request, context: KinemaRequestContext) async throws -> Response {
        let tenant = try await auth.tenant(for: request)
        if let length = request.headers[.contentLength].flatMap(Int.init), length > Self.maxBodyBytes {
            throw Self.tooLarge
        }
        await context.acceptBody()
        // A chunked body over the cap stops the collector, answered 413 (closing the connection) by the middleware.
        let body = try await BodyDeadline.collect(request.body, upTo: Self.maxBodyBytes, within: bodyTimeoutSeconds)
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard let json else {
            throw APIError(
                .badRequest, "INVALID_REQUEST_BODY", "The body must be a JSON object: {\"task_id\": \"<id>\"}.", metadata: ["field": "task_id"])
        }
        let id = try TaskResultController.taskID(json["task_id"] as? String, where: "in the body: {\"task_id\": \"<id>\"}")
        guard let task = try await TaskResultController.storeCall(context, { try await store.cancel(id: id, tenant: tenant, now: Date()) }) else {
            throw APIError.taskNotFound
        }
        if task.status == .canceled {
            running.cancel(id)
            context.logger.info("task canceled", metadata: ["task": "\(id)"])
        }
        let bytes = TaskResultBody(task, links: links, now: Date()).jsonBytes()
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private static let tooLarge = APIError(
        .contentTooLarge, "REQUEST_BODY_TOO_LARGE", "A cancel body is {\"task_id\": \"<id>\"}, at most \(maxBodyBytes) bytes.")
}
