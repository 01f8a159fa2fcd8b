import Foundation
import Hummingbird
import KinemaCore
import KinemaStore
import NIOCore

/// `GET /v3/async/task-webhooks?task_id=` (ext): the task's webhook deliveries and where each stands, for the task's
/// own tenant (another tenant's or an unknown task is 404, as on every task route).
struct TaskWebhooksController: Sendable {
    let store: any TaskStore
    let auth: Authenticator

    func get(_ request: Request, context: some RequestContext) async throws -> Response {
        let tenant = try await auth.tenant(for: request)
        let raw: String? = request.uri.queryParameters.get("task_id").map { String($0) }
        let id = try TaskResultController.taskID(raw, where: "as a query parameter: /v3/async/task-webhooks?task_id=<id>")
        guard try await TaskResultController.storeCall(context, { try await store.taskStatus(id: id, tenant: tenant) }) != nil else {
            throw APIError.taskNotFound
        }
        let deliveries = try await TaskResultController.storeCall(context) { try await store.webhookDeliveries(taskID: id) }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: TaskWebhooksBody.json(deliveries))))
    }
}

/// The deliveries route's body, also printed by `kinema webhooks list`.
public enum TaskWebhooksBody {
    /// `{"deliveries": [{"webhook_id", "url", "event_type", "status", "attempts", "last_status_code", "last_error",
    /// "next_attempt_ms"}]}`, absent values as `null`.
    public static func json(_ deliveries: [WebhookDelivery]) -> [UInt8] {
        var out = JSONBytes(capacity: 256 * (deliveries.count + 1))
        out.object { o in
            o.key("deliveries")
            o.array(deliveries) { a, d in
                a.object { e in
                    e.key("webhook_id")
                    e.string(d.webhookID)
                    e.key("url")
                    e.string(d.url)
                    e.key("event_type")
                    e.string(d.eventType)
                    e.key("status")
                    e.string(d.status.rawValue)
                    e.key("attempts")
                    e.int(d.attempts)
                    e.key("last_status_code")
                    if let code = d.lastStatusCode { e.int(code) } else { e.null() }
                    e.key("last_error")
                    if let error = d.lastError { e.string(error) } else { e.null() }
                    e.key("next_attempt_ms")
                    if let next = d.nextAttemptAt { e.int(Int((next.timeIntervalSince1970 * 1000).rounded())) } else { e.null() }
                }
            }
        }
        return out.bytes
    }
}
