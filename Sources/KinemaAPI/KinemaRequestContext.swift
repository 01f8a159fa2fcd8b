import Hummingbird
import NIOCore

/// The request context of Kinema's routes: Hummingbird's basic context plus the request's channel, so a handler
/// can tell the connection guard that it is about to read the body (`100 Continue`).
struct KinemaRequestContext: RequestContext {
    /// Hummingbird's per-request storage (logger, parameters, endpoint path).
    var coreContext: CoreRequestContextStorage
    /// The connection the request came on.
    let channel: any Channel

    /// A context for a request arriving on `source.channel`.
    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Call right before reading a request body: when the client holds its body back until told to send it
    /// (`Expect: 100-continue`), the connection guard answers `100 Continue` now. Everything that can be refused
    /// from the head (key, route, announced length) must be checked before this, so a refused client never sends
    /// its body at all.
    func acceptBody() async {
        let channel = self.channel
        // Waits until the 100 is queued on the connection, so it goes out before any final response.
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: HTTPConnectionGuard.self).sendContinueIfExpected()
        }.get()
    }

    /// Calls `gone` (on the event loop) once the client has stopped sending — it closed the connection, or half-closed
    /// it — or at once if it already has. Nothing is called where the connection has no guard (router tests).
    func whenClientStopsSending(_ gone: @escaping @Sendable () -> Void) async {
        let channel = self.channel
        try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: HTTPConnectionGuard.self).onInputEnded(gone)
        }.get()
    }
}
