import ArgumentParser
import Foundation
import KinemaCore
import KinemaMedia
import KinemaMotion

/// `kinema soundtrack`: the procedural soundtrack alone, as a WAV file, for engines that generate pictures but no
/// sound (the diffusers worker muxes it with its video).
struct SoundtrackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soundtrack",
        abstract:
            "Write the procedural soundtrack of a prompt as a 16-bit 48 kHz stereo WAV file (ambience from the prompt's cues, quoted dialogue spoken)."
    )

    @Option(help: "The prompt whose cues (rain, wind, city, \"quoted lines\"…) make the sound; 1–2500 characters.")
    var prompt: String

    @Option(name: .customLong("negative-prompt"), help: "Sounds to leave out (e.g. \"rain\", \"dialogue\").")
    var negativePrompt: String?

    @Option(help: "Length in seconds, 1–600 (whole or fractional: 5, 4.5).")
    var duration: Double

    @Option(help: "Seed 0–4294967295 (default 0): the same prompt, length and seed give the same samples.")
    var seed: UInt32 = 0

    @Option(name: .shortAndLong, help: "Output WAV path.")
    var output: String

    func validate() throws {
        guard (1...2500).contains(prompt.unicodeScalars.count) else { throw ValidationError("--prompt must be 1 to 2500 characters.") }
        guard duration.isFinite, duration >= 1, duration <= 600 else { throw ValidationError("--duration must be from 1 to 600 seconds.") }
    }

    func run() async throws {
        let request = GenerationRequest(prompt: prompt, negativePrompt: negativePrompt, duration: Int(duration.rounded(.up)), sound: true, seed: seed)
        let track = ProceduralSoundtrack.track(for: request, seconds: duration)
        try track.wavData().write(to: URL(fileURLWithPath: output))
    }
}
