import Foundation
import Testing
import NIOHTTP1

/// Hostile submit bodies over real HTTP: each is refused in the contract's error shape, nothing is stored,
/// and the server keeps serving (a trap in validation would take the whole process down).
@Suite(.serialized) struct HostileInput {
    func expectRefused(_ r: HTTPResult, status: Int, reason: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status == status, "\(what): \(r.status) \(r.text.prefix(300))", sourceLocation: sourceLocation)
        #expect(r.json["code"] as? Int == status, "\(what)", sourceLocation: sourceLocation)
        #expect(r.json["reason"] as? String == reason, "\(what): \(r.text.prefix(300))", sourceLocation: sourceLocation)
        #expect(!(r.json["message"] as? String ?? "").isEmpty, "\(what)", sourceLocation: sourceLocation)
        #expect(r.json["metadata"] is [String: String], "\(what)", sourceLocation: sourceLocation)
    }

    @Test func hostileBodiesAreRefusedAndTheServerStaysUp() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(workers: 0)
        let key = try #require(server.devKey)
        let url = server.baseURL + "/v3/async/kling-v3.0-std-i2v"
        let headers = [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")]
        func post(_ body: Data) async throws -> HTTPResult { try await HTTP.request(.POST, url, headers: headers, body: body) }
        let png = try await Fixtures.image(width: 640, height: 360, format: "png").base64EncodedString()

        // An exponent whose magnitude is Int.min once trapped the integer reader: any client could crash the server.
        for literal in ["1e-9223372036854775808", "-1e-9223372036854775808", "1e9223372036854775807", "9223372036854775808"] {
            let body = Data(#"{"image":"\#(png)","prompt":"a","duration":\#(literal)}"#.utf8)
            expectRefused(try await post(body), status: 400, reason: "INVALID_REQUEST_BODY", "duration \(literal)")
        }
        expectRefused(try await post(Data(String(repeating: "[", count: 200_000).utf8)), status: 400, reason: "INVALID_REQUEST_BODY", "deep nesting")
        expectRefused(
            try await post(Data([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])), status: 400, reason: "INVALID_REQUEST_BODY", "invalid UTF-8")

        // A 30000 x 30000 PNG that is a few hundred bytes on the wire: refused from its header, never decoded.
        let bomb = Self.png(width: 30000, height: 30000).base64EncodedString()
        expectRefused(
            try await HTTP.submit(server.baseURL, key: key, json: ["image": bomb, "prompt": "a"]), status: 400,
            reason: "IMAGE_EXCEEDS_MAX_RESOLUTION", "30000x30000 PNG")
        // A plausible header with its pixel data cut off: the full decode at submit refuses it.
        let headerOnly = Data(try #require(Data(base64Encoded: png)).prefix(64)).base64EncodedString()
        expectRefused(
            try await HTTP.submit(server.baseURL, key: key, json: ["image": headerOnly, "prompt": "a"]), status: 400, reason: "INVALID_IMAGE_FORMAT",
            "header-only PNG")
        // Just over 10 MB of image after base64 decoding.
        let large = Data(repeating: 0x41, count: 10 * 1024 * 1024 + 1).base64EncodedString()
        expectRefused(
            try await HTTP.submit(server.baseURL, key: key, json: ["image": large, "prompt": "a"]), status: 400,
            reason: "IMAGE_FILE_EXCEEDS_MAX_SIZE", "10 MB + 1 image")

        // A body over the 32 MiB cap is refused from its Content-Length, before it is parsed.
        let oversized = Data(repeating: 0x20, count: 32 * 1024 * 1024 + 1)
        let tooLarge = try await post(oversized)
        expectRefused(tooLarge, status: 413, reason: "REQUEST_BODY_TOO_LARGE", "32 MiB + 1 body")

        // Nothing was stored, and the server still serves.
        #expect(server.storedInputs().isEmpty)
        #expect(try await HTTP.get(server.baseURL + "/healthz").status == 200)
        let ok = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "a", "duration": 3])
        #expect(ok.status == 200, "\(ok.text)")
        await server.terminate()
    }

    /// A valid PNG signature and IHDR for the given size, followed by a tiny IDAT: the header parser's whole input.
    static func png(width: UInt32, height: UInt32) -> Data {
        func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let t = Array(type.utf8) + body
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in t {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
            }
            return be32(UInt32(body.count)) + t + be32(~crc)
        }
        return Data(
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(width) + be32(height) + [8, 2, 0, 0, 0])
                + chunk("IDAT", [0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 512)) + chunk("IEND", []))
    }
}
