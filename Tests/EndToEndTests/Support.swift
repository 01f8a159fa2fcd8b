import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// A real `kinema` process, started on a free loopback port with its own data directory.
final class ServerProcess: @unchecked Sendable {
    // SAFETY: mutated only from the test that owns the process, sequentially.
    let dataDir: URL
    private(set) var process: Process?
    private(set) var baseURL = ""
    private(set) var devKey: String?
    private var outputLines: [String] = []

    /// The release (or debug) `kinema` binary next to the test bundle, or `KINEMA_BIN`.
    static var binary: URL {
        if let env = ProcessInfo.processInfo.environment["KINEMA_BIN"] { return URL(fileURLWithPath: env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // The runner may live inside a bundle (…/kinemaPackageTests.xctest/…); walk up to the build folder.
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("kinema")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/release/kinema")
    }

    init(dataDir: URL? = nil) throws {
        self.dataDir = dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("kinema-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.dataDir, withIntermediateDirectories: true)
    }

    /// Starts `kinema serve` and waits (bounded) until it prints its URL.
    func start(_ extra: [String] = [], workers: Int = 1) async throws {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = ["serve", "--port", "0", "--data-dir", dataDir.path, "--workers", String(workers), "--log-level", "warning"] + extra
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let handle = out.fileHandleForReading
        let deadline = ContinuousClock.now + .seconds(30)
        var buffer = ""
        while ContinuousClock.now < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty {
                if !p.isRunning { break }
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            buffer += String(decoding: chunk, as: UTF8.self)
            let lines = buffer.split(separator: "\n").map(String.init)
            if let line = lines.first(where: { $0.contains("listening on ") }) {
                baseURL = String(line.split(separator: " ").first(where: { $0.hasPrefix("http://") }) ?? "")
                if buffer.contains("Dev API key") {
                    // The key is alone on the line after the notice; wait until it arrived.
                    guard let idx = lines.firstIndex(where: { $0.contains("Dev API key") }), idx + 1 < lines.count else { continue }
                    devKey = lines[idx + 1].trimmingCharacters(in: .whitespaces)
                }
                outputLines = lines
                // Keep draining stdout so the child never blocks on a full pipe.
                handle.readabilityHandler = { h in _ = h.availableData }
                return
            }
        }
        p.terminate()
        throw TestFailure("kinema serve did not start: \(buffer)")
    }

    /// SIGKILL: no cleanup at all, like a crash or a lost machine.
    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// SIGTERM and wait (bounded) for a graceful exit; returns the exit status.
    @discardableResult
    func terminate(timeout: Duration = .seconds(60)) async -> Int32? {
        guard let p = process else { return nil }
        p.terminate()
        let deadline = ContinuousClock.now + timeout
        while p.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        process = nil
        return p.terminationStatus
    }

    func removeData() {
        try? FileManager.default.removeItem(at: dataDir)
    }

    /// Runs `kinema ARGS` to completion and returns its stdout.
    static func cli(_ args: [String]) throws -> (status: Int32, stdout: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One HTTP exchange, fully read.
struct HTTPResult {
    var status: Int
    var headers: HTTPHeaders
    var body: Data

    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    var text: String { String(decoding: body, as: UTF8.self) }
}

enum HTTP {
    static func request(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: Data? = nil) async throws -> HTTPResult {
        var req = HTTPClientRequest(url: url)
        req.method = method
        for (k, v) in headers { req.headers.add(name: k, value: v) }
        if let body { req.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(req, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: Data(buffer: buffer))
    }

    static func get(_ url: String, key: String? = nil, headers: [(String, String)] = []) async throws -> HTTPResult {
        try await request(.GET, url, headers: headers + (key.map { [("Authorization", "Bearer \($0)")] } ?? []))
    }

    static func submit(_ base: String, key: String?, json: [String: Any]) async throws -> HTTPResult {
        let body = try JSONSerialization.data(withJSONObject: json)
        var headers = [("Content-Type", "application/json")]
        if let key { headers.append(("Authorization", "Bearer \(key)")) }
        return try await request(.POST, base + "/v3/async/kling-v3.0-std-i2v", headers: headers, body: body)
    }

    static func result(_ base: String, key: String, id: String) async throws -> HTTPResult {
        try await get(base + "/v3/async/task-result?task_id=\(id)", key: key)
    }

    /// Polls until the task is terminal (bounded by `timeout`), returning the last body.
    static func waitForTerminal(_ base: String, key: String, id: String, timeout: Duration = .seconds(180)) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let r = try await result(base, key: key, id: id)
            let task = r.json["task"] as? [String: Any]
            if let status = task?["status"] as? String, status == "TASK_STATUS_SUCCEED" || status == "TASK_STATUS_FAILED" {
                return r.json
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("task \(id) did not finish within \(timeout)")
    }
}

/// Real image files made by FFmpeg's test sources (detailed, textured content).
enum Fixtures {
    static func image(width: Int, height: Int, format: String) throws -> Data {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fixture-\(UUID().uuidString).\(format)")
        defer { try? FileManager.default.removeItem(at: url) }
        let r = try Tools.run("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height)", "-frames:v", "1", "-y", url.path])
        guard r.status == 0 else { throw TestFailure("ffmpeg fixture failed: \(r.output)") }
        return try Data(contentsOf: url)
    }
}

/// External tools used as independent checks.
enum Tools {
    static func run(_ tool: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// ffprobe's view of a file: streams with frame counts actually decoded.
    static func probe(_ file: URL) throws -> [[String: Any]] {
        let r = try run("ffprobe", ["-v", "error", "-count_frames", "-show_streams", "-of", "json", file.path])
        guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any] else {
            throw TestFailure("ffprobe failed: \(r.output)")
        }
        return json["streams"] as? [[String: Any]] ?? []
    }
}
