import Foundation
import KinemaAPIModels
import Testing

/// The hand-written poll body encoder must write exactly what JSONEncoder (sorted keys, unescaped slashes) writes.
@Suite struct TaskResultBodyJSONTests {
    static func reference(_ body: TaskResultBody) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(body))
    }

    static func body(reason: String, status: String = "TASK_STATUS_FAILED", videos: Int = 0) -> TaskResultBody {
        TaskResultBody(
            extra: .init(seed: "4294967295", debugInfo: .init(submitTimeMs: "1732486400123", executeTimeMs: "0", completeTimeMs: "0")),
            task: .init(taskID: "0f8fad5b-d9cb-469f-a165-70867728950e", status: status, reason: reason, eta: 17, progressPercent: 42),
            videos: (0..<videos).map { i in
                .init(videoURL: "http://127.0.0.1:8080/files/results/\(i).mp4?expires=1&sig=a/b+c", videoURLTTL: "3600")
            }
        )
    }

    @Test(arguments: [
        "", "plain", "quote \" and backslash \\ and slash /", "controls \u{0}\u{1}\u{8}\u{9}\u{A}\u{C}\u{D}\u{1F}\u{7F}",
        "unicode é 漢字 🎬 \u{2028}\u{2029}", "emoji 👩‍👩‍👧 and combining e\u{301}",
    ])
    func matchesJSONEncoder(reason: String) throws {
        for videos in [0, 1, 2] {
            let body = Self.body(reason: reason, videos: videos)
            #expect(body.jsonBytes() == (try Self.reference(body)), "reason \(reason.debugDescription), \(videos) videos")
        }
    }

    @Test func imagesAudiosAndNegativeNumbersMatchToo() throws {
        var body = Self.body(reason: "", status: "TASK_STATUS_SUCCEED", videos: 1)
        body.task.eta = -3
        body.task.progressPercent = Int.min
        body.extra.enableNSFWDetection = true
        body.images = [try JSONDecoder().decode(TaskResultBody.ImageEntry.self, from: Data(#"{"image_url":"x"}"#.utf8))]
        body.audios = [try JSONDecoder().decode(TaskResultBody.AudioEntry.self, from: Data(#"{"audio_url":"y\n"}"#.utf8))]
        #expect(body.jsonBytes() == (try Self.reference(body)))
        // And the output parses back to the same body.
        #expect(try JSONDecoder().decode(TaskResultBody.self, from: Data(body.jsonBytes())) == body)
    }
}
