import Foundation
import NIOHTTP1
import Testing

/// The web playground (issue 13, item 3) in a real browser: headless Chromium from Debian's packages, driven by
/// Selenium from the tools venv (`Tests/Browser/playground_check.py`), against a real `kinema serve`, offline.
@Suite(.serialized) struct PlaygroundTests {
    static let root = Schemathesis.repositoryRoot
    static let python = root.appendingPathComponent(".venv-tools/bin/python")
    /// Where the screenshot goes (git-ignored); docs/playground.png is a copy of one.
    static let output = root.appendingPathComponent(".build/test-output")

    @Test func thePageIsTheCommittedFilesWithStrictHeaders() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start([], workers: 0)

        let page = try await HTTP.get(server.baseURL + "/")
        #expect(page.status == 200)
        #expect(page.headers.first(name: "Content-Type") == "text/html; charset=utf-8")
        let policy = try #require(page.headers.first(name: "Content-Security-Policy"))
        #expect(policy.contains("script-src 'self';") && !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "\(policy)")
        #expect(policy.contains("frame-ancestors 'none'") && policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"))
        #expect(page.headers.first(name: "X-Content-Type-Options") == "nosniff")
        #expect(page.headers.first(name: "X-Frame-Options") == "DENY")
        // The configuration block is data the browser never runs, and it carries this server's limits and engines.
        #expect(page.text.contains(#"<script type="application/json" id="kinema-config">{"engines":["motion"],"limits":{"#))
        #expect(!page.text.contains("<!--KINEMA_CONFIG-->"))
        #expect(!page.text.contains("src=\"http") && !page.text.contains("href=\"http") && !page.text.contains("//"), "nothing from elsewhere")

        // What is served is what web/playground/ holds (scripts/embed-playground keeps the compiled copy current).
        for (path, file, type) in [
            ("/playground/app.js", "app.js", "text/javascript; charset=utf-8"), ("/playground/style.css", "style.css", "text/css; charset=utf-8"),
        ] {
            let served = try await HTTP.get(server.baseURL + path)
            let committed = try String(contentsOf: Self.root.appendingPathComponent("web/playground/\(file)"), encoding: .utf8)
            #expect(served.status == 200 && served.headers.first(name: "Content-Type") == type, "\(path)")
            #expect(served.text == committed, "\(path) differs from web/playground/\(file): run scripts/embed-playground")
        }
        let committedPage = try String(contentsOf: Self.root.appendingPathComponent("web/playground/index.html"), encoding: .utf8)
        let configLine = try #require(page.text.split(separator: "\n").first { $0.contains("kinema-config") })
        #expect(page.text.replacingOccurrences(of: String(configLine), with: "<!--KINEMA_CONFIG-->") == committedPage)
        await server.terminate()

        let without = try ServerProcess()
        defer { without.removeData() }
        try await without.start(["--no-playground"], workers: 0)
        #expect(try await HTTP.get(without.baseURL + "/").status == 404)
        #expect(try await HTTP.get(without.baseURL + "/playground/app.js").status == 404)
        await without.terminate()
    }

    @Test func aUserMakesAVideoInHeadlessChromium() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start([], workers: 1)
        let key = try #require(server.devKey)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-playground-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("first.png"), small = dir.appendingPathComponent("small.png")
        try await Fixtures.image(width: 640, height: 360, format: "png").write(to: good)
        let smallData = try await Fixtures.image(width: 200, height: 200, format: "png")
        try smallData.write(to: small)
        // The message to expect is the server's own, for the same file.
        let refused = try await HTTP.submit(
            server.baseURL, key: key, json: ["image": "data:image/png;base64," + smallData.base64EncodedString(), "prompt": "x"])
        #expect(refused.status == 400)
        let message = try #require(refused.json["message"] as? String)

        let screenshot = Self.output.appendingPathComponent("playground.png")
        let run = try await Tools.run(
            Self.python.path,
            [
                Self.root.appendingPathComponent("Tests/Browser/playground_check.py").path, "--url", server.baseURL, "--key", key,
                "--image", good.path, "--small-image", small.path, "--small-image-message", message, "--duration", "3",
                "--screenshot", screenshot.path,
            ],
            direct: true, timeout: .seconds(300))
        #expect(run.status == 0, "\(run.output)\nserver log:\n\(server.log.suffix(3000))")
        let lastLine = run.output.split(separator: "\n").last.map(String.init) ?? ""
        let report = try #require(
            (try? JSONSerialization.jsonObject(with: Data(lastLine.utf8))) as? [String: Any], "\(run.output)")
        let id = try #require(report["task_id"] as? String)

        // The task the page made is the one the API reports: the fields as set in the page, the MP4 as played.
        let result = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect((result.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")
        #expect((result.json["extra"] as? [String: Any])?["seed"] as? String == "42")
        let file = try #require(ServerProcess.storedResults(of: id, blobs: server.dataDir.appendingPathComponent("blobs")).first)
        let probe = try await Tools.probe(
            server.dataDir.appendingPathComponent("blobs/results/\(id.prefix(2))/\(file)"))
        #expect(probe.contains { $0["codec_type"] as? String == "audio" }, "sound was ticked")
        #expect(FileManager.default.fileExists(atPath: screenshot.path))
        await server.terminate()
    }
}
