import Foundation
import KinemaCore
import KinemaMedia

/// Speaks a line of text with eSpeak NG: mono samples at the soundtrack's rate (48 kHz), or nil when no speech
/// could be made (the `espeak-ng` program missing, failing or too slow), in which case the line is not heard.
///
/// Each line runs in a fresh `espeak-ng` process rather than through the linked library: the library carries
/// internal state from one utterance to the next (the same line came out a few samples longer or shorter each
/// time), while a fresh process always gives the same samples for the same text, voice and rate, which keeps
/// the soundtrack deterministic. A process also keeps the synthesizer's global state, and any crash of it, out of
/// the server. Cost: ≈10–30 ms per line, on the soundtrack's own thread while frames render.
public enum SpeechSynthesizer {
    /// Speaking rate in words per minute (eSpeak's default is 175; a little slower reads as calmer).
    static let wordsPerMinute = 160
    /// The voice: eSpeak NG's American English.
    static let voice = "en-us"
    /// A line that takes longer than this is given up (the process is killed).
    public static let timeoutSeconds = 10.0

    /// Where `espeak-ng` is, if anywhere on the usual paths.
    public static let executable: URL? = {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
        return paths.lazy.map { URL(fileURLWithPath: $0).appendingPathComponent("espeak-ng") }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }()

    /// The line spoken at 48 kHz, or nil when no speech could be made. `executable` and `timeout` are for tests
    /// (a stand-in program that hangs proves the kill).
    public static func speak(_ text: String, executable: URL? = executable, timeout: Double = timeoutSeconds) -> [Float]? {
        guard let executable, let wav = run(executable, text: text, timeout: timeout), let (samples, rate) = pcm(fromWAV: wav) else { return nil }
        return resample(samples, from: rate, to: AudioTrack.sampleRate)
    }

    /// Runs `espeak-ng` on the text (from a temporary file, so it is never parsed as options and no pipe can
    /// break under us) and returns its WAV output, or nil if it fails or outlives `timeoutSeconds`.
    ///
    /// posix_spawn and a blocking waitpid on the calling thread (the soundtrack's own, never Swift's cooperative
    /// pool): Foundation's `Process.waitUntilExit` polls in 50 ms steps, which cost more than the speech itself.
    private static func run(_ executable: URL, text: String, timeout: Double) -> Data? {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-line-\(UUID().uuidString).txt")
        guard (try? Data(text.utf8).write(to: file)) != nil else { return nil }
        defer { try? FileManager.default.removeItem(at: file) }

        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) } // only the child's dup2'd stdout survives its exec
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with no blocked signals and default handlers, whatever this thread has.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let arguments = [executable.path, "-v", voice, "-s", String(wordsPerMinute), "--stdout", "-f", file.path]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable.path, &actions, &attributes, argv, environ)
        close(fds[1])
        guard spawned == 0 else {
            close(fds[0])
            return nil
        }
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let data = PipeReader.readToEnd(fds[0])
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        watchdog.cancel()
        // Exited normally (not killed) with status 0.
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else { return nil }
        return data
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
    ///
    /// Output sample i sits at i · num / period input samples (num : period is the rates' ratio in lowest terms,
    /// 147 : 320 for 22,050 → 48,000 Hz), so its fraction depends on i mod period only: each of the `period`
    /// kernels is computed once, not twice a `sin` per tap per sample.
    static func resample(_ input: [Float], from sourceRate: Int, to targetRate: Int) -> [Float] {
        guard !input.isEmpty, sourceRate > 0, targetRate > 0 else { return [] }
        var gcd = sourceRate, rest = targetRate
        while rest != 0 { (gcd, rest) = (rest, gcd % rest) }
        let num = sourceRate / gcd, period = targetRate / gcd
        let count = input.count * period / num
        let a = 3
        func lanczos(_ x: Double) -> Double {
            if x == 0 { return 1 }
            if abs(x) >= Double(a) { return 0 }
            let px = Double.pi * x
            return Double(a) * sin(px) * sin(px / Double(a)) / (px * px)
        }
        // The 2a normalised tap weights of each phase, one row per phase.
        let table: [Float] = (0..<period).flatMap { phase -> [Float] in
            let fraction = Double((phase * num) % period) / Double(period)
            let w = (0..<(2 * a)).map { lanczos(fraction - Double($0 - a + 1)) }
            let sum = w.reduce(0, +)
            return w.map { Float(sum != 0 ? $0 / sum : 0) }
        }
        var output = [Float](repeating: 0, count: count)
        input.withUnsafeBufferPointer { source in
            for i in 0..<count {
                let base = i * num / period
                let row = (i % period) * 2 * a
                var sum: Float = 0
                for j in 0..<(2 * a) {
                    let k = base - a + 1 + j
                    if k >= 0 && k < source.count { sum += table[row + j] * source[k] }
                }
                output[i] = sum
            }
        }
        return output
    }
}
