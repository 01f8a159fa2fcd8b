import Foundation
import Testing
import NIOHTTP1

/// Every oversized `image` or `end_image`, up to the body cap, gets the contract's answer from the real server:
/// 400 `IMAGE_FILE_EXCEEDS_MAX_SIZE` naming the field. Past the body cap the body is not read: 413.
@Suite struct OversizedImages {
    static let mb = 1024 * 1024

    /// A body with `field` set to `count` base64 characters (with an optional data-URI prefix) and a valid image
    /// elsewhere when the field is `end_image`.
    static func body(field: String, characters count: Int, dataURI: Bool, image: String) -> Data {
        var text = "{\"prompt\":\"slow push in\","
        if field == "end_image" { text += "\"image\":\"" + image + "\"," }
        text += "\"" + field + "\":\"" + (dataURI ? "data:image/jpeg;base64," : "") + String(repeating: "A", count: count) + "\"}"
        return Data(text.utf8)
    }

    @Test func oversizedImagesAreImageErrorsUpToTheBodyCapAnd413Beyond() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        let cap = 24_000_000
        try await server.start(["--max-body-bytes", String(cap)], workers: 0)
        let key = try #require(server.devKey)
        let image = try await Fixtures.image(width: 400, height: 400, format: "png").base64EncodedString()
        let headers = [("Authorization", "Bearer \(key)"), ("Content-Type", "application/json")]
        let url = server.baseURL + "/v3/async/kling-v3.0-std-i2v"
        func post(_ body: Data) async throws -> HTTPResult { try await HTTP.request(.POST, url, headers: headers, body: body) }

        for field in ["image", "end_image"] {
            for dataURI in [false, true] {
                // 10 MB + 3 bytes, 11.5 MB (past the JSON parser's string cap, the case that said "not valid JSON"),
                // and a body just under the body cap.
                let overhead = Self.body(field: field, characters: 0, dataURI: dataURI, image: image).count
                for characters in [(10 * Self.mb + 3) / 3 * 4, 23 * Self.mb / 2 / 3 * 4, cap - overhead] {
                    let b = Self.body(field: field, characters: characters, dataURI: dataURI, image: image)
                    #expect(b.count <= cap)
                    let r = try await post(b)
                    #expect(r.status == 400, "\(field) \(characters): \(r.text.prefix(300))")
                    #expect(r.json["reason"] as? String == "IMAGE_FILE_EXCEEDS_MAX_SIZE", "\(field) \(characters): \(r.text.prefix(300))")
                    #expect((r.json["metadata"] as? [String: Any])?["field"] as? String == field, "\(r.text.prefix(300))")
                }
                // One byte over the body cap: refused before parsing.
                let over = Self.body(field: field, characters: cap - overhead + 1, dataURI: dataURI, image: image)
                #expect(over.count == cap + 1)
                let r = try await post(over)
                #expect(r.status == 413, "\(r.text.prefix(300))")
                #expect(r.json["reason"] as? String == "REQUEST_BODY_TOO_LARGE", "\(r.text.prefix(300))")
            }
        }
        // None of it stored anything: the first real submit's image is the only input file.
        let ok = try await HTTP.submit(server.baseURL, key: key, json: ["image": image, "prompt": "pan left"])
        #expect(ok.status == 200, "\(ok.text)")
        let id = try #require(ok.json["task_id"] as? String)
        let stored = server.storedInputs()
        #expect(stored == ["\(id.prefix(2))/\(id).png"], "\(stored)")
        await server.terminate()
    }
}
