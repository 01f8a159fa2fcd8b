import Foundation
import Hummingbird
import KinemaAPIModels
import KinemaCore
import KinemaStore
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Logging

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
    /// Whether the connection is closed after this answer (the rest of the request cannot or need not be read).
    public var closesConnection: Bool
    /// Further header fields of the answer (e.g. `Content-Range` on a 416).
    public var extraHeaders: HTTPFields

    public init(
        _ status: HTTPResponse.Status, _ reason: String, _ message: String, metadata: [String: String] = [:], retryAfter: Int? = nil,
        closesConnection: Bool = false, extraHeaders: HTTPFields = [:]
    ) {
        self.status = status
        self.reason = reason
        self.message = message
        self.metadata = metadata
        self.retryAfterSeconds = retryAfter
        // After a body timeout the rest of the body is not worth reading.
        self.closesConnection = closesConnection || status == .requestTimeout
        self.extraHeaders = extraHeaders
    }

    /// A validation problem: always 400 with `metadata.field`.
    public init(_ error: ValidationError) {
        self.init(.badRequest, error.kind.reason, error.message, metadata: ["field": error.field])
    }

    static let missingAPIKey = APIError(
        .badRequest, "MISSING_API_KEY", "The Authorization header is missing or empty; send 'Authorization: Bearer <api key>'.")
    static let invalidAPIKey = APIError(.forbidden, "INVALID_API_KEY", "The API key is unknown, malformed or revoked.")
    static let apiNotFound = APIError(.notFound, "API_NOT_FOUND", "No API exists at this path with this method.")
    static let taskNotFound = APIError(.notFound, "TASK_NOT_FOUND", "No task with this task_id exists for this API key.")
    static let createTaskFailed = APIError(
        .internalServerError, "CREATE_TASK_FAILED", "The task could not be created because of a server error; please retry.")
    static let getResultFailed = APIError(
        .internalServerError, "GET_RESULT_FAILED", "The task result could not be read because of a server error; please retry.")
    static let workerRequestFailed = APIError(
        .internalServerError, "WORKER_REQUEST_FAILED", "The worker request failed because of a server error; please retry.")
    static let unavailable = APIError(
        .serviceUnavailable, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable; retry after the time in Retry-After.", retryAfter: 5)
    static let storageFull = APIError(
        .serviceUnavailable, "SERVICE_UNAVAILABLE",
        "The server's storage is full, so the task could not be stored; retry after the time in Retry-After.", retryAfter: 30)
    /// 413 for a body announced by `Content-Length` over the cap, answered before reading it. The connection stays
    /// usable (the announced body is read and discarded, as clients that do not wait for `100 Continue` send it
    /// anyway and report a broken connection instead of the answer otherwise); after `Expect: 100-continue` the
    /// connection guard closes it instead, as the body never comes.
    static let requestBodyTooLarge = APIError(
        .contentTooLarge, "REQUEST_BODY_TOO_LARGE",
        "The request body is larger than the server accepts; images may be at most 10 MB each."
    )
    /// 413 for a chunked body found over the cap while reading: its end is unknown, so the connection closes.
    static let chunkedBodyTooLarge = APIError(
        .contentTooLarge, "REQUEST_BODY_TOO_LARGE",
        "The request body is larger than the server accepts; images may be at most 10 MB each.", closesConnection: true
    )
    /// 408 for a connection that did not finish its request head within the header timeout.
    static func headerTimedOut(after seconds: Int) -> APIError {
        APIError(.requestTimeout, "REQUEST_TIMEOUT", "The request head did not arrive within \(seconds) s; send it at once and retry.")
    }

    /// The contract's answer to a client's HTTP mistake found below the router (framing, head syntax, limits of the
    /// head, a body cut short or over its cap), or `nil` when `error` is not one (a server failure).
    ///
    /// Every such answer closes the connection: after broken framing the next request cannot be found reliably.
    init?(clientError error: any Error) {
        switch error {
        case let e as APIError:
            self = e
        case is NIOTooManyBytesError:
            self = .chunkedBodyTooLarge
        case let e as HTTPParserError:
            self = Self.framing(e)
        case ByteToMessageDecoderError.dataReceivedInErrorState(let inner as HTTPParserError, _):
            self = Self.framing(inner)
        case is HTTP1TypeConversionError:
            // swift-http-types refuses heads NIO's parser let through (a bad method token, bad field names, no Host).
            self = APIError(
                .badRequest, "INVALID_REQUEST_BODY",
                "The request head is not valid HTTP/1.1 (method, target, version or a header field); fix it and retry.", metadata: ["field": "head"],
                closesConnection: true)
        default:
            return nil
        }
    }

    /// 431 for a request head over the decoder's limits.
    /// An `Expect` header other than `100-continue` (RFC 9110: 417).
    static func expectationFailed(_ expectation: String) -> APIError {
        APIError(
            .expectationFailed, "EXPECTATION_FAILED",
            "The Expect header '\(expectation.prefix(64))' cannot be met; only 'Expect: 100-continue' is supported (or send no Expect header).",
            metadata: ["field": "Expect"], closesConnection: true
        )
    }

    static let headTooLarge = APIError(
        .requestHeaderFieldsTooLarge, "REQUEST_HEADERS_TOO_LARGE",
        "The request head is too large: at most 1000 header fields of 80 KiB in all are accepted.", metadata: ["field": "head"],
        closesConnection: true
    )

    /// The answer to a parser error: 431 for a head over the limits, 400 for everything else.
    private static func framing(_ error: HTTPParserError) -> APIError {
        let detail: String
        switch error {
        case .headerOverflow:
            return headTooLarge
        case .invalidMethod:
            detail = "the method is not an HTTP method"
        case .invalidVersion:
            detail = "the request line must be 'METHOD target HTTP/1.1' and every line must end with CRLF"
        case .unexpectedContentLength, .invalidContentLength:
            detail = "Content-Length is invalid, repeated, or sent together with Transfer-Encoding"
        case .invalidChunkSize:
            detail = "a chunk size of the chunked body is invalid"
        case .invalidEOFState:
            detail = "the connection ended before the whole request arrived"
        case .lfExpected:
            detail = "lines must end with CRLF"
        case .invalidHeaderToken, .invalidCharactersUsed:
            detail = "a header field has an invalid character"
        default:
            // llhttp reports smuggling-shaped framing (Content-Length with Transfer-Encoding, a Transfer-Encoding
            // that does not end in chunked) without a specific code.
            detail = "its framing is invalid (Content-Length, Transfer-Encoding and chunking must follow RFC 9112)"
        }
        return APIError(
            .badRequest, "INVALID_REQUEST_BODY", "The request could not be read: \(detail).", metadata: ["field": "framing"], closesConnection: true)
    }

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
        let body = bodyBytes()
        return Response(status: status, headers: headerFields(contentLength: body.readableBytes), body: .init(byteBuffer: body))
    }

    /// The contract's JSON body of this error.
    func bodyBytes() -> ByteBuffer {
        ByteBuffer(bytes: JSONWire.encode(ErrorBody(code: Int(status.code), reason: reason, message: message, metadata: metadata)))
    }

    /// The answer's header fields: JSON, `Retry-After` when set, `Connection: close` when the connection ends after it.
    func headerFields(contentLength: Int) -> HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json", .contentLength: String(contentLength)]
        if let r = retryAfterSeconds { headers[.retryAfter] = String(r) }
        if closesConnection { headers[.connection] = "close" }
        headers.append(contentsOf: extraHeaders)
        return headers
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
                return APIError.requestBodyTooLarge.response()
            case .badRequest:
                return APIError(.badRequest, "INVALID_REQUEST_BODY", "The request could not be read.", metadata: ["field": ""]).response()
            default:
                context.logger.error("unexpected HTTP error", metadata: ["status": "\(error.status.code)"])
                return unexpectedReason(request).response()
            }
        } catch {
            // A client's mistake found while reading the body (bad chunk framing, a body over the cap, a client that
            // went away) is the client's 4xx, worth an info line at most; only what remains is a server failure.
            if let clientError = APIError(clientError: error) {
                context.logger.info(
                    "refused a malformed request",
                    metadata: ["status": "\(clientError.status.code)", "reason": "\(clientError.reason)", "path": "\(request.uri.path)"])
                return clientError.response()
            }
            context.logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))", "path": "\(request.uri.path)"])
            return unexpectedReason(request).response()
        }
    }
}
