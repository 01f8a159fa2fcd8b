import Foundation
import KinemaTestSupport
import NIOHTTP1
import Testing

/// Kinema on several machines with no shared filesystem: PostgreSQL and an S3-protocol server (moto, signatures
/// checked) hold everything; API nodes and workers share nothing else.
@Suite(.serialized) struct ObjectStorageTests {
    static func s3Options(_ moto: MotoServer, prefix: String) -> [String] {
        ["--blob-store", "s3://\(moto.bucket)/\(prefix)", "--s3-endpoint", moto.endpoint, "--s3-path-style"]
    }

    @Test func twoNodesAndTwoWorkersShareOnlyTheDatabaseAndTheBucket() async throws {
        let pg = try await ThrowawayPostgres.start()
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let nodeA = try ServerProcess(), nodeB = try ServerProcess(), presigning = try ServerProcess()
        var workers: [RemoteWorkerProcess] = []
        defer {
            for w in workers { w.kill() }
            for node in [nodeA, nodeB, presigning] {
                if let p = node.process { send(SIGKILL, to: p) }
                node.removeData()
            }
        }
        let s3 = Self.s3Options(moto, prefix: "deploy")
        try await nodeA.start(["--database", pg.url] + s3, workers: 0, environment: moto.environment)
        try await nodeB.start(["--database", pg.url] + s3, workers: 0, logLevel: "info", environment: moto.environment)
        let key = try #require(nodeA.devKey)

        // One database worker (uploads straight to the bucket) and one remote worker (uploads through node A).
        let tokenRun = try await ServerProcess.cli(["worker-token", "create", "--name", "s3", "--database", pg.url])
        let token = try #require(tokenRun.stdout.split(separator: "\n").last.map { $0.trimmingCharacters(in: .whitespaces) })
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-s3-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        workers.append(
            try await RemoteWorkerProcess.start(
                ["--database", pg.url, "--worker-id", "db1", "--scratch-dir", scratch.appendingPathComponent("db1").path] + s3,
                environment: moto.environment))
        workers.append(
            try await RemoteWorkerProcess.start([
                "--server", nodeA.baseURL, "--worker-token", token, "--worker-id", "remote1", "--claim-wait", "1", "--scratch-dir",
                scratch.appendingPathComponent("remote1").path,
            ]))

        // And one remote worker that PUTs its results straight into the bucket (presigned URLs from node B).
        workers.append(
            try await RemoteWorkerProcess.start([
                "--server", nodeB.baseURL, "--worker-token", token, "--worker-id", "direct1", "--direct-upload", "--claim-wait", "1",
                "--scratch-dir",
                scratch.appendingPathComponent("direct1").path,
            ]))

        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        var ids: [String] = []
        for _ in 0..<9 {
            let r = try await HTTP.submit(nodeA.baseURL, key: key, json: ["image": png, "prompt": "slow push in", "duration": 3])
            #expect(r.status == 200, "\(r.text)")
            ids.append(try #require(r.json["task_id"] as? String))
        }
        var owners: Set<String> = []
        for id in ids {
            let done = try await HTTP.waitForTerminal(nodeB.baseURL, key: key, id: id, timeout: .seconds(180))
            #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            let worker = try await pg.query("SELECT worker_id FROM task_attempts WHERE task_id = '\(id)' AND outcome = 'succeeded'")
            let parts = (worker.first?.first ?? "").split(separator: "/")
            owners.insert(parts.first == "remote" && parts.count > 2 ? String(parts[2]) : String(parts.first ?? ""))
        }
        #expect(owners == ["db1", "remote1", "direct1"], "every worker rendered: \(owners)")
        // The direct worker's results went straight to the bucket; node B only checked and recorded them.
        #expect(nodeB.log.contains("remote result stored directly"), "\(nodeB.log.suffix(3000))")

        // Downloaded from node B, which streams the object from the bucket; ranges too.
        let result = try await HTTP.result(nodeB.baseURL, key: key, id: ids[0])
        let url = try #require(((result.json["videos"] as? [[String: Any]])?.first)?["video_url"] as? String)
        #expect(url.hasPrefix(nodeB.baseURL + "/files/results/"))
        let whole = try await HTTP.get(url)
        #expect(whole.status == 200 && whole.body.count > 1000 && String(decoding: whole.body[4..<8], as: UTF8.self) == "ftyp")
        let part = try await HTTP.get(url, headers: [("Range", "bytes=100-1099")])
        #expect(part.status == 206 && part.body == whole.body[100...1099])
        #expect(part.headers.first(name: "Content-Range") == "bytes 100-1099/\(whole.body.count)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-s3-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: file) }
        try whole.body.write(to: file)
        let video = try #require(try await Tools.probe(file).first { $0["codec_type"] as? String == "video" })
        #expect(video["nb_read_frames"] as? String == "72")
        // Nothing was written beside the nodes: no blob folder in their data directories.
        for node in [nodeA, nodeB] {
            #expect(!FileManager.default.fileExists(atPath: node.dataDir.appendingPathComponent("blobs/results").path))
        }

        // Presigned mode: video_url goes straight to the bucket, and a plain client fetches the same bytes.
        try await presigning.start(
            ["--database", pg.url, "--video-url-mode", "presigned"] + s3, workers: 0, environment: moto.environment)
        let direct = try await HTTP.result(presigning.baseURL, key: key, id: ids[0])
        let presigned = try #require(((direct.json["videos"] as? [[String: Any]])?.first)?["video_url"] as? String)
        #expect(presigned.hasPrefix("\(moto.endpoint)/\(moto.bucket)/deploy/results/") && presigned.contains("X-Amz-Signature="))
        let fetched = try await HTTP.get(presigned)
        #expect(fetched.status == 200 && fetched.body == whole.body)
        let ranged = try await HTTP.get(presigned, headers: [("Range", "bytes=0-99")])
        #expect(ranged.status == 206 && ranged.body == whole.body[0...99])

        // The node checks what a worker says it uploaded: a wrong object is refused (400) and deleted, the lease stays
        // held, and the same result sent through the node completes the task.
        for w in workers { _ = await w.terminate() }
        // A stopped remote worker's last long-poll lives on in its node until the claim wait (1 s here) runs out; a task
        // submitted before that would be claimed for the dead worker.
        try await Task.sleep(for: .seconds(2))
        let extra = try #require(
            try await HTTP.submit(nodeA.baseURL, key: key, json: ["image": png, "prompt": "zoom", "duration": 3]).json["task_id"] as? String)
        let claim = try await HTTP.request(
            .POST, nodeA.baseURL + "/internal/v1/worker/claim",
            headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
            body: Data(#"{"worker_id":"manual","direct_upload":true,"wait_seconds":5}"#.utf8))
        #expect(claim.status == 200, "\(claim.text)")
        let lease = try #require((claim.json["lease"] as? [String: Any])?["lease_id"] as? String)
        let uploadURL = try #require((claim.json["result_upload"] as? [String: Any])?["url"] as? String, "\(claim.text)")
        #expect(uploadURL.hasPrefix(moto.endpoint) && ((claim.json["task"] as? [String: Any])?["task_id"] as? String) == extra)
        let notVideo = Data(repeating: 0x41, count: 5000)
        #expect(try await HTTP.request(.PUT, uploadURL, headers: [("Content-Type", "video/mp4")], body: notVideo).status == 200)
        let report = { (size: Int) in
            try await HTTP.request(
                .POST, nodeA.baseURL + "/internal/v1/worker/tasks/\(extra)/uploaded",
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                body: Data(#"{"lease_id":"\#(lease)","size":\#(size)}"#.utf8))
        }
        let wrongSize = try await report(4999)
        #expect(wrongSize.status == 400 && wrongSize.json["reason"] as? String == "INVALID_RESULT", "\(wrongSize.text)")
        let gone = try await report(5000)
        #expect(gone.status == 400 && (gone.json["message"] as? String ?? "").contains("No result was uploaded"), "deleted: \(gone.text)")
        #expect(try await HTTP.request(.PUT, uploadURL, headers: [("Content-Type", "video/mp4")], body: notVideo).status == 200)
        let notMP4 = try await report(5000)
        #expect(notMP4.status == 400 && (notMP4.json["message"] as? String ?? "").contains("not an MP4"), "\(notMP4.text)")
        let viaNode = try await HTTP.request(
            .PUT, nodeA.baseURL + "/internal/v1/worker/tasks/\(extra)/result?lease_id=\(lease)",
            headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "video/mp4")], body: whole.body)
        #expect(viaNode.status == 200, "\(viaNode.text)")
        let extraDone = try await HTTP.result(nodeB.baseURL, key: key, id: extra)
        #expect((extraDone.json["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED")

        for node in [nodeA, nodeB, presigning] { await node.terminate() }
        await pg.stop()
    }

    /// A 15 s 1800×720 result larger than the multipart threshold (16 MiB; a noisy picture makes a ≈28 MB file) is
    /// uploaded in 8 MiB parts, and what comes back is the whole, playable file. The parts go up once the encoder
    /// finished: the MP4 is written with +faststart, which moves the index to the front by rewriting the file at the
    /// end, so bytes written during encoding are not yet where they will stay.
    @Test func aLargeResultGoesUpInPartsAndComesBackWhole() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(Self.s3Options(moto, prefix: "large"), workers: 1, environment: moto.environment)
        let key = try #require(server.devKey)
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("noisy-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: image) }
        let made = try await Tools.run(
            "ffmpeg", ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=1800x720,noise=alls=60:allf=t", "-frames:v", "1", "-y", image.path])
        #expect(made.status == 0, "\(made.output)")
        let png = try Data(contentsOf: image).base64EncodedString()
        let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "slow push in", "duration": 15])
        let id = try #require(r.json["task_id"] as? String, "\(r.text)")
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(240))
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")

        // The bucket holds the result as a multipart object: its ETag ends in "-<parts>", here 28 MB in 8 MiB parts.
        let etags = try await moto.etags(prefix: "large/results/")
        let etag = try #require(etags.values.first, "no result in the bucket: \(etags)")
        let parts = Int(etag.split(separator: "-").last ?? "") ?? 0
        #expect(etags.count == 1 && etag.contains("-") && parts >= 3, "result ETag \(etag)")

        // Downloaded whole through the node: over the threshold, and a 15 s 1800×720 video to ffprobe.
        let url = try #require(((done["videos"] as? [[String: Any]])?.first)?["video_url"] as? String)
        let video = try await HTTP.get(url)
        #expect(video.status == 200 && video.body.count > 16 * 1024 * 1024, "\(video.status), \(video.body.count) bytes")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("large-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: file) }
        try video.body.write(to: file)
        let probe = try await Tools.run(
            "ffprobe",
            [
                "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=width,height,nb_read_packets",
                "-of", "csv=p=0", file.path,
            ])
        #expect(probe.output.trimmingCharacters(in: .whitespacesAndNewlines) == "1800,720,360", "\(probe.output)") // 15 s at 24 fps
        await server.terminate()
    }

    @Test func whileS3IsDownSubmitsAnswer503AndARunningTaskWaitsToUpload() async throws {
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(Self.s3Options(moto, prefix: "outage"), workers: 1, environment: moto.environment)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()

        // A task that renders for a few seconds; S3 goes down once it is claimed: the worker retries fetching its inputs
        // or storing its result (whichever meets the outage), keeping its lease, and no attempt is lost.
        let r = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "orbit around", "duration": 15])
        let id = try #require(r.json["task_id"] as? String)
        let running = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < running {
            let task = try await HTTP.result(server.baseURL, key: key, id: id).json["task"] as? [String: Any]
            if task?["status"] as? String == "TASK_STATUS_PROCESSING" { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await moto.down()

        // Submits are refused with 503 and Retry-After, and nothing is stored.
        let refused = try await HTTP.submit(server.baseURL, key: key, json: ["image": png, "prompt": "x", "duration": 3])
        #expect(refused.status == 503, "\(refused.text)")
        #expect(refused.headers.first(name: "Retry-After") != nil)
        #expect(refused.json["reason"] as? String == "SERVICE_UNAVAILABLE")
        let list = try await HTTP.get(server.baseURL + "/v3/async/tasks?limit=10", key: key)
        #expect((list.json["tasks"] as? [Any])?.count == 1, "only the first task exists: \(list.text)")

        // The render finishes and its upload waits (the worker keeps its lease); S3 comes back and the task succeeds.
        let waitingLogged = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < waitingLogged, !server.log.contains("the blob store is unavailable; trying again") {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(server.log.contains("the blob store is unavailable; trying again"), "\(server.log.suffix(2000))")
        try await moto.up()
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(120))
        #expect((done["task"] as? [String: Any])?["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        let attempts = try await HTTP.get(server.baseURL + "/v3/async/task-result?task_id=\(id)", key: key)
        #expect(attempts.status == 200)
        let url = try #require(((done["videos"] as? [[String: Any]])?.first)?["video_url"] as? String)
        let video = try await HTTP.get(url)
        #expect(video.status == 200 && String(decoding: video.body[4..<8], as: UTF8.self) == "ftyp")
        await server.terminate()
    }
}
