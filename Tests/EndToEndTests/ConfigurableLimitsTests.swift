import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import NIOHTTP1

/// The operator's limits from the command line take effect, in the contract's error shape.
@Suite struct ConfigurableLimits {
    @Test func jsonDepthFollowsItsOption() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--json-max-depth", "5"], workers: 0)
        let key = try #require(server.devKey)
        func body(depth: Int) -> Data {
            // The top-level object holds `extra`, whose value nests depth - 1 objects: depth containers in all.
            let inner = String(repeating: "{\"a\":", count: depth - 2) + "{}" + String(repeating: "}", count: depth - 2)
            return Data(("{\"prompt\":\"x\",\"extra\":" + inner + "}").utf8)
        }
        let headers = [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")]
        let url = server.baseURL + "/v3/async/kling-v3.0-std-i2v"
        // Depth 5 parses (and then fails for the missing image); depth 6 is refused by the parser.
        let fits = try await HTTP.request(.POST, url, headers: headers, body: body(depth: 5))
        #expect(fits.json["metadata"].flatMap { ($0 as? [String: Any])?["field"] as? String } == "image", "\(fits.text)")
        let deep = try await HTTP.request(.POST, url, headers: headers, body: body(depth: 6))
        #expect(deep.status == 400)
        #expect(deep.json["reason"] as? String == "INVALID_REQUEST_BODY", "\(deep.text)")
        #expect((deep.json["message"] as? String)?.contains("deeper than 5") == true, "\(deep.text)")
        // The cap belongs to the member that nests too deep: the error names it.
        #expect(deep.json["metadata"].flatMap { ($0 as? [String: Any])?["field"] as? String }?.hasPrefix("extra.a") == true, "\(deep.text)")
        await server.terminate()
    }

    @Test func bodyCapAndPixelLimitsFollowTheirOptions() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(["--max-body-bytes", "300000", "--max-image-side", "500", "--max-image-pixels", "200000"], workers: 0)
        let key = try #require(server.devKey)

        // 640 px wide: over the 500 px side limit, read from the header.
        let wide = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()
        let sides = try await HTTP.submit(server.baseURL, key: key, json: ["image": wide, "prompt": "pan left"])
        #expect(sides.status == 400, "\(sides.text)")
        #expect(sides.json["reason"] as? String == "IMAGE_EXCEEDS_MAX_RESOLUTION", "\(sides.text)")

        // 480x480 fits the side limit but not 200,000 pixels.
        let square = try await Fixtures.image(width: 480, height: 480, format: "png").base64EncodedString()
        let pixels = try await HTTP.submit(server.baseURL, key: key, json: ["image": square, "prompt": "pan left"])
        #expect(pixels.json["reason"] as? String == "IMAGE_EXCEEDS_MAX_RESOLUTION", "\(pixels.text)")

        // A body over 300,000 bytes is refused before it is parsed.
        let big = try await HTTP.submit(server.baseURL, key: key, json: ["image": String(repeating: "A", count: 400_000), "prompt": "x"])
        #expect(big.status == 413, "\(big.text)")
        #expect(big.json["reason"] as? String == "REQUEST_BODY_TOO_LARGE", "\(big.text)")

        // Within the limits a submit still works.
        let fits = try await Fixtures.image(width: 400, height: 400, format: "png").base64EncodedString()
        #expect(try await HTTP.submit(server.baseURL, key: key, json: ["image": fits, "prompt": "pan left"]).status == 200)
        // Nonsense values are refused at start with a message.
        for bad in [["--json-max-depth", "3"], ["--fetch-max-redirects", "-1"], ["--fetch-timeout", "0"]] {
            let r = try await ServerProcess.cli(["serve", "--data-dir", server.dataDir.path] + bad)
            #expect(r.status != 0, "\(bad)")
            #expect(r.stdout.contains(bad[0]), "\(bad): \(r.stdout)")
        }
        let refused = try await ServerProcess.cli(["serve", "--data-dir", server.dataDir.path, "--max-image-side", "10"])
        #expect(refused.status != 0)
        #expect(refused.stdout.contains("--max-image-side"), "\(refused.stdout)")
        await server.terminate()
    }
}
