import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The README's walk-through, run as a newcomer would: every `sh` block of its section, literally, against a real
/// `kinema serve`, with a multi-megabyte photo (the size that broke the old `-d "$(base64 …)"` form).
@Suite struct ReadmeWalkthrough {
    static let readme = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("README.md")

    /// The `sh` blocks of the README section whose heading starts with `heading`.
    static func shellBlocks(under heading: String) throws -> [String] {
        let text = try String(contentsOf: readme, encoding: .utf8)
        guard let start = text.range(of: "\n## " + heading) else { throw TestFailure("README has no section '\(heading)'") }
        let rest = text[start.upperBound...]
        let section = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
        var blocks: [String] = []
        var current: [Substring]?
        for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```sh" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n")); current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return blocks
    }

    /// The first block sets the reader's own values: these names, each on a `NAME=value  # comment` line.
    static let settings = ["KEY", "BASE", "PHOTO", "PHOTO_URL"]

    @Test func theWalkthroughWorksAsWrittenWithAMultiMegabytePhoto() async throws {
        let blocks = try Self.shellBlocks(under: "Walk-through with curl")
        #expect(blocks.count >= 3, "\(blocks)")
        let setup = try #require(blocks.first)
        let names = setup.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }
        #expect(names == Self.settings, "the first block should set exactly \(Self.settings): \(setup)")

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work.appendingPathComponent(".build/release"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        try FileManager.default.createSymbolicLink(at: work.appendingPathComponent(".build/release/kinema"), withDestinationURL: ServerProcess.binary)
        // A noisy 3000x2000 JPEG: about 4 MB, like a phone photo, far past the 128 KiB argument limit as base64.
        let photo = work.appendingPathComponent("photo.jpg")
        let made = try await Tools.run(
            "ffmpeg",
            [
                "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=3000x2000,noise=alls=30:allf=t",
                "-frames:v", "1", "-q:v", "2", "-y", photo.path,
            ])
        #expect(made.status == 0, "\(made.output)")
        let photoBytes = try Data(contentsOf: photo).count
        #expect(photoBytes > 3_000_000, "\(photoBytes)")

        // The URL form needs an http server holding the photo; loopback is allowed on purpose for this server.
        let files = try await FileServer.start(directory: work)
        defer { files.stop() }
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--allow-fetch-from", "127.0.0.1/32"], workers: 1)
        let key = try #require(server.devKey)

        let values = ["KEY": key, "BASE": server.baseURL, "PHOTO": "photo.jpg", "PHOTO_URL": "http://127.0.0.1:\(files.port)/photo.jpg"]
        let ownSetup = Self.settings.map { "\($0)='\(values[$0]!)'" }.joined(separator: "\n")
        let script = (["cd '\(work.path)'", ownSetup] + blocks.dropFirst()).joined(separator: "\n")
        let scriptFile = work.appendingPathComponent("walkthrough.sh")
        try script.write(to: scriptFile, atomically: true, encoding: .utf8)
        let run = try await Tools.run("bash", ["-eu", "-o", "pipefail", scriptFile.path], timeout: .seconds(400))
        #expect(run.status == 0, "\(run.output.suffix(2000))")
        #expect(run.output.contains("TASK_STATUS_SUCCEED 100%"), "\(run.output.suffix(2000))")
        // The data-URI and URL submits each answered with a task id.
        #expect(run.output.components(separatedBy: "\"task_id\"").count - 1 == 2, "\(run.output.suffix(2000))")

        // clip.mp4: a real 5 s video with the sound that was asked for.
        let streams = try await Tools.probe(work.appendingPathComponent("clip.mp4"))
        let video = try #require(streams.first { $0["codec_type"] as? String == "video" })
        #expect(video["nb_read_frames"] as? String == "120")
        #expect(streams.contains { $0["codec_type"] as? String == "audio" })
        // cli.mp4: the CLI's submit --wait -o with the same multi-megabyte photo.
        let cli = try await Tools.probe(work.appendingPathComponent("cli.mp4"))
        #expect(cli.first { $0["codec_type"] as? String == "video" }?["nb_read_frames"] as? String == "72")
        let offline = try await Tools.probe(work.appendingPathComponent("offline.mp4"))
        #expect(offline.contains { $0["codec_type"] as? String == "video" })
        await server.terminate()
    }
}

/// `python3 -m http.server` on a free loopback port, serving one folder.
final class FileServer: @unchecked Sendable {
    // SAFETY: set once in `start`, read afterwards.
    let process: Process
    let port: Int

    private init(process: Process, port: Int) {
        self.process = process
        self.port = port
    }

    static func start(directory: URL) async throws -> FileServer {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", directory.path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let collected = OutputBuffer()
        try p.run()
        collected.drain(out.fileHandleForReading)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, p.isRunning {
            // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
            if let range = collected.text.range(of: " port "),
                let port = Int(collected.text[range.upperBound...].prefix(while: \.isNumber))
            {
                return FileServer(process: p, port: port)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        send(SIGKILL, to: p)
        throw TestFailure("python3 -m http.server did not start: \(collected.text)")
    }

    /// SIGKILL: a child of the test runner inherits its blocked signal mask, so SIGTERM would be ignored.
    func stop() {
        send(SIGKILL, to: process)
    }
}
