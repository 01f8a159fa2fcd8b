import Foundation
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore

/// An error as the contract shows it: HTTP status, reason, message, metadata, and an optional `Retry-After`.
///
/// The one place where internal errors become wire errors; anything unexpected becomes a plain 500
/// whose message leaks nothing internal.
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var reason: String
    public var message: String
    public var metadata: [String: String]
    public var retryAfterSeconds: Int?

    public init(_ status: HTTPResponse.Status, _ reason: String, _ message: String, metadata: [String: String] = [:], retryAfter: Int? = nil) {
        self.status = status
        self.reason = reason
        self.message = message
        self.metadata = metadata
        self.retryAfterSeconds = retryAfter
    }

    /// A validation problem: always 400 with `metadata.field`.
    public init(_ error: ValidationError) {
        self.init(.badRequest, error.kind.reason, error.message, metadata: ["field": error.field])
    }

    static let missingAPIKey = APIError(.badRequest, "MISSING_API_KEY", "The Authorization header is missing or empty; send 'Authorization: Bearer <api key>'.")
    static let invalidAPIKey = APIError(.forbidden, "INVALID_API_KEY", "The API key is unknown, malformed or revoked.")
    static let apiNotFound = APIError(.notFound, "API_NOT_FOUND", "No API exists at this path with this method.")
    static let taskNotFound = APIError(.notFound, "TASK_NOT_FOUND", "No task with this task_id exists for this API key.")
    static let createTaskFailed = APIError(.internalServerError, "CREATE_TASK_FAILED", "The task could not be created because of a server error; please retry.")
    static let getResultFailed = APIError(.internalServerError, "GET_RESULT_FAILED", "The task result could not be read because of a server error; please retry.")
    static let workerRequestFailed = APIError(.internalServerError, "WORKER_REQUEST_FAILED", "The worker request failed because of a server error; please retry.")
    static let unavailable = APIError(.serviceUnavailable, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable; retry after the time in Retry-After.", retryAfter: 5)
    static let storageFull = APIError(.serviceUnavailable, "SERVICE_UNAVAILABLE", "The server's storage is full, so the task could not be stored; retry after the time in Retry-After.", retryAfter: 30)

    /// 429 for a key over its request rate; `seconds` until a request will pass (at least 1, as Retry-After is whole seconds).
    static func rateLimited(retryAfter seconds: TimeInterval, limit: RateLimit) -> APIError {
        let rate = limit.perSecond == limit.perSecond.rounded() ? String(Int(limit.perSecond)) : String(limit.perSecond)
        return APIError(
            .tooManyRequests, "RATE_LIMIT_EXCEEDED",
            "This API key sent more than \(rate) requests per second (bursts of \(limit.burst)); retry after the time in Retry-After.",
            retryAfter: max(1, Int(seconds.rounded(.up)))
        )
    }

    /// 429 for a tenant at its cap of queued and running tasks.
    static func tooManyActiveTasks(limit: Int) -> APIError {
        APIError(
            .tooManyRequests, "RATE_LIMIT_EXCEEDED",
            "This account already has \(limit) queued or running tasks, the most allowed; submit again once some have finished (see Retry-After).",
            retryAfter: 5
        )
    }

    /// The JSON response for this error.
    func response() -> Response {
        let body = ErrorBody(code: Int(status.code), reason: reason, message: message, metadata: metadata)
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfterSeconds { headers[.retryAfter] = String(r) }
        // After a body timeout the rest of the body is not worth reading: close the connection.
        if status == .requestTimeout { headers[.connection] = "close" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONWire.encode(body))))
    }
}

/// JSON encoding with sorted keys, so bytes are stable across processes (Linux key order varies otherwise).
enum JSONWire {
    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own DTOs cannot fail; a failure here is a programming error worth crashing on in tests.
        return try! encoder.encode(value)
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: encode(value))))
    }
}

/// Turns every error thrown below it, including the router's own 404/405, into the contract's error shape.
struct ContractErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Which 500 reason applies to an unexpected failure on this path.
    let unexpectedReason: @Sendable (Request) -> APIError

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response()
        } catch let error as HTTPError {
            switch error.status {
            case .notFound, .methodNotAllowed:
                return APIError.apiNotFound.response()
            case .contentTooLarge:
                return APIError(.contentTooLarge, "REQUEST_BODY_TOO_LARGE", "The request body is larger than the server accepts; images may be at most 10 MB each.").response()
            case .badRequest:
                return APIError(.badRequest, "INVALID_REQUEST_BODY", "The request could not be read.", metadata: ["field": ""]).response()
            default:
                context.logger.error("unexpected HTTP error", metadata: ["status": "\(error.status.code)"])
                return unexpectedReason(request).response()
            }
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return unexpectedReason(request).response()
        }
    }
}
