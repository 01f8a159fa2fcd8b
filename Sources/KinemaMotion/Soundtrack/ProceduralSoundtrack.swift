import KinemaCore
import KinemaMedia

/// The motion engine's procedural soundtrack for a request, on its own: for engines that make pictures but no sound
/// (the diffusers worker calls it through `kinema soundtrack`). Ambience beds from the prompt's cues and quoted
/// dialogue spoken by eSpeak NG; no camera effects, since the picture is not the motion engine's.
public enum ProceduralSoundtrack {
    /// Exactly `seconds` (default `request.duration`) of 48 kHz stereo, deterministic for a given request and seed.
    public static func track(for request: GenerationRequest, seconds: Double? = nil) -> AudioTrack {
        Soundtrack.synthesize(
            prompt: [request.prompt, request.shots?.map(\.prompt).joined(separator: ". ")].compactMap { $0 }.joined(separator: ". "),
            negativePrompt: request.negativePrompt, durationSeconds: seconds ?? Double(request.duration),
            events: MotionEngine.speechEvents(request), seed: request.seed
        )
    }
}
