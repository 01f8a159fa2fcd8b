import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KinemaCore
import KinemaStore
import KinemaStoreSQLite
import NIOHTTP1
import Synchronization
import Testing

/// Kinema as a durable gateway in front of hosted providers, through the real `kinema serve` and loopback stand-ins
/// that speak Novita's, Kling's and fal's wire formats (`UpstreamStandIn`).
@Suite struct UpstreamGatewayTests {
    /// Fast timing for tests: polls every 100 ms, short backoff, one-second calls, half-second pause probes.
    static let fast = [
        "--upstream-poll-seconds", "0.1", "--upstream-backoff-seconds", "0.05", "--upstream-timeout-seconds", "1",
        "--upstream-pause-seconds", "0.5",
    ]

    /// A short real MP4 (FFmpeg's test source, H.264), made once per run: what every stand-in serves.
    static func video() async throws -> Data {
        if let cached = cachedVideo.withLock({ $0 }) { return cached }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("standin-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: url) }
        let r = try await Tools.run(
            "ffmpeg",
            [
                "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y",
                url.path,
            ])
        guard r.status == 0 else { throw TestFailure("ffmpeg failed: \(r.output)") }
        let data = try Data(contentsOf: url)
        cachedVideo.withLock { $0 = data }
        return data
    }

    private static let cachedVideo = Mutex<Data?>(nil)

    /// A stand-in and a `kinema serve` pointed at it; both stopped afterwards.
    static func withGateway<T>(
        _ kind: UpstreamStandIn.Kind, _ extra: [String] = [], logLevel: String = "warning", steer: (UpstreamStandIn) -> Void = { _ in },
        _ body: (UpstreamStandIn, ServerProcess, String) async throws -> T
    ) async throws -> T {
        let standIn = try await UpstreamStandIn(kind, video: try await video())
        steer(standIn)
        let server = try ServerProcess()
        defer { server.removeData() }
        do {
            try await server.start(standIn.serveOptions + fast + extra, workers: 0, logLevel: logLevel, environment: standIn.environment)
            let result = try await body(standIn, server, try #require(server.devKey))
            await server.terminate()
            await standIn.stop()
            // No credential of the provider (Kling's access key included) ever reaches the log, whatever its level.
            for (name, value) in standIn.environment {
                #expect(!server.log.contains(value), "\(name) appears in the server's log")
            }
            return result
        } catch {
            await server.terminate()
            await standIn.stop()
            throw error
        }
    }

    static func submit(_ server: ServerProcess, _ key: String, _ json: [String: Any]) async throws -> String {
        let r = try await HTTP.submit(server.baseURL, key: key, json: json)
        guard r.status == 200, let id = r.json["task_id"] as? String else { throw TestFailure("submit failed: \(r.status) \(r.text)") }
        return id
    }

    static func task(_ body: [String: Any]) -> [String: Any] { body["task"] as? [String: Any] ?? [:] }

    /// The provider fails the next task with `words`: our task ends FAILED with them in its reason.
    static func expectProviderFailure(_ words: String, _ standIn: UpstreamStandIn, _ server: ServerProcess, _ key: String, image: Data) async throws {
        standIn.steer { $0.failNewTasks = words }
        let bad = try await Self.submit(server, key, ["image": image.base64EncodedString(), "prompt": "drift"])
        let failed = try await HTTP.waitForTerminal(server.baseURL, key: key, id: bad, timeout: .seconds(60))
        #expect(Self.task(failed)["status"] as? String == "TASK_STATUS_FAILED")
        #expect((Self.task(failed)["reason"] as? String ?? "").contains(words), "\(failed)")
    }

    /// The stored task after the server stopped (attempts, upstream handle).
    static func stored(_ server: ServerProcess, _ id: String) async throws -> (TaskRecord, [TaskAttemptRecord]) {
        let store = try DataDirectory(server.dataDir).openStore()
        let uuid = try #require(UUID(uuidString: id))
        let record = try #require(try await store.task(id: uuid))
        return (record, try await store.attempts(of: uuid))
    }

    // MARK: Novita

    @Test func novitaGetsEveryFieldAsSentAndTheVideoIsCopiedByteForByte() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png")
        let jpeg = try await Fixtures.image(width: 400, height: 300, format: "jpeg")
        try await Self.withGateway(.novita, logLevel: "trace", steer: { $0.steer { $0.holdNewTasks = true } }) { standIn, server, key in
            let started = ContinuousClock.now
            let id = try await Self.submit(
                server, key,
                [
                    "image": png.base64EncodedString(), "prompt": "a slow dolly in", "negative_prompt": "blur", "duration": 7, "cfg_scale": 0.3,
                    "sound": true, "end_image": "data:image/jpeg;base64," + jpeg.base64EncodedString(), "seed": 1234,
                ])
            // Progress is mirrored from Novita's progress_percent while it runs.
            var sawProgress = false
            let deadline = ContinuousClock.now + .seconds(60)
            var done: [String: Any] = [:]
            while ContinuousClock.now < deadline {
                let body = try await HTTP.result(server.baseURL, key: key, id: id).json
                let task = Self.task(body)
                if task["progress_percent"] as? Int == 40, task["status"] as? String == "TASK_STATUS_PROCESSING" {
                    // Mirrored (the worker's heartbeat carried it): now let the provider finish.
                    sawProgress = true
                    standIn.releaseHeldTasks()
                }
                if ["TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"].contains(task["status"] as? String ?? "") {
                    done = body
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect(sawProgress)
            // The seed Novita reports it used (its extra.seed) is the one the task reports.
            #expect((done["extra"] as? [String: Any])?["seed"] as? String == "77")

            let sent = try #require(standIn.submits.first).json
            #expect(standIn.submits.count == 1)
            #expect(sent["image"] as? String == png.base64EncodedString())
            #expect(sent["end_image"] as? String == jpeg.base64EncodedString())
            #expect(sent["prompt"] as? String == "a slow dolly in")
            #expect(sent["negative_prompt"] as? String == "blur")
            #expect(sent["duration"] as? Int == 7)
            #expect(sent["cfg_scale"] as? Double == 0.3)
            #expect(sent["sound"] as? Bool == true)
            #expect(sent["seed"] as? Int == 1234)

            // Our own signed URL serves exactly the provider's bytes.
            let url = try #require((done["videos"] as? [[String: Any]])?.first?["video_url"] as? String)
            #expect(url.hasPrefix(server.baseURL + "/files/"))
            let video = try await HTTP.get(url)
            #expect(video.status == 200)
            #expect(video.body == standIn.video)

            // At most one poll per polling interval (100 ms here) while the task ran.
            let ran = (ContinuousClock.now - started) / .milliseconds(100)
            #expect(Double(standIn.polls.count) <= ran + 2, "\(standIn.polls.count) polls in \(ran) intervals")

            // Multi-shot goes over as the contract's multi_prompt.
            let multi = try await Self.submit(
                server, key,
                [
                    "image": png.base64EncodedString(),
                    "multi_prompt": [["prompt": "pan left", "duration": 3], ["prompt": "zoom in", "duration": 4]],
                ])
            standIn.steer { $0.runningPolls = 1 }
            let second = try await HTTP.waitForTerminal(server.baseURL, key: key, id: multi, timeout: .seconds(60))
            #expect(Self.task(second)["status"] as? String == "TASK_STATUS_SUCCEED")
            let shots = try #require(standIn.submits.last).json["multi_prompt"] as? [[String: Any]]
            #expect(shots?.map { $0["prompt"] as? String } == ["pan left", "zoom in"])
            #expect(shots?.map { $0["duration"] as? Int } == [3, 4])
            #expect(standIn.submits.last?.json["prompt"] == nil)

            // The secret never reaches the log, even at trace level.
            #expect(!server.log.contains(standIn.secret))
            #expect(!server.log.isEmpty)
        }
    }

    @Test func novitaFailuresFailTheTaskWithItsWordsAndAreNeverRetried() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await Self.withGateway(.novita, ["--upstream-deadline-minutes", "0.1"]) { standIn, server, key in
            standIn.steer { $0.failNewTasks = "the image violates the content policy" }
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            let failed = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(failed)["status"] as? String == "TASK_STATUS_FAILED")
            #expect((Self.task(failed)["reason"] as? String ?? "").contains("the image violates the content policy"), "\(failed)")
            #expect(standIn.submits.count == 1)

            // A result URL that has expired (and a fresh poll gives no better one): a clear failure.
            standIn.steer {
                $0.failNewTasks = nil
                $0.expiredVideos = true
            }
            let expired = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            let gone = try await HTTP.waitForTerminal(server.baseURL, key: key, id: expired, timeout: .seconds(60))
            #expect(Self.task(gone)["status"] as? String == "TASK_STATUS_FAILED")
            #expect((Self.task(gone)["reason"] as? String ?? "").contains("expired"), "\(gone)")

            // A task the provider never finishes: a final poll at the deadline (6 s here), then a clear failure.
            standIn.steer {
                $0.expiredVideos = false
                $0.holdNewTasks = true
            }
            let slow = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            let late = try await HTTP.waitForTerminal(server.baseURL, key: key, id: slow, timeout: .seconds(60))
            #expect(Self.task(late)["status"] as? String == "TASK_STATUS_FAILED")
            #expect((Self.task(late)["reason"] as? String ?? "").contains("did not finish"), "\(late)")
            #expect(standIn.submits.count == 3)
        }
    }

    /// The deadline ends in one more poll: a task the provider finished after the last regular poll is found by it and
    /// succeeds, instead of failing unseen. Polls every 4 s, deadline 6 s, the provider finishes 5 s after the submit:
    /// the polls at ≈ 0 and ≈ 4 s say "running", and only the final one at 6 s can find the video.
    @Test func theFinalPollAtTheDeadlineFindsATaskThatFinishedAfterTheLastRegularOne() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await Self.withGateway(
            .novita, ["--upstream-deadline-minutes", "0.1", "--upstream-poll-seconds", "4"],
            steer: {
                $0.steer {
                    $0.runningPolls = 0
                    $0.runningSeconds = 5
                }
            }
        ) { standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            let submitted = try #require(standIn.submits.first).at
            let polls = standIn.polls.map { $0.at.timeIntervalSince(submitted) }
            #expect((polls.last ?? 0) >= 5, "the video was found \(polls.last ?? 0) s after the submit; polls at \(polls)")
            #expect(standIn.submits.count == 1)
        }
    }

    /// While a rate-limited submit waits (`Retry-After: 12`), the task is PROCESSING with an eta that counts the wait on
    /// top of a typical render (135 s for 5 s of video), and it succeeds afterwards with its one attempt.
    @Test func aRateLimitedSubmitWaitsWithAnHonestEtaAndKeepsItsAttempt() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await Self.withGateway(.novita, steer: { $0.steer { $0.submitFaults = [.rateLimited(retryAfter: 12)] } }) { standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            var eta = 0
            let deadline = ContinuousClock.now + .seconds(11)
            while ContinuousClock.now < deadline {
                let task = Self.task(try await HTTP.result(server.baseURL, key: key, id: id).json)
                if task["status"] as? String == "TASK_STATUS_PROCESSING", let seen = task["eta"] as? Int, seen >= 147 {
                    eta = seen
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(eta >= 147, "no eta counting the 12 s wait was reported while waiting")
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect(standIn.submits.count == 2)
            await server.terminate()
            let (record, attempts) = try await Self.stored(server, id)
            #expect(record.attempt == 1)
            #expect(attempts.count == 1)
        }
    }

    /// A "video" that is not an MP4 (an error page served with status 200) fails the task clearly and is not stored;
    /// a result URL the fetch rules refuse (no `--allow-fetch-from` for the stand-in's loopback address) too.
    @Test func aResultThatIsNotAnMP4OrCannotBeFetchedFailsTheTaskClearly() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await Self.withGateway(.novita, steer: { $0.steer { $0.videoReplacement = Data("<html>Access denied</html>".utf8) } }) {
            standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            let failed = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(failed)["status"] as? String == "TASK_STATUS_FAILED")
            #expect((Self.task(failed)["reason"] as? String ?? "").contains("not an MP4"), "\(failed)")
            #expect(server.storedResults(of: id).isEmpty)
            #expect(standIn.submits.count == 1)
        }
        let standIn = try await UpstreamStandIn(.novita, video: try await Self.video())
        let server = try ServerProcess()
        defer { server.removeData() }
        let options = standIn.serveOptions.filter { $0 != "--allow-fetch-from" && $0 != "127.0.0.1/32" }
        try await server.start(options + Self.fast, workers: 0, environment: standIn.environment)
        let key = try #require(server.devKey)
        let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
        let failed = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
        await server.terminate()
        await standIn.stop()
        #expect(Self.task(failed)["status"] as? String == "TASK_STATUS_FAILED")
        #expect((Self.task(failed)["reason"] as? String ?? "").contains("could not be copied"), "\(failed)")
        #expect(server.storedResults(of: id).isEmpty)
    }

    @Test func aHangingProviderTimesOutPerRequestAndTheTaskStillSucceeds() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await Self.withGateway(.novita, steer: { $0.steer { $0.pollFaults = [.hang, .status(503), .hang] } }) { standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect(standIn.submits.count == 1)
        }
    }

    @Test func aKilledNodeFollowsTheSameUpstreamTaskAfterRestart() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        try await Self.withGateway(.novita, steer: { $0.steer { $0.holdNewTasks = true } }) { standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            // Accepted and followed (a poll comes only after the accepted id was recorded): now the node dies.
            let deadline = ContinuousClock.now + .seconds(30)
            while standIn.polls.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(!standIn.polls.isEmpty)
            await server.kill9()
            standIn.releaseHeldTasks()
            try await server.start(standIn.serveOptions + Self.fast, workers: 0, environment: standIn.environment)
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect(standIn.submits.count == 1, "the provider was paid \(standIn.submits.count) times")
            let upstreamID = try #require(standIn.tasks.first?.id)
            #expect(standIn.polls.allSatisfy { $0.uri.hasSuffix("task_id=\(upstreamID)") })
        }
    }

    @Test func aLostSubmitAnswerIsFoundAgainOnKlingAndFailsClearlyWhereNoLookupExists() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        for kind in [UpstreamStandIn.Kind.kling, .novita] {
            try await Self.withGateway(kind, ["--upstream-timeout-seconds", "30"], steer: { $0.steer { $0.submitFaults = [.hang] } }) {
                standIn, server, key in
                let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
                // The provider took the submit, but its answer never arrives: the node dies waiting for it.
                let deadline = ContinuousClock.now + .seconds(30)
                while standIn.tasks.isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
                #expect(standIn.tasks.count == 1)
                await server.kill9()
                try await server.start(standIn.serveOptions + Self.fast, workers: 0, environment: standIn.environment)
                let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
                #expect(standIn.submits.count == 1, "\(kind): the provider was paid \(standIn.submits.count) times")
                if kind == .kling {
                    // Found by our id (external_task_id) and followed.
                    #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
                    #expect(standIn.requests.contains { $0.method == "GET" && $0.uri.hasSuffix("/v1/videos/image2video/\(id)") })
                } else {
                    #expect(Self.task(done)["status"] as? String == "TASK_STATUS_FAILED")
                    #expect((Self.task(done)["reason"] as? String ?? "").contains("not submitted again"), "\(done)")
                }
            }
        }
    }

    // MARK: Kling

    @Test func klingGetsItsOwnFieldsASignedTokenAndConcurrencyRefusalsCostNoAttempt() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png")
        let jpeg = try await Fixtures.image(width: 400, height: 300, format: "jpeg")
        try await Self.withGateway(
            .kling, logLevel: "trace", steer: { $0.steer { $0.submitFaults = [.klingCode(1303), .status(429), .klingCode(1303)] } }
        ) {
            standIn, server, key in
            let id = try await Self.submit(
                server, key,
                [
                    "image": png.base64EncodedString(), "prompt": "the camera orbits", "negative_prompt": "text", "duration": 6,
                    "cfg_scale": 0.7, "sound": true, "end_image": jpeg.base64EncodedString(),
                ])
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            // Three refusals, then one accepted submit; every request carried a valid JWT (the stand-in checks it).
            #expect(standIn.submits.count == 4)
            #expect(standIn.tasks.count == 1)
            let sent = try #require(standIn.submits.last).json
            #expect(sent["model_name"] as? String == "kling-v3")
            #expect(sent["mode"] as? String == "std")
            #expect(sent["image"] as? String == png.base64EncodedString())
            #expect(sent["image_tail"] as? String == jpeg.base64EncodedString())
            #expect(sent["prompt"] as? String == "the camera orbits")
            #expect(sent["negative_prompt"] as? String == "text")
            #expect(sent["duration"] as? String == "6")
            #expect(sent["cfg_scale"] as? Double == 0.7)
            #expect(sent["sound"] as? String == "on")
            #expect(sent["external_task_id"] as? String == id)

            let multi = try await Self.submit(
                server, key,
                ["image": png.base64EncodedString(), "multi_prompt": [["prompt": "wide", "duration": 4], ["prompt": "close", "duration": 5]]])
            let second = try await HTTP.waitForTerminal(server.baseURL, key: key, id: multi, timeout: .seconds(60))
            #expect(Self.task(second)["status"] as? String == "TASK_STATUS_SUCCEED")
            let shots = try #require(standIn.submits.last).json
            #expect(shots["multi_shot"] as? Bool == true)
            #expect(shots["shot_type"] as? String == "customize")
            #expect(shots["sound"] as? String == "off")
            #expect(shots["duration"] as? String == "9")
            let items = shots["multi_prompt"] as? [[String: Any]]
            #expect(items?.map { $0["index"] as? Int } == [1, 2])
            #expect(items?.map { $0["prompt"] as? String } == ["wide", "close"])
            #expect(items?.map { $0["duration"] as? String } == ["4", "5"])

            // Kling's own failure: FAILED with its words, never submitted again.
            try await Self.expectProviderFailure("risk control: the image may violate the rules", standIn, server, key, image: png)
            #expect(standIn.submits.count == 6)

            await server.terminate()
            let (record, attempts) = try await Self.stored(server, id)
            #expect(record.attempt == 1)
            #expect(attempts.count == 1)
            #expect(record.upstream?.id == standIn.tasks.first?.id)
        }
    }

    /// Each provider's account refusal (Kling 1102, Novita's balance 403, fal's locked user) pauses that provider: the
    /// node stays ready and says so, its tasks wait without using attempts, and all resume once the account works.
    @Test(arguments: [UpstreamStandIn.Kind.kling, .novita, .fal])
    func anAccountRefusalPausesTheProviderAndItsTasksWaitUntilItWorks(kind: UpstreamStandIn.Kind) async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let words = [UpstreamStandIn.Kind.kling: "1102", .novita: "NOT_ENOUGH_BALANCE", .fal: "Exhausted balance"][kind] ?? ""
        try await Self.withGateway(kind, steer: { $0.steer { $0.accountBroken = true } }) { standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png, "prompt": "pan"])
            var paused: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                paused = try await HTTP.get(server.baseURL + "/readyz").json
                if paused["paused_engines"] != nil { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(paused["status"] as? String == "ready")
            // A plain String first: #expect's expansion of the optional chain warned that its `contains` went unused.
            let why = (paused["paused_engines"] as? [String: String])?[kind.rawValue] ?? ""
            #expect(why.contains(words), "\(paused)")
            // The task waits (queued, not failed) while probes keep finding the account refused.
            try await Task.sleep(for: .seconds(1.5))
            let waiting = Self.task(try await HTTP.result(server.baseURL, key: key, id: id).json)
            #expect(["TASK_STATUS_QUEUED", "TASK_STATUS_PROCESSING"].contains(waiting["status"] as? String ?? ""), "\(waiting)")
            #expect(standIn.tasks.isEmpty)
            #expect(server.log.contains("upstream provider paused"))

            standIn.steer { $0.accountBroken = false }
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            #expect(try await HTTP.get(server.baseURL + "/readyz").json["paused_engines"] == nil)
            #expect(standIn.tasks.count == 1)
            await server.terminate()
            let (record, _) = try await Self.stored(server, id)
            #expect(record.attempt <= 1, "waiting for the account used attempts: \(record.attempt)")
        }
    }

    /// `--upstream-concurrency` bounds the tasks a provider runs at once on a node (the rest wait queued), the base
    /// URL may come from the environment (`KINEMA_UPSTREAM_KLING_URL`), and `--upstream-kling-model` is what Kling
    /// receives as `model_name`.
    @Test func concurrencyBaseURLFromTheEnvironmentAndModelNameAreHonoured() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let standIn = try await UpstreamStandIn(.kling, video: try await Self.video())
        standIn.steer { $0.holdNewTasks = true }
        let server = try ServerProcess()
        defer { server.removeData() }
        let options =
            ["--engine", "kling", "--allow-fetch-from", "127.0.0.1/32", "--upstream-concurrency", "2", "--upstream-kling-model", "kling-v3-lab"]
            + Self.fast
        try await server.start(
            options, workers: 0, environment: standIn.environment.merging(["KINEMA_UPSTREAM_KLING_URL": standIn.baseURL]) { $1 })
        let key = try #require(server.devKey)
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try await Self.submit(server, key, ["image": png, "prompt": "pan"])) }
        let deadline = ContinuousClock.now + .seconds(30)
        while standIn.submits.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .seconds(1.5))
        #expect(standIn.submits.count == 2, "two at once, the third waits: \(standIn.submits.count) submits")
        var statuses: [String?] = []
        for id in ids { statuses.append(Self.task(try await HTTP.result(server.baseURL, key: key, id: id).json)["status"] as? String) }
        #expect(statuses.filter { $0 == "TASK_STATUS_QUEUED" }.count == 1, "\(statuses)")
        #expect(standIn.submits.allSatisfy { $0.json["model_name"] as? String == "kling-v3-lab" })
        standIn.releaseHeldTasks()
        for id in ids {
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        }
        #expect(standIn.submits.count == 3)
        await server.terminate()
        await standIn.stop()
    }

    // MARK: fal

    @Test func falIsFollowedAtTheURLsItReturnsAndItsFailuresCarryItsDetail() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png")
        try await Self.withGateway(.fal, logLevel: "trace", steer: { $0.steer { $0.submitFaults = [.status(429)] } }) { standIn, server, key in
            let id = try await Self.submit(server, key, ["image": png.base64EncodedString(), "prompt": "drift"])
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            let sent = try #require(standIn.submits.last)
            #expect(sent.uri == "/fal-ai/kling-video/v3/standard/image-to-video")
            #expect(sent.json["start_image_url"] as? String == "data:image/png;base64," + png.base64EncodedString())
            // fal's defaults differ from ours: both always sent.
            #expect(sent.json["generate_audio"] as? Bool == false)
            #expect(sent.json["negative_prompt"] as? String == "")
            #expect(sent.json["duration"] as? String == "5")
            // Followed where fal said, not where the model path would suggest.
            #expect(!standIn.polls.isEmpty)
            #expect(standIn.polls.allSatisfy { $0.uri.hasPrefix("/elsewhere/requests/") })
            let video = try await HTTP.get(try #require((done["videos"] as? [[String: Any]])?.first?["video_url"] as? String))
            #expect(video.body == standIn.video)

            // Multi-shot with sound: fal's multi_prompt with string durations, shot_type, generate_audio on.
            let multi = try await Self.submit(
                server, key,
                [
                    "image": png.base64EncodedString(), "sound": true, "negative_prompt": "blur",
                    "multi_prompt": [["prompt": "wide", "duration": 3], ["prompt": "close", "duration": 4]],
                ])
            let shotsDone = try await HTTP.waitForTerminal(server.baseURL, key: key, id: multi, timeout: .seconds(60))
            #expect(Self.task(shotsDone)["status"] as? String == "TASK_STATUS_SUCCEED", "\(shotsDone)")
            let shots = try #require(standIn.submits.last).json
            #expect(shots["generate_audio"] as? Bool == true)
            #expect(shots["negative_prompt"] as? String == "blur")
            #expect(shots["shot_type"] as? String == "customize")
            #expect(shots["duration"] as? String == "7")
            #expect(shots["prompt"] == nil)
            let items = shots["multi_prompt"] as? [[String: Any]]
            #expect(items?.map { $0["prompt"] as? String } == ["wide", "close"])
            #expect(items?.map { $0["duration"] as? String } == ["3", "4"])

            try await Self.expectProviderFailure("prompt flagged by the safety checker", standIn, server, key, image: png)
            #expect(standIn.submits.count == 4)
        }
    }

    @Test func falCanFetchTheImagesFromOurOwnSignedLinks() async throws {
        let png = try await Fixtures.image(width: 400, height: 300, format: "png")
        let jpeg = try await Fixtures.image(width: 400, height: 300, format: "jpeg")
        let port = try Self.freePort()
        let options = ["--port", "\(port)", "--public-url", "http://127.0.0.1:\(port)", "--upstream-fal-images", "url"]
        try await Self.withGateway(.fal, options) { standIn, server, key in
            let id = try await Self.submit(
                server, key, ["image": png.base64EncodedString(), "end_image": jpeg.base64EncodedString(), "prompt": "drift"])
            let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
            #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
            let sent = try #require(standIn.submits.last).json
            // What fal would download: our signed links, serving exactly the images that were submitted.
            let start = try #require(sent["start_image_url"] as? String)
            let end = try #require(sent["end_image_url"] as? String)
            #expect(start.hasPrefix("http://127.0.0.1:\(port)/files/inputs/"))
            let first = try await HTTP.get(start)
            #expect(first.status == 200)
            #expect(first.body == png)
            #expect(first.headers.first(name: "Content-Type") == "image/png")
            #expect(try await HTTP.get(end).body == jpeg)
            // Signed: the link without its signature is refused.
            #expect(try await HTTP.get(String(start.prefix { $0 != "?" })).status == 403)
        }
    }

    /// A loopback port nobody listens on now (the server binds it right after).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    // MARK: Configuration

    @Test func aProviderWithoutCredentialsRefusesToStartAndTheCredentialsFileMustBePrivate() async throws {
        let noKeys = try await ServerProcess.cli([
            "serve", "--port", "0", "--data-dir", NSTemporaryDirectory() + "kinema-nokeys-\(UUID())", "--engine", "kling",
        ])
        #expect(noKeys.status != 0)
        #expect(noKeys.stdout.contains("KINEMA_KLING_ACCESS_KEY"), "\(noKeys.stdout)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("creds-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data("KINEMA_FAL_KEY=sk-file-secret\n".utf8).write(to: file)
        chmod(file.path, 0o644)
        let open = try await ServerProcess.cli([
            "serve", "--port", "0", "--data-dir", NSTemporaryDirectory() + "kinema-openkeys-\(UUID())", "--engine", "fal", "--upstream-credentials",
            file.path,
        ])
        #expect(open.status != 0)
        #expect(open.stdout.contains("chmod 600"), "\(open.stdout)")

        // Mode 0600: the key is read from the file (the stand-in accepts only it).
        let standIn = try await UpstreamStandIn(.fal, video: try await Self.video())
        try Data("# fal\nKINEMA_FAL_KEY=\(standIn.secret)\n".utf8).write(to: file)
        chmod(file.path, 0o600)
        let server = try ServerProcess()
        defer { server.removeData() }
        try await server.start(standIn.serveOptions + Self.fast + ["--upstream-credentials", file.path], workers: 0)
        let key = try #require(server.devKey)
        let png = try await Fixtures.image(width: 400, height: 300, format: "png").base64EncodedString()
        let id = try await Self.submit(server, key, ["image": png, "prompt": "drift"])
        let done = try await HTTP.waitForTerminal(server.baseURL, key: key, id: id, timeout: .seconds(60))
        #expect(Self.task(done)["status"] as? String == "TASK_STATUS_SUCCEED", "\(done)")
        await server.terminate()
        await standIn.stop()
    }
}
