import Foundation
import KinemaCore
import KinemaTestSupport
import Testing

/// The fast UUID text helpers agree with Foundation's `UUID(uuidString:)` and `uuidString` on canonical text.
@Suite struct UUIDTextTests {
    @Test func formattingAndParsingMatchFoundation() {
        for _ in 0..<1000 {
            let id = UUID()
            #expect(id.uppercasedText == id.uuidString)
            #expect(id.lowercasedText == id.uuidString.lowercased())
            #expect(UUID(canonical: id.uuidString) == id)
            #expect(UUID(canonical: id.lowercasedText) == id)
        }
    }

    /// Only the strict canonical form parses (Foundation's scanner also takes some text that is not, e.g. with a space
    /// inside a byte), and what parses is what Foundation reads.
    @Test func onlyTheCanonicalFormParses() {
        let good = "0f8fad5b-d9cb-469f-a165-70867728950e"
        var cases = [
            "", "0", good + "0", String(good.dropLast()), good.replacingOccurrences(of: "-", with: ""),
            "0f8fad5bd-9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950g", " " + good.dropFirst(),
            "0f8fad5b_d9cb_469f_a165_70867728950e", "{0f8fad5b-d9cb-469f-a165-70867728950e}", "0f8fad5b-d9cb-469f-a165-70867728950é",
            "0f8fad5b-d9cb-469f-a165-7086772895-0", "-f8fad5b-d9cb-469f-a165-70867728950e",
        ]
        var generator = SplitMix64(seed: 16)
        let alphabet = Array("0123456789abcdefABCDEFxyz-{} é".unicodeScalars)
        for _ in 0..<2000 {
            var mutated = Array(good.unicodeScalars)
            mutated[Int.random(in: 0..<mutated.count, using: &generator)] = alphabet.randomElement(using: &generator)!
            cases.append(String(String.UnicodeScalarView(mutated)))
        }
        let canonical = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
        var parsed = 0
        for text in cases {
            let strict = text.wholeMatch(of: canonical) != nil
            #expect((UUID(canonical: text) != nil) == strict, "\(text)")
            if strict {
                parsed += 1
                #expect(UUID(canonical: text) == UUID(uuidString: text), "\(text)")
            }
        }
        #expect(parsed > 100 && parsed < cases.count - 100)
    }
}
