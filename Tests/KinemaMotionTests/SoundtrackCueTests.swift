import KinemaMotion
import Testing

@Suite("Soundtrack cues from prompts")
struct SoundtrackCueTests {
    @Test(arguments: [
        ("A gusty afternoon on the hill", [AmbienceCue.wind]),
        ("Light drizzle on the window", [.rain]),
        ("A stormy night", [.wind, .rain]),
        ("Waves crashing on the beach", [.water]),
        ("A mountain river", [.water]),
        ("A crackling campfire under the stars", [.fire]),
        ("Birdsong in the woods", [.forest]),
        ("Downtown traffic at rush hour", [.city]),
        ("A crowded market", [.crowd]),
        ("Quiet office, room tone", [.roomTone]),
        ("A breezy meadow", [.wind, .forest]),
        ("Rain on the café window", [.rain, .crowd]),
        ("A desert at noon", [.wind]),
        ("A sailboat in the harbour", [.water]),
        ("Neon skyline at night", [.city]),
    ])
    func synonymsNameTheirCue(prompt: String, expected: [AmbienceCue]) {
        #expect(Soundtrack.cues(prompt: prompt, negativePrompt: nil) == expected)
    }

    @Test func matchingIgnoresCaseAndDiacritics() {
        #expect(Soundtrack.cues(prompt: "OCEAN at DAWN", negativePrompt: nil) == [.water])
        #expect(Soundtrack.cues(prompt: "CAFÉ terrace", negativePrompt: nil) == [.crowd])
    }

    @Test(arguments: ["A rainbow over the hills", "A firefly at dusk", "Seashells and driftwood", "A streamer's desk"])
    func wordsInsideOtherWordsDoNotCount(prompt: String) {
        #expect(Soundtrack.cues(prompt: prompt, negativePrompt: nil) == [.roomTone])
    }

    @Test func nothingNamedGivesRoomTone() {
        #expect(Soundtrack.cues(prompt: "", negativePrompt: nil) == [.roomTone])
        #expect(Soundtrack.cues(prompt: "A portrait of a woman smiling", negativePrompt: "") == [.roomTone])
    }

    @Test func negationInThePromptVetoesTheCue() {
        #expect(Soundtrack.cues(prompt: "A calm beach with no rain", negativePrompt: nil) == [.water])
        #expect(Soundtrack.cues(prompt: "A still night without any wind", negativePrompt: nil) == [.roomTone])
        #expect(Soundtrack.cues(prompt: "No traffic at all", negativePrompt: nil) == [.roomTone])
    }

    @Test func negationEndsAtTheClause() {
        #expect(Soundtrack.cues(prompt: "No people, just birds", negativePrompt: nil) == [.forest])
        #expect(Soundtrack.cues(prompt: "No wind but heavy rain", negativePrompt: nil) == [.rain])
    }

    @Test func aCueMentionedOutsideANegationStays() {
        #expect(Soundtrack.cues(prompt: "The ocean, no waves today", negativePrompt: nil) == [.water])
    }

    @Test func negativePromptVetoesEveryCueItNames() {
        #expect(Soundtrack.cues(prompt: "Rain and wind at sea", negativePrompt: "rain") == [.wind, .water])
        #expect(Soundtrack.cues(prompt: "Rain and wind at sea", negativePrompt: "storm, blur") == [.water])
        #expect(Soundtrack.cues(prompt: "Rain at night", negativePrompt: "rain") == [.roomTone])
    }

    @Test func vetoingRoomToneLeavesNothing() {
        #expect(Soundtrack.cues(prompt: "A portrait", negativePrompt: "room tone") == [])
        #expect(Soundtrack.cues(prompt: "Fire in the room", negativePrompt: "room") == [.fire])
    }

    @Test func cuesComeInDeclarationOrder() {
        let cues = Soundtrack.cues(prompt: "crowd, city, forest, fire, water, rain, wind", negativePrompt: nil)
        #expect(cues == [.wind, .rain, .water, .fire, .forest, .city, .crowd])
    }
}
