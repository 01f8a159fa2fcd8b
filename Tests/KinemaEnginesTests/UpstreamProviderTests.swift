import Foundation
import KinemaCore
import Testing

@testable import KinemaEngines

/// The providers' wire mappings and fault readings, without a network (the end-to-end tests run them over HTTP).
@Suite struct UpstreamProviderTests {
    static let image = Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3])
    static let endImage = Data([0xFF, 0xD8, 0xFF, 9, 8])
    static let taskID = UUID(uuidString: "0f8fad5b-d9cb-469f-a165-70867728950e")!

    static func job(_ request: GenerationRequest, end: Bool = false) -> RenderJob {
        RenderJob(request: request, image: image, endImage: end ? endImage : nil, taskID: taskID)
    }

    static func body(_ request: UpstreamRequest) throws -> [String: Any] {
        let data = try #require(request.body)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func response(_ status: Int, _ json: [String: Any], headers: [(String, String)] = []) -> UpstreamResponse {
        UpstreamResponse(status: status, headers: headers, body: try! JSONSerialization.data(withJSONObject: json))
    }

    @Test func klingGetsItsOwnFieldNamesAndStringDurations() throws {
        let kling = KlingProvider(
            endpoint: UpstreamEndpoint(baseURL: "https://kling.example", model: "kling-v3"), token: KlingToken(accessKey: "ak", secretKey: "sk"))
        let single = try kling.submit(
            Self.job(GenerationRequest(prompt: "orbit", negativePrompt: "text", duration: 10, cfgScale: 0.25, sound: true, seed: 9), end: true),
            taskID: Self.taskID)
        #expect(single.url == "https://kling.example/v1/videos/image2video")
        #expect(single.paid)
        let body = try Self.body(single)
        #expect(body["duration"] as? String == "10")
        #expect(body["sound"] as? String == "on")
        #expect(body["mode"] as? String == "std")
        #expect(body["image_tail"] as? String == Self.endImage.base64EncodedString())
        #expect(body["external_task_id"] as? String == Self.taskID.uuidString.lowercased())
        #expect(body["multi_shot"] == nil)

        let shots = [Shot(prompt: "a", duration: 3), Shot(prompt: "b", duration: 12)]
        let multi = try Self.body(try kling.submit(Self.job(GenerationRequest(prompt: nil, duration: 15, shots: shots)), taskID: Self.taskID))
        #expect(multi["multi_shot"] as? Bool == true)
        #expect(multi["shot_type"] as? String == "customize")
        #expect(multi["prompt"] == nil)
        #expect(multi["sound"] as? String == "off")
        let items = try #require(multi["multi_prompt"] as? [[String: Any]])
        #expect(items.map { $0["index"] as? Int } == [1, 2])
        #expect(items.map { $0["duration"] as? String } == ["3", "12"])
    }

    @Test func klingCodesMapOntoWaitPauseOrFail() {
        #expect(KlingProvider.fault(code: 1303, message: "busy", retryAfter: nil) == .transient("Kling 1303: busy"))
        #expect(KlingProvider.fault(code: 1302, message: "fast", retryAfter: nil) == .transient("Kling 1302: fast"))
        #expect(KlingProvider.fault(code: 5001, message: "down", retryAfter: nil) == .transient("Kling 5001: down"))
        for code in [1000, 1002, 1004, 1100, 1101, 1102, 1103, 1304] {
            #expect(KlingProvider.fault(code: code, message: "m", retryAfter: nil) == .account("Kling \(code): m"))
        }
        for code in [1200, 1201, 1300, 1301] {
            #expect(KlingProvider.fault(code: code, message: "m", retryAfter: nil) == .rejected("Kling \(code): m"))
        }
        // An unknown code is waited out, never a reason to pay again or to fail a paid task.
        #expect(KlingProvider.fault(code: 4242, message: "?", retryAfter: nil) == .transient("Kling 4242: ?"))
    }

    @Test func klingStatesReadAsRunningUnlessFinished() {
        let kling = KlingProvider(endpoint: UpstreamEndpoint(baseURL: "https://k", model: "m"), token: KlingToken(accessKey: "a", secretKey: "s"))
        func poll(_ data: [String: Any]) -> PollOutcome {
            kling.readPoll(Self.response(200, ["code": 0, "message": "ok", "request_id": "r", "data": data]))
        }
        #expect(poll(["task_status": "submitted"]) == .running(percent: nil))
        #expect(poll(["task_status": "some_future_state"]) == .running(percent: nil))
        #expect(poll(["task_status": "failed", "task_status_msg": "nsfw"]) == .failed("Kling: nsfw"))
        #expect(
            poll(["task_status": "succeed", "task_result": ["videos": [["url": "https://cdn/v.mp4"]]]])
                == .succeeded(videoURL: "https://cdn/v.mp4", seed: nil))
        #expect(kling.readLookup(Self.response(400, ["code": 1201, "message": "not found"])) == .notFound)
        #expect(kling.readLookup(Self.response(200, ["code": 0, "data": ["task_id": "t1"]])) == .found(id: "t1"))
    }

    @Test func klingTokensAreSignedAndMintedAgainBeforeTheyExpire() throws {
        let clock = Clock(Date(timeIntervalSince1970: 1_800_000_000))
        let token = KlingToken(accessKey: "access", secretKey: "secret") { clock.now }
        let first = token.current()
        let parts = first.split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        let signature = SHA256.hmac(key: Array("secret".utf8), message: Array("\(parts[0]).\(parts[1])".utf8))
        #expect(KlingToken.base64URL(Data(signature)) == parts[2])
        let padded = parts[1].padding(toLength: (parts[1].count + 3) / 4 * 4, withPad: "=", startingAt: 0)
        let decoded = try #require(Data(base64Encoded: padded))
        let claims = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
        #expect(claims["iss"] as? String == "access")
        #expect((claims["exp"] as? NSNumber)?.int64Value == 1_800_001_800)
        #expect((claims["nbf"] as? NSNumber)?.int64Value == 1_799_999_995)
        clock.now = clock.now.addingTimeInterval(1400)
        #expect(token.current() == first) // 400 s left: kept
        clock.now = clock.now.addingTimeInterval(200)
        #expect(token.current() != first) // 200 s left: minted again
    }

    @Test func falAlwaysSendsAudioAndNegativePromptAndFollowsOnlyItsOwnHost() throws {
        let fal = FalProvider(endpoint: UpstreamEndpoint(baseURL: "https://queue.example", model: "fal-ai/kling"), key: "k")
        let request = try fal.submit(Self.job(GenerationRequest(prompt: "drift"), end: true), taskID: Self.taskID)
        #expect(request.url == "https://queue.example/fal-ai/kling")
        #expect(request.headers.first { $0.0 == "Authorization" }?.1 == "Key k")
        let body = try Self.body(request)
        #expect(body["generate_audio"] as? Bool == false)
        #expect(body["negative_prompt"] as? String == "")
        #expect(body["start_image_url"] as? String == "data:image/png;base64," + Self.image.base64EncodedString())
        #expect(body["end_image_url"] as? String == "data:image/jpeg;base64," + Self.endImage.base64EncodedString())

        // With links configured, the stored images' keys go over as our signed URLs instead.
        var linked = fal
        linked.imageLinks = { key in "https://kinema.example/files/\(key)?sig=x" }
        var keyed = Self.job(GenerationRequest(prompt: "drift"), end: true)
        keyed.imageKey = "inputs/t/image.png"
        keyed.endImageKey = "inputs/t/end_image.jpg"
        let byLink = try Self.body(try linked.submit(keyed, taskID: Self.taskID))
        #expect(byLink["start_image_url"] as? String == "https://kinema.example/files/inputs/t/image.png?sig=x")
        #expect(byLink["end_image_url"] as? String == "https://kinema.example/files/inputs/t/end_image.jpg?sig=x")

        let here = UpstreamHandle(provider: "fal", id: "r", statusURL: "https://queue.example/x/requests/r/status", submittedAt: Date())
        #expect(try fal.poll(here).url == "https://queue.example/x/requests/r/status")
        let elsewhere = UpstreamHandle(provider: "fal", id: "r", statusURL: "https://evil.example/r/status", submittedAt: Date())
        #expect(throws: EngineError.self) { try fal.poll(elsewhere) }
        // COMPLETED says nothing of the outcome; a 4xx on the response URL is a failure with fal's detail.
        #expect(fal.readPoll(Self.response(200, ["status": "COMPLETED"])) == .completedElsewhere)
        #expect(fal.readResult(Self.response(422, ["detail": [["msg": "flagged"]]])) == .failed("fal: flagged"))
        #expect(fal.readResult(Self.response(200, ["video": ["url": "https://v"]])) == .succeeded(videoURL: "https://v", seed: nil))
        if case .fault(.transient) = fal.readResult(Self.response(503, [:])) {} else { Issue.record("a 5xx on the response URL must be waited out") }
    }

    @Test func novitaFaultsFollowTheContractsStatuses() {
        let novita = NovitaProvider(endpoint: UpstreamEndpoint(baseURL: "https://n", model: ""), apiKey: "k")
        #expect(
            novita.readSubmit(Self.response(429, ["reason": "RATE_LIMIT_EXCEEDED", "message": "slow"], headers: [("Retry-After", "7")]))
                == .fault(.transient("Novita is rate limiting (HTTP 429): RATE_LIMIT_EXCEEDED: slow", retryAfter: .seconds(7))))
        #expect(
            novita.readSubmit(Self.response(403, ["reason": "INVALID_API_KEY", "message": "no"]))
                == .fault(.account("Novita refused the account (HTTP 403): INVALID_API_KEY: no")))
        #expect(
            novita.readSubmit(Self.response(400, ["reason": "INVALID_IMAGE_SIZE", "message": "small"]))
                == .fault(.rejected("Novita refused the task (HTTP 400): INVALID_IMAGE_SIZE: small")))
        #expect(novita.readSubmit(Self.response(200, ["task_id": "t"])) == .accepted(id: "t"))
        #expect(novita.readPoll(Self.response(200, ["task": ["status": "TASK_STATUS_PROCESSING", "progress_percent": 55]])) == .running(percent: 55))
    }

    /// A state a provider adds later is read as "still running" (never a failure of a paid task, never a resubmit).
    @Test func novitaAndFalStatesReadAsRunningUnlessFinished() {
        let novita = NovitaProvider(endpoint: UpstreamEndpoint(baseURL: "https://n", model: ""), apiKey: "k")
        #expect(novita.readPoll(Self.response(200, ["task": ["status": "TASK_STATUS_QUEUED"]])) == .running(percent: nil))
        #expect(novita.readPoll(Self.response(200, ["task": ["status": "TASK_STATUS_SOMETHING_NEW"]])) == .running(percent: nil))
        #expect(
            novita.readPoll(Self.response(200, ["task": ["status": "TASK_STATUS_FAILED", "reason": "nsfw"]])) == .failed("Novita: nsfw"))
        #expect(
            novita.readPoll(
                Self.response(200, ["task": ["status": "TASK_STATUS_SUCCEED"], "videos": [["video_url": "https://v"]], "extra": ["seed": "77"]]))
                == .succeeded(videoURL: "https://v", seed: "77"))
        let fal = FalProvider(endpoint: UpstreamEndpoint(baseURL: "https://queue.example", model: "fal-ai/kling"), key: "k")
        #expect(fal.readPoll(Self.response(200, ["status": "IN_QUEUE"])) == .running(percent: nil))
        #expect(fal.readPoll(Self.response(200, ["status": "IN_PROGRESS"])) == .running(percent: nil))
        #expect(fal.readPoll(Self.response(200, ["status": "SOMETHING_NEW"])) == .running(percent: nil))
    }

    /// Progress where the provider reports none: from the elapsed time against a typical render of that length, held
    /// under 95 %, with an eta of at least one poll interval; a reported percent is mirrored (held under 100 until the
    /// video is copied), its eta extrapolated from the elapsed time.
    @Test func progressIsEstimatedFromElapsedTimeOrMirrored() {
        let estimate = ProgressEstimate(request: GenerationRequest(prompt: "p", duration: 4), pollInterval: .seconds(5))
        #expect(estimate.typicalSeconds == 120)
        let now = Date()
        let start = estimate.progress(since: now, reported: nil)
        #expect(start.percent == 0 && (119...120).contains(start.etaSeconds))
        let half = estimate.progress(since: now.addingTimeInterval(-60), reported: nil)
        #expect((49...50).contains(half.percent) && (59...60).contains(half.etaSeconds))
        let late = estimate.progress(since: now.addingTimeInterval(-600), reported: nil)
        #expect(late.percent == 95 && late.etaSeconds == 5)
        let reported = estimate.progress(since: now.addingTimeInterval(-30), reported: 40)
        #expect(reported.percent == 40 && (45...46).contains(reported.etaSeconds))
        let finished = estimate.progress(since: now.addingTimeInterval(-30), reported: 100)
        #expect(finished.percent == 99 && finished.etaSeconds == 5)
    }

    @Test func backoffGrowsWithJitterAndStaysUnderItsCap() {
        var settings = UpstreamSettings()
        settings.backoff = .seconds(2)
        settings.maxBackoff = .seconds(10)
        var backoff = Backoff(settings)
        let waits = (0..<8).map { _ in backoff.next().timeInterval }
        #expect((1...2).contains(waits[0]))
        #expect((2...4).contains(waits[1]))
        #expect(waits.allSatisfy { $0 <= 10 })
        #expect((5...10).contains(waits[7]))
    }
}

/// A settable clock for the token cache.
private final class Clock: @unchecked Sendable {
    // SAFETY: set and read by one test, sequentially.
    var now: Date
    init(_ now: Date) { self.now = now }
}
