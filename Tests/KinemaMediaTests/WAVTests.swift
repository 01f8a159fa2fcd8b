import Foundation
import KinemaMedia
import Testing

/// The WAV hand-off of a soundtrack: a canonical 44-byte header, then 16-bit PCM that ffprobe reads back.
@Suite struct WAVOutput {
    @Test func aTrackWritesAPlayableWAVOfItsExactLength() async throws {
        // 0.5 s of a 440 Hz tone on the left, silence on the right, one out-of-range sample clipped.
        var samples: [Float] = []
        for i in 0..<24_000 {
            samples.append(0.5 * sin(Float(i) * 2 * .pi * 440 / 48_000))
            samples.append(0)
        }
        samples[1] = 7
        let wav = AudioTrack(samples: samples).wavData()
        #expect(wav.count == 44 + 24_000 * 4)
        #expect(String(decoding: wav.prefix(4), as: UTF8.self) == "RIFF")
        #expect(String(decoding: wav[8..<16], as: UTF8.self) == "WAVEfmt ")
        func u32(_ at: Int) -> UInt32 { wav[at..<(at + 4)].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * $1.offset) } }
        func i16(_ at: Int) -> Int16 { Int16(bitPattern: UInt16(wav[at]) | UInt16(wav[at + 1]) << 8) }
        #expect(u32(24) == 48_000)
        #expect(u32(40) == 96_000)
        #expect(i16(44 + 2) == 32_767) // the clipped right sample of frame 0
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tone-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: file) }
        try wav.write(to: file)
        let probe = try runTool(
            "ffprobe", ["-v", "error", "-show_entries", "stream=sample_rate,channels,codec_name,duration", "-of", "csv=p=0", file.path])
        #expect(probe.trimmingCharacters(in: .whitespacesAndNewlines) == "pcm_s16le,48000,2,0.500000", "\(probe)")
    }
}
