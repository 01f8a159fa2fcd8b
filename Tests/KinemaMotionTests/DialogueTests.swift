import Foundation
import KinemaCore
import KinemaMedia
import KinemaMotion
import Testing

/// Quoted dialogue: which words are lines, and how the soundtrack speaks them.
@Suite("Dialogue")
struct DialogueTests {
    @Test func quotedTextBecomesLinesInOrder() {
        #expect(Dialogue.lines(in: #"a fisherman shouts "the tide is turning!" as waves roll in"#) == ["the tide is turning!"])
        #expect(Dialogue.lines(in: #"she whispers “come closer” and he answers "not yet""#) == ["come closer", "not yet"])
        #expect(Dialogue.lines(in: #"he says "  hello  ""#) == ["hello"])
        // Nothing to say: no quotes, apostrophes, an empty or wordless quote, an unterminated one.
        #expect(Dialogue.lines(in: "the captain's boat, slow pan left").isEmpty)
        #expect(Dialogue.lines(in: #"a sign reads "" and "…""#).isEmpty)
        #expect(Dialogue.lines(in: #"he starts to say "never mind"#).isEmpty)
    }

    @Test func linesAreCappedInNumberAndLength() {
        let many = (1...6).map { "\"line \($0)\"" }.joined(separator: " then ")
        #expect(Dialogue.lines(in: many) == ["line 1", "line 2", "line 3", "line 4"])
        let long = Array(repeating: "word", count: 80).joined(separator: " ") // 399 characters
        let line = try? #require(Dialogue.lines(in: "\"\(long)\"").first)
        #expect((line?.count ?? 0) <= Dialogue.maxCharacters && (line?.count ?? 0) > Dialogue.maxCharacters - 5)
        #expect(line?.hasSuffix("word") == true, "cut at a word boundary")
    }

    @Test func quotedWordsNameNoAmbience() {
        #expect(Dialogue.removingQuotes(#"a man says "the rain is coming" indoors"#) == "a man says . indoors")
        #expect(Soundtrack.cues(prompt: #"a man says "the rain is coming" indoors"#, negativePrompt: nil) == [.roomTone])
        #expect(Soundtrack.cues(prompt: #"rain on the window, she says "hello""#, negativePrompt: nil) == [.rain])
    }

    @Test func theNegativePromptCanVetoSpeech() {
        #expect(Dialogue.isVetoed(by: "no dialogue, blur"))
        #expect(Dialogue.isVetoed(by: "Voices"))
        #expect(!Dialogue.isVetoed(by: "blur, rain"))
        #expect(!Dialogue.isVetoed(by: "blurry words on screen"), "text in the picture is not speech")
        #expect(!Dialogue.isVetoed(by: nil))
    }

    typealias P = SoundtrackProbe

    static func track(_ events: [SoundEvent], seconds: Double = 4) -> [Float] {
        P.channel(Soundtrack.synthesize(prompt: "a quiet room", negativePrompt: nil, durationSeconds: seconds, events: events, seed: 5), 0)
    }

    @Test func aLineIsSpokenLoudAndSyllabicOverADuckedBed() {
        let silent = Self.track([])
        let spoken = Self.track([SoundEvent(time: 0.5, kind: .speech("welcome home, it has been a long time"))])
        #expect(spoken.count == silent.count)
        // Before the line (and its duck ramp), the bed is untouched.
        let untouched = P.slice(spoken, 0, 0.4) == P.slice(silent, 0, 0.4)
        #expect(untouched, "the bed changed before the line")
        let rise = P.decibels(P.rms(P.slice(spoken, 0.5, 1.5))) - P.decibels(P.rms(P.slice(silent, 0.5, 1.5)))
        #expect(rise > 8, "the line raised the level by only \(rise) dB")
        // Speech comes in syllables: its 20 ms loudness swings far more than the steady room tone's.
        let voiced = P.variation(P.windowedRMS(P.slice(spoken, 0.5, 1.5), window: 0.02))
        let bed = P.variation(P.windowedRMS(P.slice(silent, 0.5, 1.5), window: 0.02))
        #expect(voiced > 0.5 && voiced > 3 * bed, "loudness variation \(voiced) vs the bed's \(bed)")
        #expect(P.peak(spoken) <= 0.708, "peak \(P.peak(spoken)) over −3 dBFS")
        // The same line is the same sound.
        let again = Self.track([SoundEvent(time: 0.5, kind: .speech("welcome home, it has been a long time"))])
        let identical = again == spoken // compared first: a failing #expect would print both tracks
        #expect(identical, "the same line gave different samples")
    }

    @Test func linesNeverOverlapAndStopAtTheEnd() {
        let none = Self.track([])
        let first = SoundEvent(time: 0.2, kind: .speech("the tide is turning"))
        let one = Self.track([first])
        let two = Self.track([first, SoundEvent(time: 0.2, kind: .speech("bring the boats in"))])
        // Where the first line (with its duck ramp) ends, and where the second one starts to change anything.
        let firstEnds = try? #require((0..<one.count).last { abs(one[$0] - none[$0]) > 1e-6 })
        let secondStarts = try? #require((0..<two.count).first { abs(two[$0] - one[$0]) > 1e-6 })
        #expect(
            (secondStarts ?? 0) > (firstEnds ?? .max), "the second line began at \(secondStarts ?? -1), before the first ended at \(firstEnds ?? -1)")
        // A line that starts near the end is cut there: the track keeps its exact length and fades out cleanly.
        let late = Self.track([SoundEvent(time: 3.9, kind: .speech("and that is all for today"))])
        #expect(late.count == none.count)
        #expect(abs(late.last ?? 1) < 1e-3)
    }

    /// Through the engine: a prompt's quoted line is heard in the rendered MP4, unless the negative prompt vetoes
    /// speech, in which case the audio is exactly the one of the same prompt without the quote.
    @Test func theRenderedClipSpeaksTheQuoteUnlessVetoed() async throws {
        let image = MotionTestSupport.texturedImage(width: 320, height: 180)
        try await MotionTestSupport.withTemporaryDirectory { dir in
            func audio(_ prompt: String, negative: String? = nil, name: String) async throws -> [Float] {
                let request = GenerationRequest(prompt: prompt, negativePrompt: negative, duration: 3, sound: true, seed: 4)
                let url = try await MotionTestSupport.render(request, image: image, in: dir, name: name, shortSide: 120)
                return P.channel(try #require(try MP4Reader.decodeAudio(url: url)), 0)
            }
            let quiet = try await audio("static shot of a quiet room", name: "quiet")
            let talking = try await audio(#"static shot of a quiet room, "good evening, everyone""#, name: "talking")
            let vetoed = try await audio(#"static shot of a quiet room, "good evening, everyone""#, negative: "no dialogue", name: "vetoed")
            let rise = P.decibels(P.rms(P.slice(talking, 0.3, 1.3))) - P.decibels(P.rms(P.slice(quiet, 0.3, 1.3)))
            #expect(rise > 8, "the spoken line raised the decoded level by only \(rise) dB")
            #expect(P.peak(talking) < 0.891, "decoded peak over −1 dBFS")
            let difference = P.rms(zip(vetoed, quiet).map { $0 - $1 })
            #expect(difference < 1e-4, "the vetoed line still changed the sound (difference RMS \(difference))")
        }
    }
}
