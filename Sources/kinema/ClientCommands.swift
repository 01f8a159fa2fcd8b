import ArgumentParser
import Foundation
import KinemaAPIModels
import KinemaClient

/// Where the API is and the key to use: `--server` / `KINEMA_SERVER`, `--api-key` / `KINEMA_API_KEY`.
struct ServerOptions: ParsableArguments {
    @Option(help: "The API's base URL (env KINEMA_SERVER, default http://127.0.0.1:8080).")
    var server: String?

    @Option(name: .customLong("api-key"), help: "The API key (env KINEMA_API_KEY).")
    var apiKey: String?

    @Flag(help: "Print the Task Result body (JSON) instead of a summary.")
    var json = false

    func client() throws -> KinemaClient {
        guard let key = apiKey ?? Env.string("KINEMA_API_KEY") else {
            throw ClientExit.usage("an API key is needed: --api-key KEY or KINEMA_API_KEY")
        }
        return KinemaClient(baseURL: server ?? Env.string("KINEMA_SERVER") ?? "http://127.0.0.1:8080", apiKey: key)
    }
}

/// How a client command ends: 0 succeeded, 1 the task failed, 2 a usage or validation error, 3 no server.
enum ClientExit: Error {
    case usage(String)
    case failed(Error)

    /// Runs a command body, printing what went wrong on stderr and exiting with the code its kind has.
    static func run(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let e as ClientExit {
            switch e {
            case .usage(let message): Self.fail(message, code: 2)
            case .failed(let error): Self.report(error)
            }
        } catch {
            Self.report(error)
        }
    }

    static func report(_ error: any Error) -> Never {
        guard let e = error as? KinemaError else { fail("\(error)", code: 2) }
        switch e.kind {
        case .unreachable: fail(e.message, code: 3)
        case .taskFailed: fail(e.message, code: 1)
        case .api(let status) where status >= 500: fail("\(e)", code: 3)
        default: fail("\(e)", code: 2)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("kinema: \(message)\n".utf8))
        exit(code)
    }
}

/// Prints a task: its JSON body with `--json`, else a one-line summary; a failed task ends with exit code 1.
func finish(_ result: TaskResultBody, json: Bool, file: String? = nil) {
    if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: (try? encoder.encode(result)) ?? Data(), as: UTF8.self))
    } else {
        var line = "\(result.task.taskID) \(result.task.status) \(result.task.progressPercent)%"
        if let file { line += " → \(file)" } else if let url = result.videos.first?.videoURL { line += " \(url)" }
        print(line)
    }
    if result.task.status == "TASK_STATUS_FAILED" {
        ClientExit.fail("task \(result.task.taskID) failed: \(result.task.reason)", code: 1)
    }
}

/// Waits with a progress bar (stderr), then downloads when `output` is given.
func waitAndFetch(_ client: KinemaClient, id: String, output: String?, json: Bool) async throws {
    let bar = ProgressBar(interactive: isatty(STDERR_FILENO) == 1)
    let done = try await client.wait(id) { bar.update(status: $0.task.status, percent: $0.task.progressPercent, eta: $0.task.eta) }
    bar.finish()
    if let output, done.isSucceeded {
        try await client.download(done, to: URL(fileURLWithPath: output))
    }
    finish(done, json: json, file: done.isSucceeded ? output : nil)
}

/// `kinema submit`: one task through the API; with `--wait` it follows the task and `-o` saves the video.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a task to a Kinema (or hosted) API; prints its id, or with --wait its outcome.",
        discussion: "Exit codes: 0 succeeded (or submitted), 1 the task failed, 2 usage or validation error, 3 server unreachable.")

    @Option(help: "First frame: a PNG or JPEG file, or an http(s) URL the server fetches.")
    var image: String
    @Option(help: "What happens and how the camera moves.")
    var prompt: String?
    @Option(name: .customLong("negative-prompt"), help: "Moves and effects to avoid.")
    var negativePrompt: String?
    @Option(help: "Length in seconds, 3–15.")
    var duration: Int?
    @Option(name: .customLong("cfg-scale"), help: "Prompt adherence 0–1.")
    var cfgScale: Double?
    @Flag(help: "Ask for a soundtrack.")
    var sound = false
    @Option(name: .customLong("end-image"), help: "Last frame: a file or an http(s) URL.")
    var endImage: String?
    @Option(name: .customLong("shot"), help: "A shot as \"SECONDS:PROMPT\" (or just PROMPT); repeat for multi-shot.")
    var shots: [String] = []
    @Option(help: "Seed 0–4294967295, or -1 for random.")
    var seed: Int64?
    @Option(name: .customLong("webhook-url"), help: "(ext) Gets a signed POST when the task ends.")
    var webhookURL: String?
    @Option(help: "(ext) One of the engines the server enabled.")
    var engine: String?
    @Option(name: .customLong("idempotency-key"), help: "(ext) Makes a retried submit answer the same task.")
    var idempotencyKey: String?
    @Flag(help: "Wait for the task to finish, with a progress bar.")
    var wait = false
    @Option(name: .shortAndLong, help: "With --wait: save the video here.")
    var output: String?
    @OptionGroup var api: ServerOptions

    func run() async throws {
        try await ClientExit.run {
            let client = try api.client()
            let body = SubmitRequestBody(
                image: try Self.imageField(image), prompt: prompt, negativePrompt: negativePrompt, duration: duration, cfgScale: cfgScale,
                sound: sound ? true : nil, endImage: try endImage.map(Self.imageField),
                multiPrompt: shots.isEmpty ? nil : shots.map(Self.shot), seed: seed, webhookURL: webhookURL, engine: engine)
            let id = try await client.submit(body, idempotencyKey: idempotencyKey)
            guard wait || output != nil else {
                print(id)
                return
            }
            FileHandle.standardError.write(Data("submitted \(id)\n".utf8))
            try await waitAndFetch(client, id: id, output: output, json: api.json)
        }
    }

    /// A URL as it is; a file read here (so a photo of many MB never meets the shell's argument limits) as a data URI.
    static func imageField(_ value: String) throws -> String {
        if value.hasPrefix("http://") || value.hasPrefix("https://") || value.hasPrefix("data:") { return value }
        return try KinemaClient.dataURI(ofImageAt: URL(fileURLWithPath: value))
    }

    static func shot(_ text: String) -> SubmitRequestBody.Shot {
        if let colon = text.firstIndex(of: ":"), let seconds = Int(text[..<colon]) {
            return .init(prompt: String(text[text.index(after: colon)...]), duration: seconds)
        }
        return .init(prompt: text)
    }
}

/// `kinema status ID`.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a task's status (exit 1 if it failed).")
    @Argument(help: "The task id.") var id: String
    @OptionGroup var api: ServerOptions

    func run() async throws {
        try await ClientExit.run {
            let result = try await api.client().task(id)
            finish(result, json: api.json)
        }
    }
}

/// `kinema wait ID`.
struct Wait: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Wait for a task with a progress bar; -o saves its video.")
    @Argument(help: "The task id.") var id: String
    @Option(name: .shortAndLong, help: "Save the video here.") var output: String?
    @OptionGroup var api: ServerOptions

    func run() async throws {
        try await ClientExit.run { try await waitAndFetch(try api.client(), id: id, output: output, json: api.json) }
    }
}

/// `kinema cancel ID`.
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel a task (ext); prints it afterwards.")
    @Argument(help: "The task id.") var id: String
    @OptionGroup var api: ServerOptions

    func run() async throws {
        try await ClientExit.run {
            let result = try await api.client().cancel(id)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            if api.json {
                print(String(decoding: (try? encoder.encode(result)) ?? Data(), as: UTF8.self))
            } else {
                print("\(result.task.taskID) \(result.task.status)\(result.task.reason.isEmpty ? "" : " (\(result.task.reason))")")
            }
        }
    }
}

/// `kinema download ID -o PATH`.
struct Download: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Save a finished task's video.")
    @Argument(help: "The task id.") var id: String
    @Option(name: .shortAndLong, help: "Where to save it.") var output: String
    @OptionGroup var api: ServerOptions

    func run() async throws {
        try await ClientExit.run {
            let result = try await api.client().download(id, to: URL(fileURLWithPath: output))
            finish(result, json: api.json, file: output)
        }
    }
}
