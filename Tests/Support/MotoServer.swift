import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway S3-protocol server (moto in server mode, `Tests/S3/moto_server.py`, signature checking on) on a
/// loopback port, with one user and one empty bucket. `stop()` ends it; so does the end of the test process (its
/// standard input closes).
public final class MotoServer: @unchecked Sendable {
    public let endpoint: String
    public let accessKey: String
    public let secretKey: String
    public let bucket: String
    public let region: String
    let process: Process
    let input: Pipe
    let output: FileHandle

    /// The repository root (this file is Tests/Support/MotoServer.swift).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The tools venv's Python, which has moto (scripts/install-deps installs it).
    public static let python = repositoryRoot.appendingPathComponent(".venv-tools/bin/python")

    /// Starts a server with a bucket named `bucket`; fails when moto is missing or does not come up within 60 s.
    public static func start(bucket: String = "kinema-test") async throws -> MotoServer {
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            throw MotoServerError("no tools venv at \(python.path): run scripts/install-deps (it installs moto[server])")
        }
        // Waiting for it blocks a thread: a Dispatch one, not the cooperative pool's (nor offPool's serial queue).
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try MotoServer(bucket: bucket) }) }
        }
    }

    private init(bucket: String) throws {
        process = Process()
        process.executableURL = Self.python
        process.arguments = [Self.repositoryRoot.appendingPathComponent("Tests/S3/moto_server.py").path, bucket]
        input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The first line is the JSON description; read it with a deadline (a hung start is killed).
        let reader = output.fileHandleForReading
        self.output = reader
        let line = Self.readLine(reader, timeout: 60)
        guard let line, let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String],
            let endpoint = json["endpoint"], let accessKey = json["access_key"], let secretKey = json["secret_key"], let region = json["region"]
        else {
            process.terminate()
            throw MotoServerError("moto did not start: \(line ?? "nothing printed")")
        }
        self.endpoint = endpoint
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.bucket = bucket
        self.region = region
    }

    /// One line of `handle`'s output (without its line break), or `nil` when none came within `timeout` seconds.
    static func readLine(_ handle: FileHandle, timeout: TimeInterval) -> String? {
        var line = Data()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: handle.fileDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 200) >= 0 else { return nil }
            guard poller.revents != 0 else { continue }
            // One byte at a time: nothing after the line break is consumed.
            guard let byte = try? handle.read(upToCount: 1), let first = byte.first else { return nil }
            if first == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(first)
        }
        return nil
    }

    /// Stops the listener (connections are refused) keeping every bucket and object, as an outage would.
    public func down() async throws { try await command("down") }

    /// Listens again on the same port, with the same buckets, objects and credentials.
    public func up() async throws { try await command("up") }

    /// The ETag of every object whose key starts with `prefix` (a multipart upload's ends in "-<parts>").
    public func etags(prefix: String) async throws -> [String: String] {
        let output = self.output
        try input.fileHandleForWriting.write(contentsOf: Data("etags \(prefix)\n".utf8))
        let line = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: Self.readLine(output, timeout: 30)) }
        }
        guard let line, let etags = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String] else {
            throw MotoServerError("moto did not list the ETags under \(prefix): \(line ?? "nothing")")
        }
        return etags
    }

    private func command(_ word: String) async throws {
        let output = self.output
        try input.fileHandleForWriting.write(contentsOf: Data("\(word)\n".utf8))
        let ack = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: Self.readLine(output, timeout: 30)) }
        }
        guard ack == word else { throw MotoServerError("moto did not acknowledge \(word): \(ack ?? "nothing")") }
    }

    /// The environment a `kinema` process needs to use this server's bucket.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey, "AWS_REGION": region]
    }

    /// Stops the server (closing its input; killed if it lingers).
    public func stop() {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

public struct MotoServerError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
