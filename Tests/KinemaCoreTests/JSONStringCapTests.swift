import Foundation
import KinemaCore
import Testing

/// The parser's string cap, counted in bytes as sent, on both sides of the limit.
@Suite struct JSONStringCap {
    @Test func aStringAtTheCapParsesAndOneByteMoreIsRefused() throws {
        let parser = JSONParser(maxStringBytes: 8)
        #expect(try parser.parse(Data(#"{"k":"12345678"}"#.utf8)) == .object([("k", .string("12345678"))]))
        #expect(throws: JSONParseError.self) { try parser.parse(Data(#"{"k":"123456789"}"#.utf8)) }
        // Keys count too, and escapes count as written (here 2 bytes each).
        #expect(throws: JSONParseError.self) { try parser.parse(Data(#"{"123456789":1}"#.utf8)) }
        #expect(throws: JSONParseError.self) { try parser.parse(Data(#"{"k":"\n\n\n\n\n"}"#.utf8)) }
        #expect(try parser.parse(Data(#"{"k":"\n\n\n\n"}"#.utf8)) == .object([("k", .string("\n\n\n\n"))]))
    }

    @Test func theValidatorsCapLeavesRoomForTheLargestImageAndAnOversizedImageIsAnImageError() throws {
        let limits = ValidationLimits()
        #expect(limits.maxJSONStringBytes >= (limits.maxImageBytes + 2) / 3 * 4 + 64)
        let validator = RequestValidator(limits: limits)
        let tooLong = "{\"image\":\"" + String(repeating: "A", count: limits.maxJSONStringBytes + 1) + "\",\"prompt\":\"x\"}"
        let error = #expect(throws: ValidationError.self) { try validator.validate(body: Data(tooLong.utf8)) }
        #expect(error?.kind.reason == "IMAGE_FILE_EXCEEDS_MAX_SIZE")
        #expect(error?.field == "image")
    }
}

/// Every oversized image gets the contract's answer whatever its size (issue: an 11.45 MB PNG was told its JSON
/// was broken), and a cap that belongs to any other field names that field.
@Suite struct OversizedFieldsNameTheirField {
    static let limits = ValidationLimits()
    static let validator = RequestValidator(limits: limits)
    static let mb = 1024 * 1024

    /// Base64 of `n` bytes of zeros, as text (`AAAA` per 3 bytes; a tail is padded).
    static func base64(bytes n: Int) -> String {
        var s = String(repeating: "AAAA", count: n / 3)
        switch n % 3 {
        case 1: s += "AA=="
        case 2: s += "AAA="
        default: break
        }
        return s
    }

    static func body(field: String, value: String, extra: String = "") -> Data {
        Data(("{\"prompt\":\"a\"," + extra + "\"" + field + "\":\"" + value + "\"}").utf8)
    }

    static func check(_ body: Data) -> ValidationError? {
        do { _ = try validator.validate(body: body); return nil } catch { return error }
    }

    @Test(arguments: ["image", "end_image"], [false, true])
    func imagesOnBothSidesOfTheCapGetTheImageReason(field: String, dataURI: Bool) {
        let prefix = dataURI ? "data:image/png;base64," : ""
        let other = field == "end_image" ? "\"image\":\"AAAA\"," : ""
        // Exactly 10 MB passes the size rule (the bytes are checked as an image later, at the API).
        let atCap = Self.check(Self.body(field: field, value: prefix + Self.base64(bytes: 10 * Self.mb), extra: other))
        #expect(atCap == nil, "\(String(describing: atCap))")
        // One byte more: the body is valid, and the size rule of the submit (run on the decoded bytes) refuses it.
        let justOver = Self.check(Self.body(field: field, value: prefix + Self.base64(bytes: 10 * Self.mb + 1), extra: other))
        #expect(justOver == nil)
        let bytes = Data(count: 10 * Self.mb + 1)
        let sizeError = #expect(throws: ValidationError.self) { try ImageValidation.validate(bytes, field: field, limits: Self.limits) }
        #expect(sizeError?.kind == .imageFileTooLarge)
        #expect(sizeError?.field == field)
        // 4 bytes over (past the base64 estimate), 11.5 MB (past the parser's string cap) and 20 MB: refused while
        // validating the body, with the image rule's own answer.
        for size in [10 * Self.mb + 4, 11 * Self.mb + Self.mb / 2, 20 * Self.mb] {
            let error = Self.check(Self.body(field: field, value: prefix + Self.base64(bytes: size), extra: other))
            #expect(error?.kind == .imageFileTooLarge, "\(size) bytes: \(String(describing: error))")
            #expect(error?.field == field, "\(size) bytes")
            #expect(error?.message.contains("10 MB") == true)
        }
    }

    @Test func anOversizedImageStringWithEscapedLineBreaksIsStillAnImageError() {
        // MIME-style base64 with "\n" every 76 characters: the string as sent passes the cap by its escapes.
        let line = String(repeating: "A", count: 76) + "\\n"
        let value = String(repeating: line, count: 20 * Self.mb / 57)
        let error = Self.check(Self.body(field: "image", value: value))
        #expect(error?.kind == .imageFileTooLarge)
        #expect(error?.field == "image")
    }

    @Test func anOverlongPromptAnywhereNamesItsPath() {
        let huge = String(repeating: "x", count: Self.limits.maxJSONStringBytes + 1)
        let top = Self.check(Data(("{\"image\":\"AAAA\",\"prompt\":\"" + huge + "\"}").utf8))
        #expect(top?.kind == .invalidRequestBody)
        #expect(top?.field == "prompt")
        let shot = Self.check(Data(("{\"image\":\"AAAA\",\"multi_prompt\":[\"a\",{\"prompt\":\"b\"},{\"prompt\":\"" + huge + "\"}]}").utf8))
        #expect(shot?.kind == .invalidRequestBody)
        #expect(shot?.field == "multi_prompt[2].prompt")
        let nested = Self.check(Data(("{\"image\":\"AAAA\",\"extra\":{\"webhook\":{\"url\":\"" + huge + "\"}}}").utf8))
        #expect(nested?.field == "extra.webhook.url")
        // An image key nested elsewhere is not the image.
        let elsewhere = Self.check(Data(("{\"image\":\"AAAA\",\"extra\":{\"image\":\"" + huge + "\"}}").utf8))
        #expect(elsewhere?.kind == .invalidRequestBody)
        #expect(elsewhere?.field == "extra.image")
    }

    @Test func syntaxErrorsAndDepthNameWhereTheyHappened() {
        let broken = Self.check(Data(#"{"prompt":"a","multi_prompt":[{"prompt":"b","duration":5,}]}"#.utf8))
        #expect(broken?.kind == .invalidRequestBody)
        #expect(broken?.field == "multi_prompt[0]")
        let deep = Self.check(Data(("{\"extra\":" + String(repeating: "[", count: 70) + String(repeating: "]", count: 70) + "}").utf8))
        #expect(deep?.kind == .invalidRequestBody)
        #expect(deep?.field.hasPrefix("extra[0]") == true, "\(String(describing: deep?.field))")
        #expect(deep?.message.contains("deeper than 64") == true)
        let notJSON = Self.check(Data("not json".utf8))
        #expect(notJSON?.field == "")
    }

    @Test func aHugeNumberLiteralIsNotEchoedWhole() {
        let digits = String(repeating: "9", count: 100_000)
        for field in ["duration", "seed", "cfg_scale"] {
            let error = Self.check(Data(("{\"image\":\"AAAA\",\"prompt\":\"a\",\"" + field + "\":" + digits + "}").utf8))
            #expect(error?.field == field)
            #expect((error?.message.utf8.count ?? .max) < 300, "\(field): \(error?.message.prefix(80) ?? "")")
        }
    }

    @Test func aRepeatedMemberIsRefusedWithItsPath() {
        let top = Self.check(Data(#"{"image":"AAAA","prompt":"a","prompt":"b"}"#.utf8))
        #expect(top?.kind == .invalidRequestBody)
        #expect(top?.field == "prompt")
        #expect(top?.message.contains("more than once") == true)
        let nested = Self.check(Data(#"{"image":"AAAA","multi_prompt":[{"prompt":"a","prompt":"b"}]}"#.utf8))
        #expect(nested?.field == "multi_prompt[0].prompt")
        // A large object takes the set path: the repeat is found all the same.
        let many = (0..<40).map { "\"k\($0)\":1" }.joined(separator: ",")
        let large = Self.check(Data(("{\"image\":\"AAAA\",\"prompt\":\"a\",\"extra\":{" + many + ",\"k7\":2}}").utf8))
        #expect(large?.field == "extra.k7")
        // The same name in different objects is fine.
        let fine = Self.check(Data(#"{"image":"AAAA","prompt":"a","multi_prompt":[{"prompt":"a"},{"prompt":"b"}]}"#.utf8))
        #expect(fine == nil, "\(String(describing: fine))")
    }
}
