import Foundation
import KinemaCore
import KinemaTestSupport
import Testing

/// Bounded, seeded fuzzing of the submit validator and its JSON parser: random and mutated bodies never trap,
/// and always end in either a draft that keeps every contract rule or a contract error.
@Suite struct RequestValidatorFuzz {
    static let pngBase64 = Data(FuzzImages.png(width: 640, height: 360)).base64EncodedString()
    static let jpegBase64 = Data(FuzzImages.jpeg(width: 400, height: 600, orientation: 6)).base64EncodedString()

    /// Valid bodies covering every field; mutations start from these.
    static let seeds: [String] = [
        #"{"image":"\#(pngBase64)","prompt":"zoom in slowly","duration":5}"#,
        #"{"image":"data:image/jpeg;base64,\#(jpegBase64)","prompt":"pan left","negative_prompt":"shake","duration":10,"cfg_scale":0.25,"sound":true,"seed":42}"#,
        #"{"image":"\#(pngBase64)","multi_prompt":[{"prompt":"wide","duration":4},"close-up",{"prompt":"tilt up"}],"duration":14,"seed":-1}"#,
        #"{"image":"https://example.com/a.png","end_image":"data:image/png;base64,\#(pngBase64)","prompt":"dolly","cfg_scale":1,"extra":{"webhook":{"url":"https://example.com/hook"},"other":[1,2,3]}}"#,
        #"{"image":"\#(pngBase64)","prompt":"\u00e9\ud83c\udf0a \"quoted\" \\ \/","duration":5.0e0,"sound":false,"negative_prompt":null,"end_image":null}"#,
    ]

    /// Byte sequences that tend to break parsers and number readers.
    static let tokens: [[UInt8]] =
        [
            "{", "}", "[", "]", "\"", "\\", "\\u", "\\ud800", "\\udc00", "\\u0000", ":", ",", "null", "true", "false",
            "-", "-0", "0.", "1e", "1e-9223372036854775808", "1e9223372036854775807", "-1e-9223372036854775809",
            "9223372036854775808", "-9223372036854775809", "1e999", "1e-999", "5e0", "50e-1", "0.0000000000000000000005e22",
            "\"duration\":", "\"multi_prompt\":", "\"seed\":", "\"cfg_scale\":", "\"image\":", "\"end_image\":",
            "data:image/png;base64,", "data:", "ftp://", "http://", "====", "\u{00}", "\u{7F}", "\u{FEFF}",
        ].map { Array($0.utf8) } + [[0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xFF], [0xF4, 0x90, 0x80, 0x80]]

    /// Whether `field` is a JSON path a validation error may name (`metadata.field`).
    static func isFieldPath(_ field: String) -> Bool {
        let top: Set = [
            "image", "end_image", "prompt", "negative_prompt", "duration", "cfg_scale", "sound", "seed", "extra", "multi_prompt", "extra.engine",
        ]
        if top.contains(field) { return true }
        // multi_prompt[N], multi_prompt[N].prompt, multi_prompt[N].duration
        guard field.hasPrefix("multi_prompt["), let close = field.firstIndex(of: "]") else { return false }
        let index = field[field.index(field.startIndex, offsetBy: 13)..<close]
        let rest = field[field.index(after: close)...]
        return !index.isEmpty && index.allSatisfy(\.isASCII) && Int(index) != nil && ["", ".prompt", ".duration"].contains(rest)
    }

    /// Checks one body: a trap would abort the run, so reaching the end of this function is half the property.
    func check(_ body: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        let limits = ValidationLimits()
        do {
            let draft = try RequestValidator(limits: limits).validate(body: Data(body))
            expectContractRules(draft, limits: limits, body: body, sourceLocation: sourceLocation)
            // Submit goes on to check inline image bytes from their header; that must hold on the same inputs.
            for case .bytes(let data) in [draft.image, draft.endImage].compactMap({ $0 }) {
                do {
                    _ = try ImageValidation.validate(data, field: "image", limits: limits)
                } catch {
                    expectContractError(error, sourceLocation: sourceLocation)
                }
            }
        } catch {
            expectContractError(error, sourceLocation: sourceLocation)
        }
    }

    /// Whether `field` has the shape of the path the parser names when it refuses a body while reading a member (a
    /// syntax error, a repeated name, nesting or a string past its cap): member names joined by `.`, array indexes in
    /// brackets, starting with a member of the top-level object, printable, and of bounded length.
    static func isParserPath(_ field: String) -> Bool {
        guard let first = field.first, first != ".", first != "[", field.utf8.count <= 64 * 70 else { return false }
        return field.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
    }

    func expectContractError(_ error: ValidationError, sourceLocation: SourceLocation) {
        #expect(contractValidationReasons[error.kind.reason] == 400, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
        let named =
            error.field.isEmpty || Self.isFieldPath(error.field)
            || (error.kind == .invalidRequestBody && Self.isParserPath(error.field))
        #expect(named, "field \(error.field)", sourceLocation: sourceLocation)
    }

    func expectContractRules(_ draft: SubmitDraft, limits: ValidationLimits, body: [UInt8], sourceLocation: SourceLocation) {
        let r = draft.request
        let context = Comment(rawValue: String(decoding: body.prefix(300), as: UTF8.self))
        #expect((limits.minDuration...limits.maxDuration).contains(r.duration), context, sourceLocation: sourceLocation)
        #expect(r.cfgScale.isFinite && (0...1).contains(r.cfgScale), context, sourceLocation: sourceLocation)
        #expect(r.prompt != nil || r.shots != nil, context, sourceLocation: sourceLocation)
        if let p = r.prompt { #expect((1...limits.maxPromptLength).contains(p.unicodeScalars.count), context, sourceLocation: sourceLocation) }
        if let n = r.negativePrompt { #expect(n.unicodeScalars.count <= limits.maxPromptLength, context, sourceLocation: sourceLocation) }
        if let shots = r.shots {
            #expect((1...limits.maxShots).contains(shots.count), context, sourceLocation: sourceLocation)
            #expect(shots.reduce(0) { $0 + $1.duration } == r.duration, context, sourceLocation: sourceLocation)
            #expect(draft.endImage == nil, context, sourceLocation: sourceLocation)
            for s in shots {
                #expect((limits.minDuration...limits.maxDuration).contains(s.duration), context, sourceLocation: sourceLocation)
                #expect((1...limits.maxPromptLength).contains(s.prompt.unicodeScalars.count), context, sourceLocation: sourceLocation)
            }
        }
        #expect(r.hasEndImage == (draft.endImage != nil), context, sourceLocation: sourceLocation)
        for case .bytes(let data) in [draft.image, draft.endImage].compactMap({ $0 }) {
            #expect(!data.isEmpty && data.count <= limits.maxImageBytes, context, sourceLocation: sourceLocation)
        }
        for case .url(let url) in [draft.image, draft.endImage].compactMap({ $0 }) {
            #expect(url.lowercased().hasPrefix("http://") || url.lowercased().hasPrefix("https://"), context, sourceLocation: sourceLocation)
        }
    }

    @Test func seedsAreValid() async throws {
        try await offPool {
            for seed in Self.seeds {
                #expect(throws: Never.self, "\(seed.prefix(120))") { try RequestValidator().validate(body: Data(seed.utf8)) }
            }
        }
    }

    @Test func mutatedBodiesEndInADraftOrAContractError() async throws {
        try await offPool {
            var rng = FuzzRNG(seed: 0x4B49_4E45_4D41_0001)
            let seeds = Self.seeds.map { Array($0.utf8) }
            for _ in 0..<3000 {
                check(Mutator.mutate(rng.pick(seeds), tokens: Self.tokens, donors: seeds, rng: &rng))
            }
        }
    }

    @Test func randomBytesAreRefusedAsInvalidBodies() async throws {
        try await offPool {
            var rng = FuzzRNG(seed: 0x4B49_4E45_4D41_0002)
            for _ in 0..<1000 {
                let body = (0..<rng.int(0...64)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                check(body)
            }
        }
    }

    @Test func generatedDocumentsEndInADraftOrAContractError() async throws {
        try await offPool {
            var rng = FuzzRNG(seed: 0x4B49_4E45_4D41_0003)
            var accepted = 0
            for _ in 0..<3000 {
                let body = Array(JSONText.serialize(Self.randomBody(&rng)).utf8)
                check(body)
                if (try? RequestValidator().validate(body: Data(body))) != nil { accepted += 1 }
            }
            // The generator must reach the success side too, or the rule checks above would test nothing.
            #expect(accepted > 50, "only \(accepted) generated bodies were accepted")
        }
    }

    /// Whatever the parser accepts prints back to text that parses to the same value.
    @Test func parsedDocumentsRoundTrip() async throws {
        try await offPool {
            var rng = FuzzRNG(seed: 0x4B49_4E45_4D41_0004)
            let seeds = Self.seeds.map { Array($0.utf8) }
            var parsed = 0
            for i in 0..<3000 {
                let bytes =
                    i % 2 == 0
                    ? Array(JSONText.serialize(Self.randomValue(&rng, depth: 0)).utf8)
                    : Mutator.mutate(rng.pick(seeds), tokens: Self.tokens, donors: seeds, rng: &rng)
                guard let value = try? JSONParser().parse(Data(bytes)) else { continue }
                parsed += 1
                let again = try JSONParser().parse(Data(JSONText.serialize(value).utf8))
                #expect(again == value, "\(String(decoding: bytes.prefix(200), as: UTF8.self))")
            }
            #expect(parsed > 1500)
        }
    }

    /// Nesting far past the depth limit is refused without exhausting the stack.
    @Test func deepNestingIsRefusedNotACrash() async throws {
        try await offPool {
            for open in ["[", "{\"a\":", "[{\"b\":"] {
                let body = Data((String(repeating: open, count: 200_000)).utf8)
                #expect(throws: ValidationError.self) { try RequestValidator().validate(body: body) }
                #expect(throws: JSONParseError.self) { try JSONParser().parse(body) }
            }
            let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
            #expect(throws: Never.self) { try JSONParser().parse(Data(deepest.utf8)) }
            let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
            #expect(throws: JSONParseError.self) { try JSONParser().parse(Data(tooDeep.utf8)) }
        }
    }

    /// Number literals at the edges of 64-bit arithmetic are read exactly or refused, never trapped on.
    @Test func extremeNumberLiteralsAreRefusedNotTrappedOn() async throws {
        try await offPool {
            let png = Self.pngBase64
            for literal in [
                "1e-9223372036854775808", "-1e-9223372036854775808", "1e9223372036854775807", "5e-9223372036854775807",
                "9223372036854775808", "-9223372036854775809", "1e999", "1E+999", "0e-9223372036854775808",
                "50000000000000000000e-19", "0.000000000000000000000000000000000000000000000000000000005e56",
            ] {
                let body = Data(#"{"image":"\#(png)","prompt":"a","duration":\#(literal),"seed":\#(literal)}"#.utf8)
                do {
                    let draft = try RequestValidator().validate(body: body)
                    #expect((3...15).contains(draft.request.duration), "\(literal)")
                } catch let error as ValidationError {
                    #expect(error.kind == .invalidRequestBody, "\(literal): \(error)")
                } catch {
                    Issue.record("not a ValidationError: \(error)")
                }
                _ = JSONNumber.exactInteger(literal)
            }
            #expect(JSONNumber.exactInteger("1e-9223372036854775808") == nil)
            #expect(JSONNumber.exactInteger("0e-9223372036854775808") == nil || JSONNumber.exactInteger("0e-9223372036854775808") == 0)
            #expect(JSONNumber.exactInteger("50e-1") == 5)
        }
    }

    // MARK: - Generators

    static let keys = ["image", "end_image", "prompt", "negative_prompt", "duration", "cfg_scale", "sound", "multi_prompt", "seed", "extra", "other"]

    /// A body built field by field, mostly from plausible values so many pass, with wrong types mixed in.
    static func randomBody(_ rng: inout FuzzRNG) -> JSONValue {
        var members: [(String, JSONValue)] = []
        if rng.chance(0.95) {
            members.append(
                (
                    "image",
                    .string(
                        rng.pick([
                            pngBase64, "data:image/png;base64," + pngBase64, "https://example.com/x.jpg", jpegBase64, "", "%%%", "ftp://x/y.png",
                        ]))
                ))
        }
        for key in keys where rng.chance(0.45) {
            let value: JSONValue
            switch key {
            case "prompt", "negative_prompt": value = rng.chance(0.85) ? .string(randomText(&rng)) : randomValue(&rng, depth: 2)
            case "duration": value = rng.chance(0.85) ? .number(randomNumber(&rng, plausible: 3...15)) : randomValue(&rng, depth: 2)
            case "cfg_scale": value = .number(rng.pick(["0", "1", "0.5", "1.0000001", "-0", "1e-3", "2", "0.99"]))
            case "sound": value = rng.chance(0.8) ? .bool(rng.chance(0.5)) : randomValue(&rng, depth: 2)
            case "seed": value = .number(rng.pick(["-1", "0", "4294967295", "4294967296", "-2", "7", "1e3"]))
            case "multi_prompt":
                value = .array(
                    (0..<rng.int(0...7)).map { _ in
                        rng.chance(0.3)
                            ? .string(randomText(&rng))
                            : .object(
                                [("prompt", .string(randomText(&rng)))]
                                    + (rng.chance(0.6) ? [("duration", .number(randomNumber(&rng, plausible: 2...6)))] : []))
                    })
            case "end_image": value = rng.chance(0.8) ? .string(pngBase64) : .null
            default: value = randomValue(&rng, depth: 1)
            }
            members.append((key, value))
        }
        if rng.chance(0.05) { members.shuffle(using: &rng) }
        return .object(members)
    }

    static func randomText(_ rng: inout FuzzRNG) -> String {
        switch rng.int(0...5) {
        case 0: return ""
        case 1: return String(repeating: "é", count: rng.pick([2499, 2500, 2501]))
        case 2: return String((0..<rng.int(1...20)).map { _ in Character(Unicode.Scalar(UInt8.random(in: 0...127, using: &rng))) })
        case 3: return "🌊 \u{0} \"\\ \u{1F}"
        default: return rng.pick(["zoom in", "pan left, slow", "rain", "wide shot"])
        }
    }

    static func randomNumber(_ rng: inout FuzzRNG, plausible: ClosedRange<Int>) -> String {
        switch rng.int(0...4) {
        case 0, 1: return String(rng.int(plausible))
        case 2: return "\(rng.int(plausible)).0"
        case 3: return "\(rng.int(plausible))0e-1"
        default: return rng.pick(["-1", "5.5", "1e400", "0", "-0", "1e-9223372036854775808", "18446744073709551616"])
        }
    }

    static func randomValue(_ rng: inout FuzzRNG, depth: Int) -> JSONValue {
        switch rng.int(0...(depth > 4 ? 3 : 5)) {
        case 0: return .null
        case 1: return .bool(rng.chance(0.5))
        case 2: return .number(randomNumber(&rng, plausible: -20...20))
        case 3: return .string(randomText(&rng))
        case 4: return .array((0..<rng.int(0...3)).map { _ in randomValue(&rng, depth: depth + 1) })
        default: return .object((0..<rng.int(0...3)).map { _ in (rng.pick(keys), randomValue(&rng, depth: depth + 1)) })
        }
    }
}

/// JSON text for a parsed value, so round trips can be checked without Foundation's lossy number handling.
enum JSONText {
    static func serialize(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let n): return n
        case .string(let s): return quote(s)
        case .array(let items): return "[" + items.map(serialize).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { quote($0.0) + ":" + serialize($0.1) }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
