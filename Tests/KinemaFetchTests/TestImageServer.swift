import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 server on a loopback address and a free port, with fixed routes for the fetcher's cases.
///
/// Routes:
/// - `/image`: 200 with `imageBody` and a Content-Length.
/// - `/bytes/N`: 200 with N bytes, chunked (no Content-Length); `/bytes/N?declared` sends a Content-Length.
/// - `/redirect/self`: 302 to `/image`; `/redirect/private`: 302 to `http://10.1.2.3/image`;
///   `/redirect/metadata`: 307 to the cloud metadata address; `/redirect/ftp`: 301 to an ftp URL;
///   `/redirect/nolocation`: 302 without Location.
/// - `/loop/a` ↔ `/loop/b`: a redirect loop. `/chain/N`: 302 to `/chain/N+1` until 10, which serves the image.
/// - `/slow`: 200 declaring 1000 bytes, sending one every 100 ms.
/// - anything else: 404.
final class TestImageServer: Sendable {
    /// What a request looked like on arrival.
    struct Received: Sendable {
        var uri: String
        var headers: HTTPHeaders
    }

    /// The body `/image` serves: a PNG signature followed by deterministic filler.
    static let imageBody: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + (0..<2000).map { UInt8($0 % 251) }

    let port: Int
    let host: String
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    private let recorder: Recorder

    /// Starts a server on `host`, runs `body` with it, and stops it whatever `body` does.
    static func with<T: Sendable>(
        host: String = "127.0.0.1",
        _ body: (TestImageServer) async throws -> T
    ) async throws -> T {
        let server = try await TestImageServer(host: host)
        do {
            let result = try await body(server)
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    private init(host: String) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let recorder = Recorder()
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.configureHTTPServerPipeline()
                        try child.pipeline.syncOperations.addHandler(RouteHandler(recorder: recorder))
                    }
                }
                .bind(host: host, port: 0)
                .get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        self.group = group
        self.host = host
        self.recorder = recorder
        self.port = channel.localAddress?.port ?? 0
    }

    /// The base URL, e.g. "http://127.0.0.1:40123" or "http://[::1]:40123".
    var baseURL: String {
        host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
    }

    /// How many TCP connections were accepted.
    var connectionCount: Int { recorder.log.withLock { $0.connections } }

    /// The requests received so far, in order.
    var requests: [Received] { recorder.log.withLock { $0.requests } }

    /// The paths requested so far, in order.
    var paths: [String] { requests.map(\.uri) }

    private func stop() async throws {
        try? await channel.close()
        try await group.shutdownGracefully()
    }
}

/// The server's log, shared with the per-connection handlers.
private final class Recorder: Sendable {
    let log = Mutex<(connections: Int, requests: [TestImageServer.Received])>((0, []))
}

/// Answers each request from the route table; one instance per connection, used only on its event loop.
private final class RouteHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let recorder: Recorder
    private var head: HTTPRequestHead?
    private var active = true

    init(recorder: Recorder) {
        self.recorder = recorder
    }

    func channelActive(context: ChannelHandlerContext) {
        recorder.log.withLock { $0.connections += 1 }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            recorder.log.withLock { $0.requests.append(.init(uri: head.uri, headers: head.headers)) }
        case .body:
            break
        case .end:
            if let head { respond(to: head, context: context) }
            head = nil
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? "/"
        let query = parts.count > 1 ? String(parts[1]) : ""
        let segments = path.split(separator: "/").map(String.init)

        switch segments {
        case ["image"]:
            send(context, .ok, body: TestImageServer.imageBody)
        case let s where s.count == 2 && s[0] == "bytes":
            let count = Int(s[1]) ?? 0
            let body = [UInt8](repeating: 0xAB, count: count)
            if query == "declared" {
                send(context, .ok, body: body)
            } else {
                sendChunked(context, body: body, chunk: 500)
            }
        case ["redirect", "self"]:
            redirect(context, .found, to: "/image")
        case ["redirect", "private"]:
            redirect(context, .found, to: "http://10.1.2.3/image")
        case ["redirect", "metadata"]:
            redirect(context, .temporaryRedirect, to: "http://169.254.169.254/latest/meta-data/")
        case ["redirect", "ftp"]:
            redirect(context, .movedPermanently, to: "ftp://127.0.0.1/image")
        case ["redirect", "nolocation"]:
            send(context, .found, body: [])
        case ["loop", "a"]:
            redirect(context, .found, to: "/loop/b")
        case ["loop", "b"]:
            redirect(context, .found, to: "/loop/a")
        case let s where s.count == 2 && s[0] == "chain":
            let step = Int(s[1]) ?? 0
            if step >= 10 {
                send(context, .ok, body: TestImageServer.imageBody)
            } else {
                redirect(context, .found, to: "/chain/\(step + 1)")
            }
        case ["slow"]:
            sendSlowly(context, total: 1000)
        default:
            send(context, .notFound, body: Array("not found".utf8))
        }
    }

    private func send(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "\(body.count)")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func redirect(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, to location: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Location", value: location)
        headers.add(name: "Content-Length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func sendChunked(_ context: ChannelHandlerContext, body: [UInt8], chunk: Int) {
        var headers = HTTPHeaders()
        headers.add(name: "Transfer-Encoding", value: "chunked")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        var offset = 0
        while offset < body.count {
            let end = min(offset + chunk, body.count)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body[offset..<end])))), promise: nil)
            offset = end
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Declares `total` bytes and trickles them out, one per 100 ms, until done or the peer leaves.
    private func sendSlowly(_ context: ChannelHandlerContext, total: Int) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "\(total)")
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        trickle(context.loopBound, remaining: total)
    }

    private func trickle(_ context: NIOLoopBound<ChannelHandlerContext>, remaining: Int) {
        let loop = context.value.eventLoop
        loop.assumeIsolated().scheduleTask(in: .milliseconds(100)) {
            guard self.active else { return }
            let context = context.value
            if remaining == 0 {
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: [0x42])))), promise: nil)
            self.trickle(context.loopBound, remaining: remaining - 1)
        }
    }
}
