import Foundation
import KinemaMedia
import KinemaTestSupport
import Testing

/// One second of a 320x240 test clip: the smooth picture sliding right by 2 px a frame (computed once).
private let clipFrames: [YUVFrame] = {
    let base = smoothImage(width: 320 + 48, height: 240)
    return (0..<24).map { i in
        ColorConversion.yuv420(
            from: ImageResampler.resample(
                base, from: PixelRect(x: Double(i * 2), y: 0, width: 320, height: 240), width: 320, height: 240
            ))
    }
}()

/// A stereo tone: 440 Hz left, 660 Hz right, at half scale.
private func tone(seconds: Double, from start: Int = 0) -> AudioTrack {
    let n = Int(seconds * Double(AudioTrack.sampleRate))
    var samples = [Float](repeating: 0, count: n * 2)
    for i in 0..<n {
        let t = Double(start + i) / Double(AudioTrack.sampleRate)
        samples[i * 2] = Float(0.5 * sin(2 * .pi * 440 * t))
        samples[i * 2 + 1] = Float(0.5 * sin(2 * .pi * 660 * t))
    }
    return AudioTrack(samples: samples)
}

private func writeClip(to url: URL, frames: Int, withAudio: Bool, audioChunks: Int = 3) throws -> [YUVFrame] {
    let writer = try MP4Writer(url: url, width: 320, height: 240, withAudio: withAudio)
    var written: [YUVFrame] = []
    for i in 0..<frames {
        let frame = clipFrames[i % 24]
        written.append(frame)
        try writer.append(frame)
    }
    if withAudio {
        // Consecutive chunks of uneven length, as a renderer might deliver them.
        let total = Double(frames) / 24
        var start = 0
        for c in 0..<audioChunks {
            let seconds = c == audioChunks - 1 ? total - Double(start) / 48_000 : total / Double(audioChunks) + 0.0123
            let chunk = tone(seconds: seconds, from: start)
            try writer.appendAudio(chunk)
            start += chunk.frameCount
        }
    }
    try writer.finish()
    try writer.finish() // idempotent
    return written
}

/// ffprobe's view of a file: streams by type, plus the container duration.
private func probe(_ url: URL) throws -> (streams: [String: [String: Any]], formatDuration: Double) {
    let json = try runTool(
        "ffprobe",
        [
            "-v", "error", "-count_frames", "-show_entries",
            "stream=codec_type,codec_name,pix_fmt,width,height,nb_read_frames,duration,r_frame_rate,color_space,color_range,sample_rate,channels:format=duration",
            "-of", "json", url.path,
        ])
    let root = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    var streams: [String: [String: Any]] = [:]
    for stream in root["streams"] as? [[String: Any]] ?? [] {
        if let type = stream["codec_type"] as? String { streams[type] = stream }
    }
    let format = root["format"] as? [String: Any]
    return (streams, Double(format?["duration"] as? String ?? "") ?? -1)
}

@Test(arguments: [false, true])
func threeSecondsGiveExactly72FramesAndTheRightStreams(withAudio: Bool) async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("clip.mp4")
            let written = try writeClip(to: url, frames: 72, withAudio: withAudio)

            let info = try MP4Reader.info(url: url)
            #expect(info.width == 320 && info.height == 240)
            #expect(info.frameCount == 72)
            #expect(info.frameRate == 24)
            #expect(abs(info.durationSeconds - 3.0) < 1e-6)
            #expect(info.videoCodec == "h264")
            #expect(info.pixelFormat == "yuv420p")
            #expect(info.colorSpace == "bt709")
            #expect(info.hasAudio == withAudio)
            if withAudio {
                #expect(info.audioCodec == "aac" && info.audioSampleRate == 48_000 && info.audioChannels == 2)
            } else {
                #expect(info.audioCodec == nil && info.audioSampleRate == nil && info.audioChannels == nil)
            }

            var decoded = 0
            try MP4Reader.forEachFrame(url: url) { index, frame in
                #expect(index == decoded)
                if index == 0 {
                    #expect(psnrYUV(frame, written[0]) >= 35, "first frame PSNR \(psnrYUV(frame, written[0]))")
                }
                decoded += 1
            }
            #expect(decoded == 72)

            // An independent reader must agree.
            do {
                let probed = try probe(url)
                let video = try #require(probed.streams["video"])
                #expect(video["nb_read_frames"] as? String == "72")
                #expect(video["codec_name"] as? String == "h264")
                #expect(video["pix_fmt"] as? String == "yuv420p")
                #expect(video["r_frame_rate"] as? String == "24/1")
                #expect(video["color_space"] as? String == "bt709")
                #expect(video["color_range"] as? String == "tv")
                #expect(abs((Double(video["duration"] as? String ?? "") ?? 0) - 3.0) < 1e-3)
                #expect((probed.streams["audio"] != nil) == withAudio)
                if let audio = probed.streams["audio"] {
                    #expect(audio["codec_name"] as? String == "aac")
                    #expect(audio["sample_rate"] as? String == "48000")
                    #expect(audio["channels"] as? Int == 2)
                    #expect(abs((Double(audio["duration"] as? String ?? "") ?? 0) - 3.0) < 0.03)
                }
                #expect(abs(probed.formatDuration - 3.0) < 0.03)
            }
        }
    }
}

@Test func fastStartPutsTheIndexBeforeTheMediaData() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("faststart.mp4")
            _ = try writeClip(to: url, frames: 12, withAudio: true)
            let bytes = [UInt8](try Data(contentsOf: url))
            func offset(of box: String) -> Int? {
                let tag = Array(box.utf8)
                return (0..<(bytes.count - 4)).first { bytes[$0..<$0 + 4].elementsEqual(tag) }
            }
            let moov = try #require(offset(of: "moov"))
            let mdat = try #require(offset(of: "mdat"))
            #expect(moov < mdat)
        }
    }
}

@Test func audioRoundTripKeepsLengthAndPitch() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("tone.mp4")
            _ = try writeClip(to: url, frames: 48, withAudio: true)
            let track = try #require(try MP4Reader.decodeAudio(url: url))
            // AAC works in 1024-sample frames; the decoded track may carry up to one frame of padding.
            #expect(abs(track.frameCount - 96_000) <= 1024 + 64, "decoded \(track.frameCount) sample frames")
            // Count zero crossings of each channel over the middle second: 2 per period.
            func crossings(channel: Int) -> Int {
                var count = 0
                for i in 24_000..<72_000 where (track.samples[i * 2 + channel] < 0) != (track.samples[(i + 1) * 2 + channel] < 0) {
                    count += 1
                }
                return count
            }
            #expect(abs(crossings(channel: 0) - 880) <= 6)
            #expect(abs(crossings(channel: 1) - 1320) <= 6)
            let peak = track.samples[48_000..<144_000].map { abs($0) }.max() ?? 0
            #expect(peak > 0.45 && peak < 0.55, "peak \(peak)")
        }
    }
}

@Test func missingAudioIsPaddedWithSilenceToTheVideoLength() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("silent.mp4")
            let writer = try MP4Writer(url: url, width: 64, height: 64, withAudio: true)
            for _ in 0..<24 { try writer.append(YUVFrame(blackWidth: 64, height: 64)) }
            try writer.finish()
            let track = try #require(try MP4Reader.decodeAudio(url: url))
            #expect(abs(track.frameCount - 48_000) <= 1024 + 64)
            #expect((track.samples.map { abs($0) }.max() ?? 1) < 0.001)
            #expect(try MP4Reader.info(url: url).frameCount == 24)
        }
    }
}

@Test func noAudioTrackMeansNilAudio() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("mute.mp4")
            _ = try writeClip(to: url, frames: 6, withAudio: false)
            #expect(try MP4Reader.decodeAudio(url: url) == nil)
        }
    }
}

@Test func writerRefusesMisuseWithClearErrors() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            func code(_ body: () throws -> Void) -> MediaError.Code? {
                do { try body(); return nil } catch let error as MediaError { return error.code } catch { return nil }
            }
            #expect(
                code { _ = try MP4Writer(url: dir.appendingPathComponent("odd.mp4"), width: 321, height: 240, withAudio: false) } == .invalidArgument)
            #expect(
                code {
                    _ = try MP4Writer(
                        url: dir.appendingPathComponent("p.mp4"), width: 64, height: 64, withAudio: false,
                        settings: EncoderSettings(preset: "no-such-preset"))
                } == .codec)
            #expect(code { _ = try MP4Writer(url: URL(fileURLWithPath: "/nonexistent-dir/x.mp4"), width: 64, height: 64, withAudio: false) } == .io)
            #expect(
                code {
                    _ = try MP4Writer(
                        url: dir.appendingPathComponent("o.mp4"), width: 64, height: 64, withAudio: false,
                        settings: EncoderSettings(extraOptions: ["no-such-option": "1"]))
                } == .invalidArgument)
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o.mp4").path))

            let writer = try MP4Writer(url: dir.appendingPathComponent("w.mp4"), width: 64, height: 64, withAudio: false)
            #expect(code { try writer.append(YUVFrame(blackWidth: 32, height: 32)) } == .invalidArgument)
            #expect(code { try writer.appendAudio(AudioTrack(samples: [0, 0])) } == .invalidArgument)
            try writer.append(YUVFrame(blackWidth: 64, height: 64))
            try writer.finish()
            #expect(code { try writer.append(YUVFrame(blackWidth: 64, height: 64)) } == .invalidArgument)
        }
    }
}

@Test func finishingWithoutFramesFailsAndLeavesNoFile() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("empty.mp4")
            do {
                let writer = try MP4Writer(url: url, width: 64, height: 64, withAudio: true)
                #expect(throws: MediaError.self) { try writer.finish() }
            }
            #expect(!FileManager.default.fileExists(atPath: url.path))
        }
    }
}

@Test func abandonedWriterRemovesItsIncompleteFile() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("abandoned.mp4")
            do {
                let writer = try MP4Writer(url: url, width: 64, height: 64, withAudio: true)
                try writer.append(YUVFrame(blackWidth: 64, height: 64))
                #expect(FileManager.default.fileExists(atPath: url.path))
            }
            #expect(!FileManager.default.fileExists(atPath: url.path))
            let open = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap {
                try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")
            }
            #expect(!open.contains { $0.contains("abandoned.mp4") })
        }
    }
}

@Test func readerReportsMissingFilesAsIOErrors() async throws {
    try await offPool {
        do {
            _ = try MP4Reader.info(url: URL(fileURLWithPath: "/nonexistent/clip.mp4"))
            Issue.record("expected an error")
        } catch let error as MediaError {
            #expect(error.code == .io)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}

@Test func readerConvertsOtherPixelFormatsAndReadsForeignFiles() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            // A 4:4:4 H.264 file from the ffmpeg CLI: the reader must hand out yuv420p frames of the same picture.
            let url = dir.appendingPathComponent("444.mp4")
            _ = try runTool(
                "ffmpeg",
                [
                    "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v", "5",
                    "-c:v", "libx264", "-pix_fmt", "yuv444p", "-crf", "10", "-y", url.path,
                ])
            let info = try MP4Reader.info(url: url)
            #expect(info.frameCount == 5 && info.pixelFormat == "yuv444p" && !info.hasAudio && info.width == 64)
            var frames: [YUVFrame] = []
            try MP4Reader.forEachFrame(url: url) { _, frame in frames.append(frame) }
            #expect(frames.count == 5)
            #expect(frames.allSatisfy { $0.width == 64 && $0.height == 48 && $0.u.count == 32 * 24 })
            // testsrc2's frames differ (moving parts) but are all far from black.
            #expect(frames.allSatisfy { frame in frame.y.reduce(0) { $0 + Int($1) } / frame.y.count > 40 })
        }
    }
}

@Test func stoppingEarlyFromForEachFramePropagatesTheError() async throws {
    try await offPool {
        struct Stop: Error {}
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("stop.mp4")
            _ = try writeClip(to: url, frames: 24, withAudio: false)
            var seen = 0
            #expect(throws: Stop.self) {
                try MP4Reader.forEachFrame(url: url) { index, _ in
                    seen += 1
                    if index == 4 { throw Stop() }
                }
            }
            #expect(seen == 5)
        }
    }
}

@Test func extraEncoderOptionsReachLibx264() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            // Intra-only (keyint 1): every frame is a key frame, which ffprobe can see.
            let url = dir.appendingPathComponent("intra.mp4")
            let writer = try MP4Writer(
                url: url, width: 64, height: 64, withAudio: false,
                settings: EncoderSettings(preset: "ultrafast", extraOptions: ["tune": "stillimage", "x264-params": "keyint=1"]))
            for _ in 0..<4 { try writer.append(YUVFrame(blackWidth: 64, height: 64)) }
            try writer.finish()
            #expect(try MP4Reader.info(url: url).frameCount == 4)
            do {
                let flags = try runTool(
                    "ffprobe", ["-v", "error", "-select_streams", "v", "-show_entries", "packet=flags", "-of", "csv=p=0", url.path])
                let lines = flags.split(separator: "\n")
                #expect(lines.count == 4 && lines.allSatisfy { $0.hasPrefix("K") }, "\(lines)")
            }
        }
    }
}

@Test func pathsThatLookLikeProtocolsAreTreatedAsFiles() async throws {
    try await offPool {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("pipe:1 http:x.mp4")
            _ = try writeClip(to: url, frames: 6, withAudio: true)
            #expect(FileManager.default.fileExists(atPath: url.path))
            #expect(try MP4Reader.info(url: url).frameCount == 6)
        }
    }
}
