import Foundation
import Testing
import NIOHTTP1

/// The whole product path over real HTTP: a `kinema serve` process, submit, poll, download, ffprobe.
@Suite(.serialized) struct SubmitPollDownload {
    /// Submits, waits for success, downloads without auth, and returns the probed streams.
    func renderThroughAPI(
        _ server: ServerProcess, key: String, body: [String: Any]
    ) async throws -> (result: [String: Any], streams: [[String: Any]], file: URL) {
        let submit = try await HTTP.submit(server.baseURL, key: key, json: body)
        #expect(submit.status == 200, "\(submit.text)")
        let id = try #require(submit.json["task_id"] as? String)
        #expect(id == id.lowercased() && UUID(uuidString: id) != nil)

        // Visible at once, never a 404.
        let first = try await HTTP.result(server.baseURL, key: key, id: id)
        #expect(first.status == 200)
        let firstStatus = (first.json["task"] as? [String: Any])?["status"] as? String
        #expect(["TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING", "TASK_STATUS_SUCCEED"].contains(firstStatus ?? ""))

        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        let task = try #require(done["task"] as? [String: Any])
        #expect(task["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        #expect(task["progress_percent"] as? Int == 100)
        let videos = try #require(done["videos"] as? [[String: Any]])
        #expect(videos.count == 1)
        let url = try #require(videos.first?["video_url"] as? String)
        #expect(url.hasPrefix(server.baseURL + "/files/"))
        #expect(videos.first?["video_url_ttl"] as? String == "3600")
        #expect(videos.first?["video_type"] as? String == "mp4")

        let download = try await HTTP.get(url)
        #expect(download.status == 200)
        #expect(download.headers.first(name: "content-type") == "video/mp4")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-\(id).mp4")
        try download.body.write(to: file)
        return (done, try await Tools.probe(file), file)
    }

    @Test func pngBecomesA720pH264ClipWithExactFrames() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start()
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 640, height: 360, format: "png")
        let (result, streams, file) = try await renderThroughAPI(
            server, key: key,
            body: [
                "image": png.base64EncodedString(), "prompt": "slow pan left over the scene", "duration": 3, "seed": 42,
            ])
        defer { try? FileManager.default.removeItem(at: file) }
        let video = try #require(streams.first { $0["codec_type"] as? String == "video" })
        #expect(video["codec_name"] as? String == "h264")
        #expect(video["pix_fmt"] as? String == "yuv420p")
        #expect(video["width"] as? Int == 1280)
        #expect(video["height"] as? Int == 720)
        #expect(video["r_frame_rate"] as? String == "24/1")
        #expect(video["nb_read_frames"] as? String == "72")
        #expect(!streams.contains { $0["codec_type"] as? String == "audio" })

        // Every contract type rule, checked on the real body.
        let extra = try #require(result["extra"] as? [String: Any])
        #expect(extra["seed"] as? String == "42")
        let debug = try #require(extra["debug_info"] as? [String: Any])
        for k in ["submit_time_ms", "execute_time_ms", "complete_time_ms"] {
            let v = try #require(debug[k] as? String)
            #expect(Int64(v) ?? 0 > 0, "\(k) = \(v)")
        }
        #expect(result["images"] as? [Any] != nil)
        #expect(result["audios"] as? [Any] != nil)
        let task = try #require(result["task"] as? [String: Any])
        #expect(task["task_type"] as? String == "KLING_V3_0_STD_I2V")
        #expect(task["eta"] as? Int == 0)
        #expect(task["reason"] as? String == "")
        await server.terminate()
    }

    @Test func jpegWithSoundCarriesAACAndPortraitKeepsItsShape() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start()
        let key = try #require(server.devKey)
        let jpeg = try await Fixtures.image(width: 640, height: 480, format: "jpg")
        let (_, streams, file) = try await renderThroughAPI(
            server, key: key,
            body: [
                "image": "data:image/jpeg;base64," + jpeg.base64EncodedString(), "prompt": "gentle rain, zoom in", "duration": 3, "sound": true,
            ])
        defer { try? FileManager.default.removeItem(at: file) }
        let video = try #require(streams.first { $0["codec_type"] as? String == "video" })
        #expect(video["width"] as? Int == 960)
        #expect(video["height"] as? Int == 720)
        let audio = try #require(streams.first { $0["codec_type"] as? String == "audio" })
        #expect(audio["codec_name"] as? String == "aac")
        #expect(audio["sample_rate"] as? String == "48000")
        #expect(audio["channels"] as? Int == 2)

        let portrait = try await Fixtures.image(width: 360, height: 640, format: "png")
        let (_, pStreams, pFile) = try await renderThroughAPI(
            server, key: key,
            body: [
                "image": portrait.base64EncodedString(), "prompt": "static camera", "duration": 3,
            ])
        defer { try? FileManager.default.removeItem(at: pFile) }
        let pVideo = try #require(pStreams.first { $0["codec_type"] as? String == "video" })
        #expect(pVideo["width"] as? Int == 720)
        #expect(pVideo["height"] as? Int == 1280)
        #expect(pVideo["nb_read_frames"] as? String == "72")
        await server.terminate()
    }

    @Test func signedURLsServeRangesAndRefuseTamperingAndExpiry() async throws {
        let server = try ServerProcess()
        defer { server.removeData() }
        // A long TTL, so no check below races the expiry on a starved machine; expiry is tested with a link signed
        // (with the server's own secret) to have expired already.
        try await server.start(["--video-url-ttl", "600"])
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 480, height: 480, format: "png")
        let submit = try await HTTP.submit(server.baseURL, key: key, json: ["image": png.base64EncodedString(), "prompt": "zoom in", "duration": 3])
        let id = try #require(submit.json["task_id"] as? String)
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        let url = try #require((done["videos"] as? [[String: Any]])?.first?["video_url"] as? String)

        let ranged = try await HTTP.get(url, headers: [("Range", "bytes=0-99")])
        #expect(ranged.status == 206)
        #expect(ranged.body.count == 100)
        #expect(ranged.headers.first(name: "content-range")?.hasPrefix("bytes 0-99/") == true)
        #expect(ranged.headers.first(name: "accept-ranges") == "bytes")
        let whole = try await HTTP.get(url)
        #expect(whole.body.prefix(100) == ranged.body)
        let beyond = try await HTTP.get(url, headers: [("Range", "bytes=\(whole.body.count + 10)-")])
        #expect(beyond.status == 416)

        // Tampering with the signature, the expiry or the key is refused.
        let tampered = url.replacingOccurrences(of: "sig=", with: "sig=0")
        let t = try await HTTP.get(tampered)
        #expect(t.status == 403)
        #expect(t.json["reason"] as? String == "INVALID_SIGNATURE")
        let later = url.replacingOccurrences(of: "expires=", with: "expires=9")
        #expect(try await HTTP.get(later).status == 403)

        // A validly signed link whose time is up answers URL_EXPIRED.
        let components = try #require(URLComponents(string: url))
        let fileKey = String(components.path.dropFirst("/files/".count))
        let past = Int(Date().timeIntervalSince1970) - 5
        let sig = try await Promises.sign(server, key: fileKey, expires: past)
        let e = try await HTTP.get("\(server.baseURL)/files/\(fileKey)?expires=\(past)&sig=\(sig)")
        #expect(e.status == 403)
        #expect(e.json["reason"] as? String == "URL_EXPIRED")
        #expect(e.json["code"] as? Int == 403)
        // Re-polling a second later mints a fresh URL (a new expiry, a new signature).
        try await Task.sleep(for: .milliseconds(1100))
        let again = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id)
        let fresh = try #require((again["videos"] as? [[String: Any]])?.first?["video_url"] as? String)
        #expect(fresh != url)
        #expect(try await HTTP.get(fresh).status == 200)
        await server.terminate()
    }
}
