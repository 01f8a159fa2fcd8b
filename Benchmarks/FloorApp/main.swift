import Foundation
import Hummingbird
import Logging

// The framework's floor for `make bench` (issue 16): a bare Hummingbird app, of the very version Kinema links (it is
// a target of the same package, so one Package.resolved pins both), answering Kinema's two hot routes with constant
// bodies of the same bytes. Kinema's figure divided by this app's, measured in the same run on the same machine, is
// what Kinema's own work costs on top of the HTTP stack.
//
//   kinema-floor --port 0 --poll-body FILE --submit-body FILE
//
// `GET /v3/async/task-result` answers FILE's bytes from --poll-body; `GET /healthz` answers Kinema's `{"status":"ok"}`; `POST /v3/async/kling-v3.0-std-i2v` reads the whole
// request body (up to 64 MB, like Kinema's cap for two images) and answers --submit-body's bytes. Prints
// `listening on http://127.0.0.1:PORT` once it accepts connections.

func argument(_ name: String) -> String? {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func fileBytes(_ name: String) -> ByteBuffer {
    guard let path = argument(name), let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("kinema-floor: \(name) FILE is required and must be readable\n".utf8))
        exit(2)
    }
    return ByteBuffer(bytes: data)
}

let pollBody = fileBytes("--poll-body")
let submitBody = fileBytes("--submit-body")
let port = Int(argument("--port") ?? "0") ?? 0

let router = Router()
router.get("/v3/async/task-result") { _, _ in
    Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"], body: .init(byteBuffer: pollBody))
}
router.get("/healthz") { _, _ in
    Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
}
router.post("/v3/async/kling-v3.0-std-i2v") { request, _ in
    _ = try await request.body.collect(upTo: 64 << 20)
    return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: submitBody))
}
var logger = Logger(label: "floor")
logger.logLevel = .error // like `kinema serve --log-level error` in the benchmark
let app = Application(
    router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "floor"),
    onServerRunning: { channel in
        FileHandle.standardOutput.write(Data("listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)\n".utf8))
    }, logger: logger)
try await app.runService()
