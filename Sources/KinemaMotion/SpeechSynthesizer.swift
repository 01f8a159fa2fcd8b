import Foundation

/// Speaks a line of text with eSpeak NG: mono samples at the soundtrack's rate (48 kHz), or nil when no speech
/// could be made (the `espeak-ng` program missing, failing or too slow), in which case the line is not heard.
///
/// Each line runs in a fresh `espeak-ng` process rather than through the linked library: the library carries
/// internal state from one utterance to the next (the same line came out a few samples longer or shorter each
/// time), while a fresh process always gives the same samples for the same text, voice and rate, which keeps
/// the soundtrack deterministic. A process also keeps the synthesizer's global state, and any crash of it, out of
/// the server. Cost: ≈10–30 ms per line, on the soundtrack's own thread while frames render.
enum SpeechSynthesizer {
    /// Speaking rate in words per minute (eSpeak's default is 175; a little slower reads as calmer).
    static let wordsPerMinute = 160
    /// The voice: eSpeak NG's American English.
    static let voice = "en-us"
    /// A line that takes longer than this is given up (the process is killed).
    static let timeoutSeconds = 10.0

    /// Where `espeak-ng` is, if anywhere on the usual paths.
    static let executable: URL? = {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return paths.lazy.map { URL(fileURLWithPath: $0).appendingPathComponent("espeak-ng") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    static func speak(_ text: String) -> [Float]? {
        guard let executable, let wav = run(executable, text: text), let (samples, rate) = pcm(fromWAV: wav) else { return nil }
        return resample(samples, from: Double(rate), to: soundtrackSampleRate)
    }

    /// Runs `espeak-ng` on the text (from a temporary file, so it is never parsed as options and no pipe can
    /// break under us) and returns its WAV output. Blocks the calling thread (the soundtrack's own, never Swift's
    /// cooperative pool).
    private static func run(_ executable: URL, text: String) -> Data? {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-line-\(UUID().uuidString).txt")
        guard (try? Data(text.utf8).write(to: file)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = executable
        process.arguments = ["-v", voice, "-s", String(wordsPerMinute), "--stdout", "-f", file.path]
        let output = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds, execute: watchdog)
        defer { watchdog.cancel() }
        let data = readAll(output.fileHandleForReading.fileDescriptor)
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else { return nil }
        return data
    }

    /// Reads a pipe to its end (retrying interrupted reads, which Foundation's readers do not survive).
    private static func readAll(_ fd: Int32) -> Data {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                data.append(contentsOf: buffer[0..<n])
            } else if n < 0, errno == EINTR {
                continue
            } else {
                return data
            }
        }
    }

    /// The 16-bit mono samples and rate of a WAV file (eSpeak writes a streaming header: the sizes may be wrong,
    /// so the data runs to the end of the file).
    static func pcm(fromWAV wav: Data) -> ([Float], Int)? {
        let bytes = [UInt8](wav)
        func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else { return nil }
        var offset = 12
        var rate = 0, channels = 0, bits = 0
        while offset + 8 <= bytes.count {
            let id = String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self)
            let size = u32(offset + 4)
            let body = offset + 8
            if id == "fmt ", body + 16 <= bytes.count {
                channels = u16(body + 2)
                rate = u32(body + 4)
                bits = u16(body + 14)
            } else if id == "data" {
                guard channels == 1, bits == 16, rate > 0 else { return nil }
                let end = size > 0 && body + size <= bytes.count ? body + size : bytes.count
                var samples = [Float]()
                samples.reserveCapacity((end - body) / 2)
                var i = body
                while i + 1 < end {
                    samples.append(Float(Int16(bitPattern: UInt16(u16(i)))) / 32768)
                    i += 2
                }
                return samples.isEmpty ? nil : (samples, rate)
            }
            offset = body + size + (size & 1)
        }
        return nil
    }

    /// Lanczos (a = 3) resampling: speech from eSpeak has nothing above its Nyquist frequency worth keeping.
    static func resample(_ input: [Float], from sourceRate: Double, to targetRate: Double) -> [Float] {
        guard !input.isEmpty, sourceRate > 0, targetRate > 0 else { return [] }
        let step = sourceRate / targetRate
        let count = Int((Double(input.count) / step).rounded(.down))
        var output = [Float](repeating: 0, count: count)
        let a = 3
        func lanczos(_ x: Double) -> Double {
            if x == 0 { return 1 }
            if abs(x) >= Double(a) { return 0 }
            let px = Double.pi * x
            return Double(a) * sin(px) * sin(px / Double(a)) / (px * px)
        }
        for i in 0..<count {
            let t = Double(i) * step
            let base = Int(t.rounded(.down))
            var sum = 0.0, weights = 0.0
            for k in (base - a + 1)...(base + a) where k >= 0 && k < input.count {
                let w = lanczos(t - Double(k))
                sum += w * Double(input[k])
                weights += w
            }
            output[i] = weights != 0 ? Float(sum / weights) : 0
        }
        return output
    }
}
