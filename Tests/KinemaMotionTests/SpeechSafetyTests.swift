import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KinemaMotion
import Testing

/// What docs/security.md promises about quoted dialogue reaching `espeak-ng`: text is never an option, markup is
/// not interpreted, and a synthesizer that hangs is killed.
@Suite struct SpeechSafety {
    @Test func aLineThatLooksLikeAnOptionIsSpokenNotObeyed() throws {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-pwned-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: target) }
        // `-w FILE` would make espeak-ng write a WAV there; `--version` would print and exit without speech.
        for line in ["-w \(target.path)", "--version", "-v de -s 900 hallo"] {
            let samples = SpeechSynthesizer.speak(line)
            #expect((samples?.count ?? 0) > 48_000 / 4, "\(line): no speech")
        }
        #expect(!FileManager.default.fileExists(atPath: target.path), "an option in the text was obeyed")
    }

    @Test func markupIsReadNotInterpreted() throws {
        // With SSML on, this is a 20 s pause; read as text it is a few seconds of words.
        let samples = try #require(SpeechSynthesizer.speak("<speak>ok <break time=\"20s\"/> done</speak>"))
        let seconds = Double(samples.count) / 48_000
        #expect(seconds > 0.3 && seconds < 15, "\(seconds) s")
    }

    @Test func aSynthesizerThatHangsIsKilledAndTheLineIsSilent() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-hang-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fake = dir.appendingPathComponent("espeak-ng")
        // Writes a little of a WAV header, then hangs: only the watchdog can end it.
        // Written through a close-on-exec descriptor: a child another test spawns meanwhile must not inherit it open
        // for writing, or executing the script fails with ETXTBSY (seen once: "took 0.001 s").
        let fd = open(fake.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        #expect(fd >= 0)
        let script = Array("#!/bin/sh\nprintf RIFF\nexec sleep 120\n".utf8)
        #expect(write(fd, script, script.count) == script.count)
        close(fd)
        let started = Date()
        #expect(SpeechSynthesizer.speak("hello", executable: fake, timeout: 1) == nil)
        let took = Date().timeIntervalSince(started)
        #expect(took >= 0.9 && took < 30, "\(took) s")
    }
}
