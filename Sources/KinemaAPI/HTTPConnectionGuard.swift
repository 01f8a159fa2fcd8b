import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// One HTTP/1.1 connection's guard, between the HTTP codec and Hummingbird's request handling.
///
/// It
/// - registers the connection with the `ConnectionRegistry` (caps in all and per client address; idle connections
///   are evicted to make room) and tells it when the connection is mid-request and when it is idle again;
/// - closes a connection that has not sent a complete request head within the header timeout: counted from the
///   accept for the first request, and from the first byte of each later request (between requests the keep-alive
///   idle timeout applies); a connection that had started a head gets 408 `REQUEST_TIMEOUT` first;
/// - answers what the HTTP parser refuses (bad framing, bad syntax, a head over the limits, a body cut short) in
///   the contract's error shape, and closes;
/// - sends `100 Continue` when the request handler starts reading a body the client is holding back
///   (`Expect: 100-continue`), and closes after a final answer that leaves a request body unread;
/// - adds `X-Content-Type-Options: nosniff` to every response;
/// - closes gracefully: after an answer that ends the connection it discards what still arrives and closes once
///   the client closes or a short grace period passed, so the client reads the answer instead of a reset.
final class HTTPConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What every connection of a server shares.
    struct Settings: Sendable {
        /// The node's connections.
        let registry: ConnectionRegistry
        /// Time allowed for a complete request head.
        let headerTimeoutSeconds: Int
        /// How long a connection that is being closed keeps discarding input, at most.
        var lingerTimeout: TimeAmount = .seconds(5)
    }

    /// The header field added to every response.
    static let contentTypeOptions = HTTPField.Name("X-Content-Type-Options")!

    /// The server's shared settings.
    private let settings: Settings
    /// Where refusals and timeouts are logged (debug/info only: they are the client's doing).
    private let logger: Logger
    /// This handler's context while it is in the pipeline (for the observer's and the request handler's calls).
    private var context: ChannelHandlerContext?
    /// Whether the connection was offered to the registry already.
    private var activated = false
    /// The connection's id in the registry, once admitted.
    private var registryID: UInt64?

    /// Requests whose head arrived and whose response has not ended.
    private var requestsInProgress = 0
    /// Between a request head and its end: body bytes are arriving.
    private var readingRequest = false
    /// Bytes of a request head arrived and the head is not complete yet.
    private var headStarted = false
    /// When the current head's first bytes arrived.
    private var headStartedAt: NIODeadline?
    /// The request being read asked for `100 Continue` before sending its body.
    private var expectsContinue = false
    /// `100 Continue` was sent for the request being read.
    private var continueSent = false
    /// A final response head was written and its end not yet.
    private var responseInProgress = false
    /// The connection ends once the current response is out.
    private var closeAfterResponse = false
    /// An error answer waiting for the current response to end (the error belongs to the next request).
    private var pendingAnswer: APIError?
    /// Set once the connection is closing: responses are dropped, input is discarded.
    private(set) var isClosing = false
    /// Closes the connection when a request head takes longer than the header timeout.
    private var headerTimer: Scheduled<Void>?
    /// Closes a closing connection whose client does not close its side.
    private var lingerTimer: Scheduled<Void>?
    /// The client stopped sending (closed or half-closed its side) or the connection ended.
    private var inputEnded = false
    /// Called once when `inputEnded` becomes true (`onInputEnded`).
    private var inputEndedWatchers: [@Sendable () -> Void] = []

    /// A guard with the server's settings.
    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    // MARK: Lifecycle

    /// Puts the raw-byte observer in front of the HTTP decoder and, on an active channel, registers the connection.
    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The observer sees bytes before the decoder does: the first byte of a request head starts its timer.
        try? context.pipeline.syncOperations.addHandler(RequestBytesObserver(guard: self), position: .first)
        if context.channel.isActive { activate(context) }
    }

    /// Cancels the timers and leaves the registry.
    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimers()
        leaveRegistry()
        self.context = nil
    }

    /// Registers the connection once it is active.
    func channelActive(context: ChannelHandlerContext) {
        activate(context)
        context.fireChannelActive()
    }

    /// Leaves the registry.
    func channelInactive(context: ChannelHandlerContext) {
        cancelTimers()
        leaveRegistry()
        endInput()
        context.fireChannelInactive()
    }

    /// Calls `watcher` once the client has stopped sending (closed or half-closed its side, or the connection ended),
    /// at once when it already has: a long-poll uses it to stop waiting for a client that is gone. On the event loop.
    func onInputEnded(_ watcher: @escaping @Sendable () -> Void) {
        if inputEnded { watcher() } else { inputEndedWatchers.append(watcher) }
    }

    private func endInput() {
        guard !inputEnded else { return }
        inputEnded = true
        let watchers = inputEndedWatchers
        inputEndedWatchers = []
        for watcher in watchers { watcher() }
    }

    /// Offers the connection to the registry: admitted (evicting idle ones to make room) or refused and closed.
    private func activate(_ context: ChannelHandlerContext) {
        guard !activated else { return }
        activated = true
        let channel = context.channel
        let client = channel.remoteAddress?.ipAddress ?? "unknown"
        switch settings.registry.admit(client: client, close: { channel.close(promise: nil) }) {
        case .admitted(let id, let evicting):
            logger.trace(
                "connection admitted", metadata: ["client": "\(client)", "open": "\(settings.registry.count)", "evicting": "\(evicting.count)"])
            registryID = id
            if !evicting.isEmpty { logger.debug("closed idle connections to make room", metadata: ["count": "\(evicting.count)"]) }
            for close in evicting { close() }
            // Accepted while the loop decided to wait (it counted this connection before it could tell it is idle).
            settings.registry.wakeAcceptLoopIfWaiting()
            startHeaderTimer(context)
        case .refused(let evicting):
            for close in evicting { close() }
            logger.info("refused a connection over the per-client cap", metadata: ["client": "\(client)"])
            isClosing = true
            // Not from inside the pipeline's set-up: the rest of it is still being added.
            context.eventLoop.assumeIsolated().execute { channel.close(promise: nil) }
        }
    }

    /// Removes the connection from the registry (idempotent).
    private func leaveRegistry() {
        if let id = registryID { settings.registry.remove(id) }
        registryID = nil
    }

    // MARK: Inbound

    /// Called by the observer for every read: the first bytes of a request head start its header time. The timer
    /// itself starts at the end of the read, and only if the head is still incomplete then: most heads arrive whole in
    /// one read, and a timer scheduled and cancelled for each of them cost a few percent of a poll (issue 16).
    func requestBytesArrived() {
        guard !readingRequest, !headStarted, !isClosing else { return }
        headStarted = true
        headStartedAt = .now()
        if let id = registryID, requestsInProgress == 0 { settings.registry.markHeadStarted(id) }
    }

    /// The end of a read: a head that started and is still incomplete gets its timer, counted from its first byte.
    func channelReadComplete(context: ChannelHandlerContext) {
        if headStarted, !readingRequest, headerTimer == nil, !isClosing {
            startHeaderTimer(context, elapsed: headStartedAt.map { .now() - $0 } ?? .zero)
        }
        context.fireChannelReadComplete()
    }

    /// Tracks request heads and ends.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if isClosing { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            cancelHeaderTimer()
            headStarted = false
            requestsInProgress += 1
            readingRequest = true
            let expectation = head.headerFields[.expect]?.lowercased()
            expectsContinue = expectation == "100-continue"
            continueSent = false
            if let id = registryID { settings.registry.markBusy(id) }
            if let expectation, expectation != "100-continue" {
                // RFC 9110 §10.1.1: an expectation the server cannot meet is answered 417, before any body is sent;
                // the request never reaches a route and the connection closes.
                answer(.expectationFailed(expectation), context: context)
                return
            }
        case .body:
            break
        case .end:
            readingRequest = false
        }
        context.fireChannelRead(data)
    }

    /// Answers the client's HTTP mistakes in the contract's shape; passes everything on so a handler reading the
    /// body stops at once (its own answer is dropped: this one went first).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if isClosing { return } // more of the same after the answer (e.g. data received in the decoder's error state)
        guard let answer = APIError(clientError: error) else {
            context.fireErrorCaught(error)
            return
        }
        logger.debug("refused a malformed request", metadata: ["status": "\(answer.status.code)", "error": "\(error)"])
        if responseInProgress {
            // Too late to answer: end the connection once this response is out.
            closeAfterResponse = true
        } else if requestsInProgress > 0, !readingRequest {
            // The current request was read whole; the error is the next one's: answer it after this response.
            pendingAnswer = answer
            closeAfterResponse = true
        } else {
            self.answer(answer, context: context)
        }
        context.fireErrorCaught(error)
    }

    /// Tells the watchers that the client stopped sending; after an answer that closes, closes now.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event as? ChannelEvent == .inputClosed { endInput() }
        if isClosing, event as? ChannelEvent == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Outbound

    /// Adds the response headers, decides whether the connection ends with this response, and ends it.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if isClosing {
            // The connection's answer was already given; what the request handler writes now has nowhere to go.
            promise?.succeed(())
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var response):
            if response.status.kind == .informational {
                if response.status == .continue { continueSent = true }
                context.write(data, promise: promise)
                return
            }
            responseInProgress = true
            response.headerFields[Self.contentTypeOptions] = "nosniff"
            if response.headerFields[.connection]?.lowercased() == "close" { closeAfterResponse = true }
            // A final answer while the body is held back (`Expect: 100-continue` and no 100 sent): the client will not
            // send it, so where the next request starts is unknown; close. (Any other unread body is read and
            // discarded by Hummingbird before the next request, as clients send it anyway.)
            if readingRequest, expectsContinue, !continueSent { closeAfterResponse = true }
            if closeAfterResponse { response.headerFields[.connection] = "close" }
            context.write(wrapOutboundOut(.head(response)), promise: promise)
        case .body:
            context.write(data, promise: promise)
        case .end:
            responseInProgress = false
            requestsInProgress = max(0, requestsInProgress - 1)
            if closeAfterResponse {
                context.write(data, promise: promise)
                if let pending = pendingAnswer {
                    pendingAnswer = nil
                    answer(pending, context: context)
                } else {
                    closeGracefully(context)
                }
                return
            }
            if requestsInProgress == 0, let id = registryID, settings.registry.markIdle(id) {
                // A newcomer waits for a slot and every other connection is busy: this keep-alive gives way, as
                // soon as its response is out (the request was read whole, so nothing is left to drain).
                isClosing = true
                cancelHeaderTimer()
                let written = context.eventLoop.makePromise(of: Void.self)
                if let promise { written.futureResult.cascade(to: promise) }
                context.writeAndFlush(data, promise: written)
                written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
            context.write(data, promise: promise)
            if requestsInProgress == 0, registryID != nil {
                if headStarted {
                    // The next request's first bytes came while this one was answered.
                    startHeaderTimer(context)
                }
            }
        }
    }

    // MARK: 100 Continue

    /// Sends `100 Continue` when the request being read asked for it and nothing was answered yet. Request handlers
    /// call this (through `KinemaRequestContext.acceptBody()`) right before they read a body.
    func sendContinueIfExpected() {
        guard let context, expectsContinue, !continueSent, readingRequest, !responseInProgress, !isClosing else { return }
        continueSent = true
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
    }

    // MARK: Closing

    /// Writes `error` as the connection's last answer and closes gracefully.
    private func answer(_ error: APIError, context: ChannelHandlerContext) {
        let body = error.bodyBytes()
        var fields = error.headerFields(contentLength: body.readableBytes)
        fields[.connection] = "close"
        fields[Self.contentTypeOptions] = "nosniff"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: error.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: nil)
        closeGracefully(context)
    }

    /// Flushes, stops answering, discards further input, and closes once the client closes its side (the answer says
    /// `Connection: close`) or the linger time passed. The output stays open meanwhile: a client still uploading
    /// a body it was refused (no `Expect`) finishes its upload and then reads the answer, where a shut output would
    /// make many clients report a broken connection instead of the answer.
    private func closeGracefully(_ context: ChannelHandlerContext) {
        guard !isClosing else { return }
        isClosing = true
        cancelHeaderTimer()
        if let id = registryID { settings.registry.markClosing(id) }
        context.flush()
        lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: settings.lingerTimeout) {
            context.close(promise: nil)
        }
    }

    /// Starts the header timeout unless it runs already; `elapsed` of it passed already.
    private func startHeaderTimer(_ context: ChannelHandlerContext, elapsed: TimeAmount = .zero) {
        guard headerTimer == nil, !isClosing else { return }
        let left = max(.zero, .seconds(Int64(settings.headerTimeoutSeconds)) - elapsed)
        headerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: left) { [self] in
            headerTimer = nil
            headerTimedOut(context)
        }
    }

    /// The header timeout passed: 408 for a started head, a silent close otherwise, or a close after the response
    /// in progress.
    private func headerTimedOut(_ context: ChannelHandlerContext) {
        guard !isClosing, context.channel.isActive, !readingRequest else { return }
        if requestsInProgress > 0 {
            // A response is still being produced; the stalled next head ends the connection after it.
            closeAfterResponse = true
            return
        }
        if headStarted {
            logger.debug("request head not complete within the header timeout")
            answer(.headerTimedOut(after: settings.headerTimeoutSeconds), context: context)
        } else {
            // Nothing was asked: close without an answer (an unsolicited response would confuse a client).
            isClosing = true
            context.close(promise: nil)
        }
    }

    /// Stops the header timeout.
    private func cancelHeaderTimer() {
        headerTimer?.cancel()
        headerTimer = nil
    }

    /// Stops both timers.
    private func cancelTimers() {
        cancelHeaderTimer()
        lingerTimer?.cancel()
        lingerTimer = nil
    }
}

/// Sits in front of the HTTP decoder: tells the guard when request bytes arrive, and drops everything once the
/// connection is closing (so the decoder does not parse, or complain about, what follows a refused request).
final class RequestBytesObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The guard this observer reports to.
    private let connectionGuard: HTTPConnectionGuard

    /// An observer reporting to `guard`.
    init(guard connectionGuard: HTTPConnectionGuard) {
        self.connectionGuard = connectionGuard
    }

    /// Reports the read, or drops it when the connection is closing.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if connectionGuard.isClosing { return }
        connectionGuard.requestBytesArrived()
        context.fireChannelRead(data)
    }
}
