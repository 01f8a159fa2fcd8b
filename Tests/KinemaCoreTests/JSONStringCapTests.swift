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

    @Test func theValidatorsCapLeavesRoomForTheLargestImageAndRefusesLonger() throws {
        let limits = ValidationLimits()
        #expect(limits.maxJSONStringBytes >= (limits.maxImageBytes + 2) / 3 * 4 + 64)
        let validator = RequestValidator(limits: limits)
        let tooLong = "{\"image\":\"" + String(repeating: "A", count: limits.maxJSONStringBytes + 1) + "\",\"prompt\":\"x\"}"
        let error = #expect(throws: ValidationError.self) { try validator.validate(body: Data(tooLong.utf8)) }
        #expect(error?.kind.reason == "INVALID_REQUEST_BODY")
        #expect(error?.message.contains("longer than") == true, "\(String(describing: error?.message))")
    }
}
