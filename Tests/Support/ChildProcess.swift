import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs external programs from tests (sqlite3, psql, openssl, curl, ffprobe…) with a time limit, off Swift's
/// cooperative pool, so a hung or chatty child can neither hang the run nor starve the other tests.
public enum ChildProcess {
    /// What a finished program left.
    public struct Outcome: Sendable {
        /// Its exit status (or the signal's number when it was killed).
        public var status: Int32
        /// Its standard output (and its standard error too, when they were merged).
        public var output: String
        /// Its standard error (empty when merged into `output`).
        public var error: String
        /// Whether it ran past the time limit and was killed.
        public var timedOut: Bool
    }

    /// Runs `executable` with `arguments` to its end; a child still running after `timeout` is killed with SIGKILL
    /// (its pipes then close and the reads end). `executable` without a slash is looked up on `PATH`.
    /// Throws only when the program cannot be started.
    public static func run(
        _ executable: String, _ arguments: [String], stdin: URL? = nil, environment: [String: String] = [:],
        mergeErrors: Bool = false, timeout: Duration = .seconds(120)
    ) async throws -> Outcome {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        let output = Pipe()
        let error = mergeErrors ? output : Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        try process.run()
        let timedOut = Atomic(false)
        return await withCheckedContinuation { continuation in
            // Process I/O blocks: GCD's threads are not the cooperative pool's, so other tests run meanwhile.
            DispatchQueue.global().async {
                let watchdog = DispatchWorkItem {
                    if process.isRunning {
                        timedOut.store(true, ordering: .relaxed)
                        kill(process.processIdentifier, SIGKILL)
                    }
                }
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(timeout.components.seconds * 1000)), execute: watchdog)
                defer { watchdog.cancel() }
                // Both pipes drain at once, so a chatty child never blocks on a full one.
                let errorRead = DispatchGroup()
                let errorData = Mutex(Data())
                if !mergeErrors {
                    DispatchQueue.global().async(group: errorRead) {
                        let data = readToEnd(error.fileHandleForReading.fileDescriptor)
                        errorData.withLock { $0 = data }
                    }
                }
                let outputData = readToEnd(output.fileHandleForReading.fileDescriptor)
                errorRead.wait()
                process.waitUntilExit()
                continuation.resume(
                    returning: Outcome(
                        status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                        error: String(decoding: errorData.withLock { $0 }, as: UTF8.self), timedOut: timedOut.load(ordering: .relaxed)
                    ))
            }
        }
    }

    /// Reads a descriptor to its end, reading past interruptions by signals.
    public static func readToEnd(_ fd: Int32) -> Data {
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                data.append(contentsOf: chunk[0..<n])
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return data
            }
        }
    }
}
