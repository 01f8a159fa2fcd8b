import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaEngines

/// `kinema generate`: one render, offline, with the same validation rules and messages as the API.
struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Render one video from an image and a prompt, offline.")

    @Option(help: "First frame (PNG or JPEG).")
    var image: String

    @Option(help: "What happens and how the camera moves (1–2500 characters). Optional with --shot.")
    var prompt: String?

    @Option(name: .customLong("negative-prompt"), help: "Moves and effects to avoid.")
    var negativePrompt: String?

    @Option(help: "Length in seconds, 3–15 (default 5; with --shot, the sum of the shots).")
    var duration: Int?

    @Option(name: .customLong("cfg-scale"), help: "Prompt adherence 0–1 (default 0.5).")
    var cfgScale: Double?

    @Flag(help: "Add a procedural soundtrack.")
    var sound = false

    @Option(name: .customLong("end-image"), help: "Last frame (PNG or JPEG).")
    var endImage: String?

    @Option(name: .customLong("shot"), help: "A shot as \"SECONDS:PROMPT\" (or just PROMPT for 5 s); repeat for multi-shot.")
    var shots: [String] = []

    @Option(help: "Seed 0–4294967295, or -1 for random (default -1).")
    var seed: Int64?

    @Option(name: .shortAndLong, help: "Output MP4 path.")
    var output: String

    func run() async throws {
        let imageData = try readImage(image, flag: "--image")
        let endData = try endImage.map { try readImage($0, flag: "--end-image") }
        var members: [(String, JSONValue)] = [("image", .string(imageData.base64EncodedString()))]
        if let prompt { members.append(("prompt", .string(prompt))) }
        if let negativePrompt { members.append(("negative_prompt", .string(negativePrompt))) }
        if let duration { members.append(("duration", .number(String(duration)))) }
        if let cfgScale { members.append(("cfg_scale", .number(String(cfgScale)))) }
        if sound { members.append(("sound", .bool(true))) }
        if let endData { members.append(("end_image", .string(endData.base64EncodedString()))) }
        if let seed { members.append(("seed", .number(String(seed)))) }
        if !shots.isEmpty {
            members.append(
                (
                    "multi_prompt",
                    .array(
                        shots.map { shot in
                            if let colon = shot.firstIndex(of: ":"), let seconds = Int(shot[..<colon]) {
                                return .object([
                                    ("prompt", .string(String(shot[shot.index(after: colon)...]))), ("duration", .number(String(seconds))),
                                ])
                            }
                            return .string(shot)
                        })
                ))
        }

        let draft: SubmitDraft
        do {
            draft = try RequestValidator().validate(json: .object(members))
            _ = try ImageValidation.validate(imageData, field: "image", limits: ValidationLimits())
            if let endData { _ = try ImageValidation.validate(endData, field: "end_image", limits: ValidationLimits()) }
        } catch {
            throw CLIError("\(error.kind.reason) (\(cliFlag(error.field))): \(error.message)")
        }
        var request = draft.request
        var rng = SystemRandomNumberGenerator()
        request.seed = draft.requestedSeed ?? UInt32.random(in: 0...UInt32.max, using: &rng)

        let bar = ProgressBar(interactive: isatty(STDERR_FILENO) == 1, plainStep: 10)
        let started = ContinuousClock.now
        try await EngineCatalog.motion().render(
            RenderJob(request: request, image: imageData, endImage: endData),
            to: URL(fileURLWithPath: output)
        ) { bar.update($0) }
        bar.finish()
        let elapsed = ContinuousClock.now - started
        print(
            "Wrote \(output): \(request.duration) s, seed \(request.seed), in \(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 2))))."
        )
    }

    private func readImage(_ path: String, flag: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIError("\(flag): cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// Names the CLI flag for a contract field in error messages.
    private func cliFlag(_ field: String) -> String {
        switch field {
        case "image": "--image"
        case "end_image": "--end-image"
        case "prompt": "--prompt"
        case "negative_prompt": "--negative-prompt"
        case "duration": "--duration"
        case "cfg_scale": "--cfg-scale"
        case "seed": "--seed"
        case let f where f.hasPrefix("multi_prompt"): "--shot \(f)"
        default: field
        }
    }
}
