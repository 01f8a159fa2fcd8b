import Foundation
import KinemaAPIModels
import KinemaClient
import Synchronization
import Testing

/// The Swift client and the CLI built on it, against a real `kinema serve` on loopback.
@Suite struct ClientTests {
    static func photo() async throws -> URL {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-client-\(UUID().uuidString).png")
        try await Fixtures.image(width: 640, height: 360, format: "png").write(to: file)
        return file
    }

    @Test func everyOperationWorksAndWaitReportsProgressInOrder() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 1)
        let client = KinemaClient(baseURL: server.baseURL + "/", apiKey: try #require(server.devKey))
        let photo = try await Self.photo()
        defer { try? FileManager.default.removeItem(at: photo) }

        let body = SubmitRequestBody(
            image: try KinemaClient.dataURI(ofImageAt: photo), prompt: "slow push in", negativePrompt: "shake", duration: 3, cfgScale: 0.7,
            sound: true, seed: 42, engine: "motion")
        let id = try await client.submit(body, idempotencyKey: "client-test-1")
        #expect(try await client.submit(body, idempotencyKey: "client-test-1") == id, "the same key and body: the same task")
        let first = try await client.task(id)
        #expect(first.task.taskID == id)
        #expect(first.extra.seed == "42")
        #expect(first.extra.engine == "motion")

        let seen = Mutex<[TaskResultBody]>([])
        let done = try await client.wait(id) { body in seen.withLock { $0.append(body) } }
        #expect(done.isSucceeded, "\(done)")
        let reports = seen.withLock { $0 }
        #expect(!reports.isEmpty)
        #expect(reports.last?.task.status == "TASK_STATUS_SUCCEED")
        let percents = reports.map(\.task.progressPercent)
        #expect(percents == percents.sorted(), "progress in order: \(percents)")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-client-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: file) }
        try await client.download(done, to: file)
        let served = try await HTTP.get(try #require(done.videos.first?.videoURL))
        #expect(try Data(contentsOf: file) == served.body)
        #expect(try await client.download(id, to: file).isSucceeded)

        // The task list: newest first, paged, this tenant's only.
        let second = try await client.submit(SubmitRequestBody(image: body.image, prompt: "pan left", duration: 3))
        let page1 = try await client.tasks(limit: 1)
        #expect(page1.tasks.map(\.task.taskID) == [second])
        let page2 = try await client.tasks(limit: 1, cursor: try #require(page1.nextCursor))
        #expect(page2.tasks.map(\.task.taskID) == [id])
        #expect(page2.tasks.first?.videos.isEmpty == false, "a finished task's entry has its signed URL")
        #expect(page2.nextCursor == nil)
        #expect(try await client.tasks().tasks.count == 2)
        let created = try await ServerProcess.cli(["keys", "create", "--tenant", "other", "--data-dir", server.dataDir.path])
        let other = KinemaClient(baseURL: server.baseURL, apiKey: try #require(created.stdout.split(separator: "\n").last.map(String.init)))
        #expect(try await other.tasks().tasks.isEmpty)
        for bad in ["limit=0", "limit=101", "limit=x", "cursor=nope"] {
            let r = try await HTTP.get(server.baseURL + "/v3/async/tasks?\(bad)", key: client.apiKey)
            #expect(
                r.status == 400 && (r.json["metadata"] as? [String: String])?["field"] == bad.components(separatedBy: "=")[0], "\(bad): \(r.text)")
        }
        _ = try await client.wait(second)

        // A finished task is returned unchanged by cancel.
        #expect(try await client.cancel(id).task.status == "TASK_STATUS_SUCCEED")
        await server.terminate()
    }

    @Test func errorsAreTypedWithTheServersWords() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let client = KinemaClient(baseURL: server.baseURL, apiKey: key)
        let photo = try await Self.photo()
        defer { try? FileManager.default.removeItem(at: photo) }
        let image = try KinemaClient.dataURI(ofImageAt: photo)

        func error(_ body: () async throws -> Void) async -> KinemaError? {
            do { try await body() } catch { return error as? KinemaError }
            return nil
        }
        let invalid = await error { _ = try await client.submit(SubmitRequestBody(image: image, prompt: "a", duration: 99)) }
        #expect(
            invalid?.kind == .api(status: 400) && invalid?.reason == "INVALID_REQUEST_BODY" && invalid?.field == "duration",
            "\(String(describing: invalid))")
        let webhook = await error { _ = try await client.submit(SubmitRequestBody(image: image, prompt: "a", webhookURL: "ftp://x")) }
        #expect(webhook?.field == "extra.webhook.url")
        let engine = await error { _ = try await client.submit(SubmitRequestBody(image: image, prompt: "a", engine: "nope")) }
        #expect(engine?.field == "extra.engine")
        let unknown = await error { _ = try await client.task(UUID().uuidString.lowercased()) }
        #expect(unknown?.kind == .api(status: 404) && unknown?.reason == "TASK_NOT_FOUND")
        let waitUnknown = await error { _ = try await client.wait(UUID().uuidString.lowercased(), timeout: .seconds(5)) }
        #expect(waitUnknown?.reason == "TASK_NOT_FOUND")
        let badKey = await error { _ = try await KinemaClient(baseURL: server.baseURL, apiKey: "sk_wrong").task(UUID().uuidString) }
        #expect(badKey?.kind == .api(status: 403) && badKey?.reason == "INVALID_API_KEY")
        let reused = await error {
            _ = try await client.submit(SubmitRequestBody(image: image, prompt: "one"), idempotencyKey: "k")
            _ = try await client.submit(SubmitRequestBody(image: image, prompt: "two"), idempotencyKey: "k")
        }
        #expect(reused?.kind == .api(status: 409) && reused?.reason == "IDEMPOTENCY_KEY_REUSED")

        // Cancel a queued task; a download of it says it has no video; wait returns the failed task.
        let id = try await client.submit(SubmitRequestBody(image: image, prompt: "pan"))
        let canceled = try await client.cancel(id)
        #expect(canceled.task.status == "TASK_STATUS_FAILED" && canceled.task.reason == "canceled")
        #expect(try await client.wait(id).task.reason == "canceled")
        let noVideo = await error { _ = try await client.download(id, to: URL(fileURLWithPath: "/tmp/never.mp4")) }
        #expect(noVideo?.kind == .taskFailed)
        await server.terminate()

        let closed = await error { _ = try await client.task(id) }
        #expect(closed?.kind == .unreachable, "\(String(describing: closed))")
        let unreadable = await error { _ = try KinemaClient.dataURI(ofImageAt: URL(fileURLWithPath: "/nonexistent.png")) }
        #expect(unreadable?.kind == .invalidRequest)
    }

    @Test func theClientsOperationsAreInTheServedOpenAPIDocument() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let document = try await HTTP.get(server.baseURL + "/openapi.yaml").text
        for (method, path) in KinemaClient.operations {
            let block = try #require(document.range(of: "\n  \(path):\n"), "\(path) is not in the document")
            let rest = document[block.upperBound...]
            let next = rest.range(of: "\n  /")?.lowerBound ?? rest.endIndex
            #expect(("\n" + rest[..<next]).contains("\n    \(method):"), "\(method) \(path) is not in the document")
        }
        // Every member the client can send is a documented property of the submit request.
        for member in ["image", "prompt", "negative_prompt", "duration", "cfg_scale", "sound", "end_image", "multi_prompt", "seed", "extra"] {
            #expect(document.contains("\n        \(member):"), "\(member)")
        }
        await server.terminate()
    }

    @Test func theCLISubmitsWaitsDownloadsAndExitsByOutcome() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 1)
        let env = ["KINEMA_SERVER": server.baseURL, "KINEMA_API_KEY": try #require(server.devKey)]
        let photo = try await Self.photo()
        let clip = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-cli-\(UUID().uuidString).mp4")
        defer {
            try? FileManager.default.removeItem(at: photo)
            try? FileManager.default.removeItem(at: clip)
        }
        let bin = ServerProcess.binary.path
        func kinema(_ args: [String], env extra: [String: String] = [:]) async throws -> (status: Int32, output: String) {
            try await Tools.run(bin, args, direct: true, environment: env.merging(extra) { $1 })
        }

        // Submit, wait and download: a playable MP4 of the asked length; without a terminal, plain lines.
        let done = try await kinema(["submit", "--image", photo.path, "--prompt", "zoom in", "--duration", "3", "--wait", "-o", clip.path])
        #expect(done.status == 0, "\(done.output)")
        #expect(!done.output.contains("\r"), "plain lines when not on a terminal")
        #expect(done.output.contains("TASK_STATUS_SUCCEED 100%"), "\(done.output)")
        let streams = try await Tools.probe(clip)
        let duration = try #require(streams.first { $0["codec_type"] as? String == "video" }?["duration"] as? String)
        #expect(abs((Double(duration) ?? 0) - 3) < 0.2, "\(duration)")
        let id = try #require(done.output.split(separator: "\n").first { $0.hasPrefix("submitted ") }.map { String($0.dropFirst(10)) })

        let status = try await kinema(["status", id, "--json"])
        #expect(status.status == 0)
        #expect(status.output.contains("\"status\":\"TASK_STATUS_SUCCEED\""), "\(status.output)")
        try? FileManager.default.removeItem(at: clip)
        #expect(try await kinema(["download", id, "-o", clip.path]).status == 0)
        #expect(FileManager.default.fileExists(atPath: clip.path))

        // On a pseudo-terminal the bar is redrawn in place.
        let quoted = ([bin, "submit", "--image", photo.path, "--prompt", "pan left", "--duration", "3", "--wait"]).map { "'\($0)'" }.joined(
            separator: " ")
        let tty = try await Tools.run("script", ["-qfec", quoted, "/dev/null"], environment: env)
        #expect(tty.status == 0, "\(tty.output)")
        #expect(tty.output.contains("\r\u{1B}[K["), "redrawn in place: \(tty.output.debugDescription)")

        // Exit codes: 2 for a validation error (the server's message and field), 2 for usage, 1 for a failed task, 3 for no server.
        let invalid = try await kinema(["submit", "--image", photo.path, "--prompt", "a", "--duration", "40"])
        #expect(
            invalid.status == 2 && invalid.output.contains("INVALID_REQUEST_BODY") && invalid.output.contains("field duration"), "\(invalid.output)")
        #expect(try await kinema(["submit", "--prompt", "no image"]).status == 2)
        #expect(try await kinema(["status", id], env: ["KINEMA_API_KEY": ""]).status == 2)
        let queuedID = try await KinemaClient(baseURL: server.baseURL, apiKey: env["KINEMA_API_KEY"]!).submit(
            SubmitRequestBody(image: try KinemaClient.dataURI(ofImageAt: photo), prompt: "x", duration: 15))
        let canceled = try await kinema(["cancel", queuedID])
        #expect(canceled.status == 0 && canceled.output.contains("canceled"), "\(canceled.output)")
        let failed = try await kinema(["wait", queuedID])
        #expect(failed.status == 1 && failed.output.contains("canceled"), "\(failed.output)")
        await server.terminate()
        let unreachable = try await kinema(["status", id])
        #expect(unreachable.status == 3, "\(unreachable.output)")
    }
}
