import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import Testing
import NIOFoundationEssentialsCompat

/// A real `kinema` process, started on a free loopback port with its own data directory.
final class ServerProcess: @unchecked Sendable {
    // SAFETY: mutated only from the test that owns the process, sequentially.
    let dataDir: URL
    private(set) var process: Process?
    private(set) var baseURL = ""
    private(set) var devKey: String?
    private var outputLines: [String] = []
    private var logBuffer: OutputBuffer?

    /// What the server logged (stderr) since its last start (empty when started with `captureLog: false`).
    var log: String { logBuffer?.text ?? "" }

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

    /// A server the test did not stop (it threw first, or forgot) dies with its `ServerProcess`, so no test
    /// leaves a `kinema serve` running after the suite.
    deinit {
        if let p = process { send(SIGKILL, to: p) }
    }

    init(dataDir: URL? = nil) throws {
        self.dataDir = dataDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("kinema-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.dataDir, withIntermediateDirectories: true)
    }

    /// Starts `kinema serve` and waits (bounded) until it prints its URL.
    ///
    /// Nothing here blocks a thread of Swift's cooperative pool (only 2 on this machine): output is collected
    /// on a dedicated thread (`OutputBuffer.drain`) and polled with `Task.sleep`.
    func start(
        _ extra: [String] = [], workers: Int = 1, logLevel: String = "warning", environment: [String: String] = [:],
        captureLog: Bool = true
    ) async throws {
        devKey = nil
        let p = Process()
        p.executableURL = Self.binary
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        // Text logs: tests read them line by line (one test reads the JSON format on purpose).
        p.arguments =
            ["serve", "--port", "0", "--data-dir", dataDir.path, "--workers", String(workers), "--log-level", logLevel, "--log-format", "text"]
            + extra
        let out = Pipe()
        p.standardOutput = out
        let errors = captureLog ? Pipe() : nil
        p.standardError = errors ?? FileHandle.nullDevice
        let collected = OutputBuffer()
        logBuffer = nil
        try p.run()
        collected.drain(out.fileHandleForReading)
        if let errors {
            let logged = OutputBuffer()
            logged.drain(errors.fileHandleForReading)
            logBuffer = logged
        }
        process = p
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let lines = collected.text.split(separator: "\n").map(String.init)
            if let line = lines.first(where: { $0.contains("listening on ") }) {
                if lines.contains(where: { $0.contains("Dev API key") }) {
                    // The key is alone on the line after the notice; wait until it arrived.
                    guard let idx = lines.firstIndex(where: { $0.contains("Dev API key") }), idx + 1 < lines.count else {
                        try await Task.sleep(for: .milliseconds(20))
                        continue
                    }
                    devKey = lines[idx + 1].trimmingCharacters(in: .whitespaces)
                }
                baseURL = String(line.split(separator: " ").first(where: { $0.hasPrefix("http://") }) ?? "")
                return
            }
            if !p.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        send(SIGKILL, to: p)
        throw TestFailure("kinema serve did not start: \(collected.text)")
    }

    /// SIGKILL: no cleanup at all, like a crash or a lost machine.
    func kill9() async {
        guard let p = process else { return }
        send(SIGKILL, to: p)
        await Self.waitForExit(p, timeout: .seconds(30))
        process = nil
    }

    /// SIGTERM and wait (bounded) for a graceful exit; returns the exit status.
    @discardableResult
    func terminate(timeout: Duration = .seconds(60)) async -> Int32? {
        guard let p = process else { return nil }
        send(SIGTERM, to: p)
        await Self.waitForExit(p, timeout: timeout)
        if p.isRunning {
            send(SIGKILL, to: p)
            await Self.waitForExit(p, timeout: .seconds(30))
        }
        process = nil
        return p.isRunning ? nil : p.terminationStatus
    }

    /// Polls (never blocks) until the process has exited or the timeout passed.
    static func waitForExit(_ p: Process, timeout: Duration) async {
        let deadline = ContinuousClock.now + timeout
        while p.isRunning, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
    }

    func removeData() {
        try? FileManager.default.removeItem(at: dataDir)
    }

    /// Runs `kinema ARGS` to completion and returns its stdout.
    static func cli(_ args: [String]) async throws -> (status: Int32, stdout: String) {
        let r = try await Tools.run(binary.path, args, direct: true)
        return (r.status, r.output)
    }
}

/// Bytes a child process wrote, collected off the cooperative pool.
final class OutputBuffer: @unchecked Sendable {
    // SAFETY: `data` and `ended` are only touched under `lock`.
    private let lock = NSLock()
    private var data = Data()
    private var ended = false

    func append(_ chunk: Data) {
        lock.lock()
        data.append(chunk)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// Whether `drain` reached the end of its pipe.
    var isEnded: Bool {
        lock.lock()
        defer { lock.unlock() }
        return ended
    }

    /// Reads `handle` to its end on a dedicated thread (never the cooperative pool), retrying reads a signal
    /// interrupted: Foundation's `availableData` and `readDataToEndOfFile` trap on EINTR (seen in CI).
    func drain(_ handle: FileHandle) {
        let thread = Thread { [self] in
            let fd = handle.fileDescriptor // `handle` stays captured, so the descriptor stays open
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n > 0 {
                    append(Data(chunk[0..<n]))
                } else if n < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            lock.lock()
            ended = true
            lock.unlock()
        }
        thread.start()
    }

    /// Waits (bounded, without blocking a thread) until `drain` reached the end of the pipe.
    func waitForEnd(timeout: Duration = .seconds(10)) async {
        let deadline = ContinuousClock.now + timeout
        while !isEnded, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// Sends `signal` to `process` only when it was started and still runs. A `Process` that never ran has pid 0, and
/// `kill(0, SIGKILL)` would kill the test runner's whole process group: every kill in the tests goes through here.
func send(_ signal: Int32, to process: Process) {
    guard process.processIdentifier > 0, process.isRunning else { return }
    kill(process.processIdentifier, signal)
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
    static func image(width: Int, height: Int, format: String) async throws -> Data {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fixture-\(UUID().uuidString).\(format)")
        defer { try? FileManager.default.removeItem(at: url) }
        let r = try await Tools.run(
            "ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=\(width)x\(height)", "-frames:v", "1", "-y", url.path])
        guard r.status == 0 else { throw TestFailure("ffmpeg fixture failed: \(r.output)") }
        return try Data(contentsOf: url)
    }
}

/// External tools used as independent checks.
enum Tools {
    /// Runs a tool to completion without blocking the cooperative pool; stdout and stderr together.
    static func run(
        _ tool: String, _ args: [String], direct: Bool = false, environment: [String: String] = [:],
        timeout: Duration = .seconds(120)
    ) async throws -> (status: Int32, output: String) {
        let p = Process()
        if direct {
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = args
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [tool] + args
        }
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let collected = OutputBuffer()
        try p.run()
        collected.drain(out.fileHandleForReading)
        await ServerProcess.waitForExit(p, timeout: timeout)
        if p.isRunning {
            // SIGKILL: children that set a parent-death signal (scripts/soak's) die with it.
            send(SIGKILL, to: p)
            await ServerProcess.waitForExit(p, timeout: .seconds(30))
            throw TestFailure("\(tool) did not finish within \(timeout):\n\(collected.text)")
        }
        // What the pipe still holds (a grandchild keeping the pipe open only delays this by the bound).
        await collected.waitForEnd()
        return (p.terminationStatus, collected.text)
    }

    /// ffprobe's view of a file: streams with frame counts actually decoded.
    static func probe(_ file: URL) async throws -> [[String: Any]] {
        let r = try await run("ffprobe", ["-v", "error", "-count_frames", "-show_streams", "-of", "json", file.path])
        guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any] else {
            throw TestFailure("ffprobe failed: \(r.output)")
        }
        return json["streams"] as? [[String: Any]] ?? []
    }
}

/// A throwaway PostgreSQL server from `scripts/test-postgres`, for tests that run the scale-out set-up.
///
/// Its watchdog stops it when the test runner dies; `stop()` stops it and removes its directory.
struct ThrowawayPostgres {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/test-postgres")

    /// The cluster's directory.
    let directory: URL
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    let url: String

    static func start() async throws -> ThrowawayPostgres {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-pg-\(UUID().uuidString)")
        let started = try await Tools.run("bash", [script.path, "start", dir.path, "--owner-pid", String(getpid())])
        guard started.status == 0, let url = started.output.split(separator: "\n").last(where: { $0.hasPrefix("postgres://") }) else {
            throw TestFailure("scripts/test-postgres start failed: \(started.output)")
        }
        return ThrowawayPostgres(directory: dir, url: String(url))
    }

    /// Rows of a query through `psql`, each as its columns' text (NULL as "").
    func query(_ sql: String) async throws -> [[String]] {
        let r = try await Tools.run("psql", [url, "-X", "-q", "-A", "-t", "-F", "\u{1F}", "-v", "ON_ERROR_STOP=1", "-c", sql])
        guard r.status == 0 else { throw TestFailure("psql failed (\(r.status)) on \(sql): \(r.output)") }
        return r.output.split(separator: "\n", omittingEmptySubsequences: true).map { line in
            line.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        }
    }

    func stop() async {
        _ = try? await Tools.run("bash", [Self.script.path, "stop", directory.path])
    }
}

/// Raw loopback TCP connections, for tests whose clients misbehave on purpose (slow, silent, merely open).
enum RawSocket {
    /// A connected socket to 127.0.0.1:`port` (the caller closes it).
    static func connect(port: UInt16) throws -> Int32 {
        try RawConnection.connect(port: port, from: "127.0.0.1")
    }
}

/// A filesystem of one page (a tmpfs) mounted over a folder: a real "disk full" for the fault tests.
enum TinyDisk {
    /// Whether this process may mount (root, and a kernel that allows tmpfs mounts here).
    static let available: Bool = {
        guard getuid() == 0 else { return false }
        let probe = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-tinydisk-probe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: probe) }
        guard (try? FileManager.default.createDirectory(at: probe, withIntermediateDirectories: true)) != nil else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=4k", "tmpfs", probe.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return false }
        unmountNow(probe)
        return true
    }()

    static func mount(at folder: URL) async throws {
        let r = try await Tools.run("mount", ["-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs", folder.path])
        if r.status != 0 { throw TestFailure("mount tmpfs on \(folder.path) failed: \(r.output)") }
    }

    /// Unmounts at once (lazily, so an open file cannot keep it mounted); used from `defer`, so synchronous.
    static func unmountNow(_ folder: URL) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/umount")
        p.arguments = ["-l", folder.path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        if (try? p.run()) != nil { p.waitUntilExit() }
    }
}

extension ServerProcess {
    /// The result files stored for task `id` (one per lease that stored one), by name (`BlobKeys` layout).
    func storedResults(of id: String) -> [String] { Self.storedResults(of: id, blobs: dataDir.appendingPathComponent("blobs")) }

    /// The result files stored for task `id` under the blob folder `blobs` (a shared one in scale-out tests).
    static func storedResults(of id: String, blobs: URL) -> [String] {
        let folder = blobs.appendingPathComponent("results/\(id.prefix(2))")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasPrefix(id + ".") }.sorted()
    }

    /// Every file stored under `blobs/inputs`, as paths relative to it.
    func storedInputs() -> [String] { Self.files(under: dataDir.appendingPathComponent("blobs/inputs")) }

    /// Every file (not folder) under `root`, as paths relative to it.
    static func files(under root: URL) -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return [] }
        var files: [String] = []
        while let path = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root.appendingPathComponent(path).path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files.append(path)
            }
        }
        return files.sorted()
    }
}
