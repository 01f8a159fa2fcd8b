import Foundation
import KinemaCore

/// The stored form of a `GenerationRequest` (the `request_json` column of both stores): an explicit, versioned
/// JSON schema written in one place, so renaming a Swift property can never change what is stored, and rows
/// written by an earlier version keep decoding.
///
/// Version 1 (written since the engine-routing release), keys sorted so identical requests store identical bytes:
/// `{"cfg_scale": 0.5, "duration": 5, "has_end_image": false, "negative_prompt": null, "prompt": "…",
///   "seed": 42, "shots": null | [{"duration": 5, "prompt": "…"}], "sound": false, "v": 1, "webhook_url": null}`.
///
/// Version 0 (no `v`; written before): the same fields under the Swift property names of that time
/// (`cfgScale`, `hasEndImage`, `negativePrompt`, `webhookURL`, absent optionals omitted). Decoded, never written.
/// A future version adds a case here and a decoder for it; a row of a version newer than this build is refused as
/// corrupt rather than misread.
public enum StoredRequest {
    /// The version `encode` writes.
    public static let currentVersion = 1

    /// The stored JSON text of `request`.
    public static func encode(_ request: GenerationRequest) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(V1(request)), as: UTF8.self)
        } catch {
            throw StoreError(.invalidRecord, "the request cannot be encoded as JSON: \(error)")
        }
    }

    /// The request stored as `json`, of any version this build knows.
    public static func decode(_ json: String) throws -> GenerationRequest {
        let data = Data(json.utf8)
        do {
            let version = try JSONDecoder().decode(VersionProbe.self, from: data).v ?? 0
            switch version {
            case 0:
                // The same fields under the Swift names of that time: read through version 1 with its keys renamed.
                let decoder = JSONDecoder()
                decoder.keyDecodingStrategy = .custom { path in
                    let name = path.last?.stringValue ?? ""
                    return V0Key(stringValue: version0Names[name] ?? name)
                }
                return try decoder.decode(V1.self, from: data).request
            case 1: return try JSONDecoder().decode(V1.self, from: data).request
            default:
                throw StoreError(
                    .corrupt, "tasks.request_json has schema version \(version), newer than this build's \(currentVersion); upgrade this binary")
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.corrupt, "tasks.request_json cannot be decoded: \(error)")
        }
    }

    private struct VersionProbe: Decodable {
        var v: Int?
    }

    struct Shot1: Codable {
        var prompt: String
        var duration: Int
    }

    /// Version 1: explicit snake_case keys, every key always present (`v` is absent only in version 0 rows).
    struct V1: Codable {
        var v: Int?
        var prompt: String?
        var negativePrompt: String?
        var duration: Int
        var cfgScale: Double
        var sound: Bool
        var shots: [Shot1]?
        var seed: UInt32
        var hasEndImage: Bool
        var webhookURL: String?

        enum CodingKeys: String, CodingKey {
            case v, prompt, duration, sound, shots, seed
            case negativePrompt = "negative_prompt"
            case cfgScale = "cfg_scale"
            case hasEndImage = "has_end_image"
            case webhookURL = "webhook_url"
        }

        init(_ r: GenerationRequest) {
            v = 1
            prompt = r.prompt
            negativePrompt = r.negativePrompt
            duration = r.duration
            cfgScale = r.cfgScale
            sound = r.sound
            shots = r.shots.map { $0.map { Shot1(prompt: $0.prompt, duration: $0.duration) } }
            seed = r.seed
            hasEndImage = r.hasEndImage
            webhookURL = r.webhookURL
        }

        // Nulls are written, not omitted: every key is always there for a reader of the raw column.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(v, forKey: .v)
            try c.encode(prompt, forKey: .prompt)
            try c.encode(negativePrompt, forKey: .negativePrompt)
            try c.encode(duration, forKey: .duration)
            try c.encode(cfgScale, forKey: .cfgScale)
            try c.encode(sound, forKey: .sound)
            try c.encode(shots, forKey: .shots)
            try c.encode(seed, forKey: .seed)
            try c.encode(hasEndImage, forKey: .hasEndImage)
            try c.encode(webhookURL, forKey: .webhookURL)
        }

        var request: GenerationRequest {
            GenerationRequest(
                prompt: prompt, negativePrompt: negativePrompt, duration: duration, cfgScale: cfgScale, sound: sound,
                shots: shots.map { $0.map { KinemaCore.Shot(prompt: $0.prompt, duration: $0.duration) } }, seed: seed,
                hasEndImage: hasEndImage, webhookURL: webhookURL
            )
        }
    }

    /// Version 0's keys that differ from version 1's (the Swift property names `JSONEncoder` used before the schema
    /// was written down); the others (`prompt`, `duration`, `sound`, `shots`, `seed`) are the same.
    static let version0Names = [
        "negativePrompt": "negative_prompt", "cfgScale": "cfg_scale", "hasEndImage": "has_end_image", "webhookURL": "webhook_url",
    ]

    /// A key of a version 0 row, renamed to its version 1 name.
    struct V0Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
