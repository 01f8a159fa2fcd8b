import Foundation
import KinemaCore
import KinemaTestSupport
import Testing

/// A PNG signature + IHDR of the given size, padded to `totalBytes` (header-only checks never read past IHDR).
func pngHeader(width: Int, height: Int, totalBytes: Int? = nil) -> Data {
    var d = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13])
    d.append(contentsOf: Array("IHDR".utf8))
    for v in [width, height] { d.append(contentsOf: [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]) }
    d.append(contentsOf: [8, 6, 0, 0, 0, 0, 0, 0, 0])
    if let total = totalBytes, total > d.count { d.append(Data(count: total - d.count)) }
    return d
}

private let validator = RequestValidator()

private func body(_ fields: [String: String]) -> Data {
    var parts: [String] = []
    for (k, v) in fields.sorted(by: { $0.key < $1.key }) { parts.append("\"\(k)\":\(v)") }
    return Data("{\(parts.joined(separator: ","))}".utf8)
}

private let smallImage = "\"\(pngHeader(width: 640, height: 480).base64EncodedString())\""

private func expectError(_ fields: [String: String], _ kind: ValidationError.Kind, field: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(throws: ValidationError.self, sourceLocation: sourceLocation) { try validator.validate(body: body(fields)) }
    do {
        _ = try validator.validate(body: body(fields))
    } catch {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
    }
}

private func expectValid(_ fields: [String: String], sourceLocation: SourceLocation = #_sourceLocation) -> SubmitDraft? {
    do { return try validator.validate(body: body(fields)) } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite struct RequestBodyValidation {
    @Test func minimalRequestGetsContractDefaults() throws {
        let draft = try #require(expectValid(["image": smallImage, "prompt": "\"a cat\""]))
        #expect(draft.request.duration == 5)
        #expect(draft.request.cfgScale == 0.5)
        #expect(draft.request.sound == false)
        #expect(draft.request.shots == nil)
        #expect(draft.requestedSeed == nil)
        #expect(draft.request.prompt == "a cat")
    }

    @Test func bodyMustBeJSONObject() {
        for raw in ["", "nope", "[1]", "\"s\"", "{\"image\":", "{} {}"] {
            do {
                _ = try validator.validate(body: Data(raw.utf8))
                Issue.record("accepted \(raw)")
            } catch {
                #expect(error.kind == .invalidRequestBody)
                // Broken while reading a member: that member is named; otherwise the body as a whole.
                #expect(error.field == (raw == "{\"image\":" ? "image" : ""), "\(raw)")
            }
        }
    }

    @Test func imageIsRequiredAndAString() {
        expectError(["prompt": "\"x\""], .invalidRequestBody, field: "image")
        expectError(["image": "null", "prompt": "\"x\""], .invalidRequestBody, field: "image")
        expectError(["image": "42", "prompt": "\"x\""], .invalidRequestBody, field: "image")
        expectError(["image": "\"\"", "prompt": "\"x\""], .invalidRequestBody, field: "image")
    }

    @Test func promptLengthCountsUnicodeScalars() {
        let emoji = "😀" // one scalar, four UTF-8 bytes
        _ = expectValid(["image": smallImage, "prompt": "\"\(String(repeating: emoji, count: 2500))\""])
        expectError(["image": smallImage, "prompt": "\"\(String(repeating: emoji, count: 2501))\""], .invalidRequestBody, field: "prompt")
        _ = expectValid(["image": smallImage, "prompt": "\"\(String(repeating: "a", count: 2500))\""])
        expectError(["image": smallImage, "prompt": "\"\(String(repeating: "a", count: 2501))\""], .invalidRequestBody, field: "prompt")
        _ = expectValid(["image": smallImage, "prompt": "\"a\""])
        expectError(["image": smallImage, "prompt": "\"\""], .invalidRequestBody, field: "prompt")
        expectError(["image": smallImage], .invalidRequestBody, field: "prompt")
        expectError(["image": smallImage, "prompt": "7"], .invalidRequestBody, field: "prompt")
    }

    @Test func negativePromptLimit() {
        _ = expectValid(["image": smallImage, "prompt": "\"a\"", "negative_prompt": "\"\""])
        _ = expectValid(["image": smallImage, "prompt": "\"a\"", "negative_prompt": "\"\(String(repeating: "n", count: 2500))\""])
        expectError(
            ["image": smallImage, "prompt": "\"a\"", "negative_prompt": "\"\(String(repeating: "n", count: 2501))\""], .invalidRequestBody,
            field: "negative_prompt")
    }

    @Test(arguments: [
        ("2", false), ("3", true), ("15", true), ("16", false), ("5", true), ("5.0", true), ("5e0", true),
        ("5.5", false), ("\"5\"", false), ("true", false), ("-5", false), ("1e400", false),
    ])
    func durationBounds(literal: String, ok: Bool) {
        let fields = ["image": smallImage, "prompt": "\"a\"", "duration": literal]
        if ok {
            #expect(expectValid(fields)?.request.duration == Int(JSONNumber.exactInteger(literal) ?? -1))
        } else {
            expectError(fields, .invalidRequestBody, field: "duration")
        }
    }

    @Test(arguments: [("0", true), ("1", true), ("0.5", true), ("-0.01", false), ("1.01", false), ("\"0.5\"", false), ("1e-3", true)])
    func cfgScaleBounds(literal: String, ok: Bool) {
        let fields = ["image": smallImage, "prompt": "\"a\"", "cfg_scale": literal]
        if ok { _ = expectValid(fields) } else { expectError(fields, .invalidRequestBody, field: "cfg_scale") }
    }

    @Test func soundMustBeBoolean() {
        #expect(expectValid(["image": smallImage, "prompt": "\"a\"", "sound": "true"])?.request.sound == true)
        expectError(["image": smallImage, "prompt": "\"a\"", "sound": "1"], .invalidRequestBody, field: "sound")
        expectError(["image": smallImage, "prompt": "\"a\"", "sound": "\"true\""], .invalidRequestBody, field: "sound")
    }

    @Test(arguments: [("-1", true), ("0", true), ("4294967295", true), ("4294967296", false), ("-2", false), ("1.5", false)])
    func seedBounds(literal: String, ok: Bool) {
        let fields = ["image": smallImage, "prompt": "\"a\"", "seed": literal]
        if ok { _ = expectValid(fields) } else { expectError(fields, .invalidRequestBody, field: "seed") }
    }

    @Test func multiPromptShotsAndSums() throws {
        func shots(_ n: Int, duration: Int = 3) -> String {
            "[" + (0..<n).map { "{\"prompt\":\"shot \($0)\",\"duration\":\(duration)}" }.joined(separator: ",") + "]"
        }
        let one = try #require(expectValid(["image": smallImage, "multi_prompt": shots(1)]))
        #expect(one.request.duration == 3)
        #expect(one.request.prompt == nil)
        _ = expectValid(["image": smallImage, "multi_prompt": shots(5)]) // 15 s exactly
        expectError(["image": smallImage, "multi_prompt": shots(6)], .invalidRequestBody, field: "multi_prompt") // 18 s
        expectError(["image": smallImage, "multi_prompt": "[]"], .invalidRequestBody, field: "multi_prompt")
        expectError(["image": smallImage, "multi_prompt": "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\"]"], .invalidRequestBody, field: "multi_prompt")
        // A bare string is a 5 s shot.
        let bare = try #require(expectValid(["image": smallImage, "multi_prompt": "[\"wide\", {\"prompt\":\"close\"}]"]))
        #expect(bare.request.shots == [Shot(prompt: "wide", duration: 5), Shot(prompt: "close", duration: 5)])
        #expect(bare.request.duration == 10)
        // duration must equal the sum when both are given.
        _ = expectValid(["image": smallImage, "multi_prompt": shots(2), "duration": "6"])
        expectError(["image": smallImage, "multi_prompt": shots(2), "duration": "5"], .invalidRequestBody, field: "duration")
        expectError(
            ["image": smallImage, "multi_prompt": "[{\"prompt\":\"a\"},{\"prompt\":\"b\",\"duration\":2}]"], .invalidRequestBody,
            field: "multi_prompt[1].duration")
        expectError(
            ["image": smallImage, "multi_prompt": "[{\"prompt\":\"a\"},{\"duration\":4}]"], .invalidRequestBody, field: "multi_prompt[1].prompt")
        expectError(["image": smallImage, "multi_prompt": "[{\"prompt\":\"\"}]"], .invalidRequestBody, field: "multi_prompt[0].prompt")
        expectError(["image": smallImage, "multi_prompt": "[3]"], .invalidRequestBody, field: "multi_prompt[0]")
        expectError(["image": smallImage, "multi_prompt": "{}"], .invalidRequestBody, field: "multi_prompt")
    }

    @Test func endImageAndMultiPromptAreExclusive() {
        expectError(["image": smallImage, "end_image": smallImage, "multi_prompt": "[\"a\"]"], .invalidRequestBody, field: "end_image")
        #expect(expectValid(["image": smallImage, "end_image": smallImage, "prompt": "\"a\""])?.request.hasEndImage == true)
    }

    @Test func unknownFieldsAndNullsAreIgnored() {
        _ = expectValid(["image": smallImage, "prompt": "\"a\"", "model_name": "\"kling\"", "negative_prompt": "null", "extra": "{\"x\":1}"])
        expectError(["image": smallImage, "prompt": "\"a\"", "extra": "[]"], .invalidRequestBody, field: "extra")
    }

    @Test func imageForms() throws {
        let png = pngHeader(width: 640, height: 480)
        let raw = try #require(expectValid(["image": "\"\(png.base64EncodedString())\"", "prompt": "\"a\""]))
        #expect(raw.image == .bytes(png))
        let uri = try #require(expectValid(["image": "\"data:image/png;base64,\(png.base64EncodedString())\"", "prompt": "\"a\""]))
        #expect(uri.image == .bytes(png))
        let url = try #require(expectValid(["image": "\"https://example.invalid/cat.png\"", "prompt": "\"a\""]))
        #expect(url.image == .url("https://example.invalid/cat.png"))
        expectError(["image": "\"ftp://example.invalid/cat.png\"", "prompt": "\"a\""], .invalidImageFormat, field: "image")
        expectError(["image": "\"file:///etc/passwd\"", "prompt": "\"a\""], .invalidImageFormat, field: "image")
        expectError(["image": "\"data:image/gif;base64,R0lGOD\"", "prompt": "\"a\""], .invalidImageFormat, field: "image")
        expectError(["image": "\"not*base64!\"", "prompt": "\"a\""], .invalidImageFormat, field: "image")
        expectError(["end_image": "\"%%%\"", "image": smallImage, "prompt": "\"a\""], .invalidImageFormat, field: "end_image")
    }

    /// Every spelling of the same base64 decodes to the same bytes: padded or not, broken into MIME lines,
    /// surrounded by whitespace, or with JSON escapes (`\/`, `\n`) in it.
    @Test func base64SpellingsDecodeToTheSameBytes() throws {
        let png = pngHeader(width: 640, height: 480, totalBytes: 1001)
        let padded = png.base64EncodedString()
        #expect(padded.hasSuffix("="))
        let lines = png.base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        func json(_ text: String) -> String {
            "\""
                + text.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
                .replacingOccurrences(of: "\t", with: "\\t") + "\""
        }
        let spellings: [(String, String)] = [
            ("padded", json(padded)),
            ("unpadded", json(String(padded.prefix(while: { $0 != "=" })))),
            ("MIME lines", json(lines)),
            ("surrounding whitespace", json(" \n\(padded)\t ")),
            ("escaped slashes", json(padded).replacingOccurrences(of: "/", with: "\\/")),
            ("data URI with lines", json("data:image/png;base64," + lines)),
        ]
        for (name, literal) in spellings {
            let draft = expectValid(["image": literal, "prompt": "\"a\""])
            #expect(draft?.image == .bytes(png), "\(name)")
        }
        expectError(["image": json(String(padded.prefix(5))), "prompt": "\"a\""], .invalidImageFormat, field: "image") // an impossible length
        expectError(["image": json(String(padded.dropLast(8)) + "AB?DEFGH"), "prompt": "\"a\""], .invalidImageFormat, field: "image")
        expectError(["image": json("QU\nJD=A"), "prompt": "\"a\""], .invalidImageFormat, field: "image")
    }

    /// The early size refusal counts decoded bytes, not characters: line breaks do not push an image over.
    @Test func base64SizeCapCountsDataNotLineBreaks() throws {
        let cap = ValidationLimits().maxImageBytes
        let atCap = pngHeader(width: 640, height: 480, totalBytes: cap)
        let lines = atCap.base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        #expect(lines.utf8.count / 4 * 3 > cap + 3, "the line breaks alone would exceed the cap")
        let draft = expectValid(["image": "\"" + lines.replacingOccurrences(of: "\n", with: "\\n") + "\"", "prompt": "\"a\""])
        #expect(draft?.image == .bytes(atCap))
        let over = pngHeader(width: 640, height: 480, totalBytes: cap + 1024).base64EncodedString()
        expectError(["image": "\"\(over)\"", "prompt": "\"a\""], .imageFileTooLarge, field: "image")
    }

    @Test func exactIntegerReading() {
        #expect(JSONNumber.exactInteger("5") == 5)
        #expect(JSONNumber.exactInteger("5.000") == 5)
        #expect(JSONNumber.exactInteger("50e-1") == 5)
        #expect(JSONNumber.exactInteger("-1") == -1)
        #expect(JSONNumber.exactInteger("0.0") == 0)
        #expect(JSONNumber.exactInteger("5.5") == nil)
        #expect(JSONNumber.exactInteger("5.00000000000000001") == nil)
        #expect(JSONNumber.exactInteger("1e30") == nil)
    }
}

@Suite struct ImageLimitValidation {
    let limits = ValidationLimits()

    func kind(_ data: Data) -> ValidationError.Kind? {
        do { _ = try ImageValidation.validate(data, field: "image", limits: limits); return nil } catch { return error.kind }
    }

    @Test func minimumSide() {
        #expect(kind(pngHeader(width: 300, height: 300)) == nil)
        #expect(kind(pngHeader(width: 299, height: 300)) == .invalidImageSize)
        #expect(kind(pngHeader(width: 300, height: 299)) == .invalidImageSize)
    }

    @Test func aspectRatioInclusiveAtTwoAndAHalf() {
        #expect(kind(pngHeader(width: 750, height: 300)) == nil) // 2.5:1 exactly
        #expect(kind(pngHeader(width: 751, height: 300)) == .invalidImageSize)
        #expect(kind(pngHeader(width: 300, height: 750)) == nil) // 1:2.5 exactly
        #expect(kind(pngHeader(width: 300, height: 751)) == .invalidImageSize)
    }

    @Test func byteSizeCapIsTenMebibytes() {
        #expect(kind(pngHeader(width: 640, height: 480, totalBytes: 10 * 1024 * 1024)) == nil)
        #expect(kind(pngHeader(width: 640, height: 480, totalBytes: 10 * 1024 * 1024 + 1)) == .imageFileTooLarge)
    }

    @Test func decodeLimitFromHeaderOnly() {
        #expect(kind(pngHeader(width: 30000, height: 30000)) == .imageExceedsMaxResolution)
        #expect(kind(pngHeader(width: 8192, height: 4000)) == nil)
        #expect(kind(pngHeader(width: 8193, height: 4000)) == .imageExceedsMaxResolution)
        #expect(kind(pngHeader(width: 7000, height: 7000)) == .imageExceedsMaxResolution) // 49 MP > 40 MP
    }

    @Test func formatByMagicBytes() {
        #expect(kind(Data("GIF89a................".utf8)) == .invalidImageFormat)
        #expect(kind(Data([0x89, 0x50, 0x4E, 0x47])) == .invalidImageFormat) // truncated PNG
        #expect(kind(Data()) == .invalidImageFormat)
    }

    @Test func base64SizeCapBeforeDecoding() throws {
        let big = String(repeating: "A", count: (10 * 1024 * 1024 + 3) / 3 * 4 + 8)
        do {
            _ = try ImageInput.parse(big, field: "image", limits: limits)
            Issue.record("accepted oversize base64")
        } catch {
            #expect(error.kind == .imageFileTooLarge)
        }
    }
}

@Suite struct SigningAndHashing {
    @Test func sha256MatchesNISTVectors() {
        #expect(SHA256.hash(Array("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash([UInt8]()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test func sha256OfAMillionBytesAndOfPiecesAgree() {
        // NIST's long-message vector: one million 'a'.
        let million = [UInt8](repeating: 0x61, count: 1_000_000)
        #expect(SHA256.hash(million).hexString == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Fed in pieces that straddle block boundaries (1, 63, 64, 65 … bytes), and as a non-contiguous collection.
        var generator = SplitMix64(seed: 7)
        let data = (0..<5000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        var hasher = SHA256.Hasher()
        var offset = 0
        for size in [1, 63, 64, 65, 0, 127, 128, 129, 1000] + Array(repeating: 7, count: 500) where offset < data.count {
            let end = min(offset + size, data.count)
            hasher.update(data[offset..<end])
            offset = end
        }
        hasher.update(data[offset...])
        #expect(hasher.finalize() == SHA256.hash(data))
        #expect(SHA256.hash(data.lazy.map { $0 }) == SHA256.hash(data))
        // A precomputed HMAC key gives what the one-shot function gives, message after message.
        let key = SHA256.HMACKey(Array("secret".utf8))
        for n in [0, 1, 55, 56, 64, 200] {
            #expect(key.authenticate(data.prefix(n)) == SHA256.hmac(key: Array("secret".utf8), message: Array(data.prefix(n))))
        }
    }

    @Test func hmacMatchesRFC4231() {
        let key = [UInt8](repeating: 0x0b, count: 20)
        #expect(
            SHA256.hmac(key: key, message: Array("Hi There".utf8)).hexString
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        let longKey = [UInt8](repeating: 0xaa, count: 131)
        #expect(
            SHA256.hmac(key: longKey, message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)).hexString
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func signedURLsExpireAndRejectTampering() {
        let signer = URLSigner(secret: Array("0123456789abcdef0123456789abcdef".utf8))
        let now = Date(timeIntervalSince1970: 1_000_000)
        let sig = signer.signature(key: "results/a.mp4", expires: 1_000_060)
        #expect(signer.verify(key: "results/a.mp4", expires: 1_000_060, signature: sig, now: now) == .valid)
        #expect(signer.verify(key: "results/a.mp4", expires: 1_000_060, signature: sig, now: now.addingTimeInterval(60)) == .expired)
        #expect(signer.verify(key: "results/b.mp4", expires: 1_000_060, signature: sig, now: now) == .badSignature)
        #expect(signer.verify(key: "results/a.mp4", expires: 1_000_061, signature: sig, now: now) == .badSignature)
    }

    @Test(arguments: CredentialKind.allCases)
    func credentialsAreLongRandomHashedAndOfOneKind(kind: CredentialKind) {
        let a = Credential.generate(kind), b = Credential.generate(kind)
        #expect(a != b)
        #expect(a.hasPrefix(kind.prefix))
        #expect(Credential.isWellFormed(a, as: kind))
        #expect(!Credential.isWellFormed(a + "x", as: kind))
        #expect(!Credential.isWellFormed(kind.prefix + "short", as: kind))
        // A secret of one kind is never well formed as another.
        for other in CredentialKind.allCases where other != kind { #expect(!Credential.isWellFormed(a, as: other)) }
        #expect(Credential.hash(a).count == 64)
        #expect(Credential.hash(a) != Credential.hash(b))
        #expect(Credential.displayPrefix(a) == String(a.prefix(10)))
    }
}
