import Foundation
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import NIOCore

/// `GET /v3/async/tasks?limit=&cursor=` (ext): the caller's tenant's tasks, newest first, each as a Task Result body:
/// `{"tasks": [...], "next_cursor": <string or null>}`.
struct TaskListController: Sendable {
    let store: any TaskStore
    let auth: Authenticator
    let links: ResultLinks

    static let defaultLimit = 20
    static let maxLimit = 100

    func list(_ request: Request, context: some RequestContext) async throws -> Response {
        let tenant = try await auth.tenant(for: request)
        let query = request.uri.queryParameters
        var limit = Self.defaultLimit
        if let raw = query.get("limit").map({ String($0) }) {
            guard let value = Int(raw), (1...Self.maxLimit).contains(value) else {
                throw APIError(
                    .badRequest, "INVALID_REQUEST_BODY", "limit must be an integer from 1 to \(Self.maxLimit), not '\(raw.prefix(32))'.",
                    metadata: ["field": "limit"])
            }
            limit = value
        }
        var cursor: TaskPageCursor?
        if let raw = query.get("cursor").map({ String($0) }), !raw.isEmpty {
            guard let parsed = TaskPageCursor(text: raw) else {
                throw APIError(
                    .badRequest, "INVALID_REQUEST_BODY", "cursor must be a next_cursor this API returned.", metadata: ["field": "cursor"])
            }
            cursor = parsed
        }
        // One more than asked: whether there is a next page, without a second read.
        let page = try await TaskResultController.storeCall(context) { try await store.tasks(tenant: tenant, limit: limit + 1, after: cursor) }
        let shown = Array(page.prefix(limit))
        let next = page.count > limit ? shown.last.map { TaskPageCursor(after: $0).text } : nil
        let now = Date()
        var out = JSONBytes(capacity: 512 * (shown.count + 1))
        out.object { o in
            o.key("tasks")
            o.array(shown) { a, task in a.raw(TaskResultBody(task, links: links, now: now).jsonBytes()) }
            o.key("next_cursor")
            if let next { o.string(next) } else { o.null() }
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: out.bytes)))
    }
}
