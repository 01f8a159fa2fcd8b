import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A real HTTP/1.1 server on 127.0.0.1 (a free port) for stand-ins the tests play: hosted providers, webhook receivers.
/// Each complete request goes to `answer`; `nil` means never answer (the client's timeout ends it).
final class LoopbackServer: Sendable {
    /// A request as it arrived.
    struct Received: Sendable {
        var method: String
        var uri: String
        var headers: [(String, String)]
        var body: Data
        /// When it arrived.
        var at = Date()
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        /// The first value of a header, by case-insensitive name.
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    struct Answer: Sendable {
        var status: Int
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        var body: Data
        static func json(_ object: [String: Any], status: Int = 200) -> Answer {
            Answer(status: status, body: (try? JSONSerialization.data(withJSONObject: object)) ?? Data())
        }
    }

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Listens on `port` (0: a free one).
    init(port: Int = 0, answer: @escaping @Sendable (Received) -> Answer?) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.group = group
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(ChannelOptions.backlog, value: 1024)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        try child.pipeline.syncOperations.configureHTTPServerPipeline()
                        try child.pipeline.syncOperations.addHandler(LoopbackHandler(answer: answer))
                    }
                }
                .bind(host: "127.0.0.1", port: port)
                .get()
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        self.port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// Collects one request at a time and writes the server's answer (or nothing, to hang).
private final class LoopbackHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let answer: @Sendable (LoopbackServer.Received) -> LoopbackServer.Answer?
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(answer: @escaping @Sendable (LoopbackServer.Received) -> LoopbackServer.Answer?) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            guard let head else { return }
            let request = LoopbackServer.Received(
                method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) },
                body: body.withUnsafeReadableBytes { Data($0) })
            self.head = nil
            guard let answer = answer(request) else { return } // hang: the client's timeout ends it
            var headers = HTTPHeaders(answer.headers)
            headers.add(name: "Content-Length", value: "\(answer.body.count)")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: answer.status), headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: answer.body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
