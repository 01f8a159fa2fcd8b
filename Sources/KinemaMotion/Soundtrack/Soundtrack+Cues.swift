import Foundation

/// Ambience beds the prompt can ask for.
public enum AmbienceCue: String, Sendable, CaseIterable {
    /// Gusting wind: "wind", "breeze", "gust", "storm", "blizzard", and exposed landscapes ("desert", "cliffs", "glacier")…
    case wind
    /// Rainfall with droplets: "rain", "drizzle", "downpour", "storm"…
    case rain
    /// Ocean swells and moving water: "ocean", "sea", "waves", "beach", "river", "stream", "waterfall", "boat"…
    case water
    /// Crackling fire: "fire", "campfire", "fireplace", "flames", "embers"…
    case fire
    /// Birdsong over rustling leaves: "forest", "woods", "jungle", "birds", "meadow"…
    case forest
    /// Traffic rumble, passing cars and distant horns: "city", "street", "traffic", "cars", "downtown"…
    case city
    /// Babble of many voices: "crowd", "people", "market", "festival", "cafe"…
    case crowd
    /// A quiet room: "room tone", "indoors", "interior", "office", "room"… and the default when nothing matches.
    case roomTone
}

extension Soundtrack {
    /// The cues named in a prompt (keywords and synonyms, case-insensitive, word boundaries; "no rain"/negative prompt vetoes). Empty → [.roomTone].
    ///
    /// Words are matched whole, after case and diacritic folding ("Café" matches "cafe"; "rainbow" is not rain);
    /// words inside quotes are dialogue (`Dialogue`) and name nothing.
    /// A negator ("no", "not", "without", "never", "nor", "avoid", "zero") negates the cue words in the next four
    /// words of its clause; a comma, full stop or a word such as "but", "with", "just" ends the negation
    /// ("no people, just birds" → forest). A cue is kept when at least one mention is not negated. Every cue named
    /// anywhere in `negativePrompt` is vetoed. Nothing left → `[.roomTone]`, unless the negative prompt names the
    /// room tone itself, in which case the result is empty (the track then carries only the picture's effects).
    /// Cues come back in `AmbienceCue.allCases` order.
    public static func cues(prompt: String, negativePrompt: String?) -> [AmbienceCue] {
        let vetoed = SoundtrackVocabulary.mentions(in: negativePrompt ?? "", honourNegation: false)
        // Quoted dialogue is spoken, not described: "the rain is coming" in quotes asks for no rain.
        let named = SoundtrackVocabulary.mentions(in: Dialogue.removingQuotes(prompt), honourNegation: true).subtracting(vetoed)
        if named.isEmpty {
            return vetoed.contains(.roomTone) ? [] : [.roomTone]
        }
        return AmbienceCue.allCases.filter { named.contains($0) }
    }
}

/// The keyword vocabulary behind `Soundtrack.cues`: words and two-word phrases, each naming one or more cues.
enum SoundtrackVocabulary {
    private static let words: [String: [AmbienceCue]] = {
        var table: [String: [AmbienceCue]] = [:]
        func add(_ cues: [AmbienceCue], _ list: String) {
            for word in list.split(separator: " ") {
                table[String(word), default: []].append(contentsOf: cues)
            }
        }
        add(
            [.wind],
            "wind winds windy breeze breezes breezy gust gusts gusting gusty gale gales blustery howling windswept blizzard snowstorm sandstorm tornado hurricane cliff cliffs desert dunes glacier tundra arctic"
        )
        add([.rain], "rain rains raining rainy rained rainfall raindrop raindrops rainstorm downpour drizzle drizzling monsoon")
        add([.wind, .rain], "storm storms stormy thunderstorm thunderstorms tempest")
        add(
            [.water],
            "water waters ocean oceans sea seas seaside waves wave surf surfing beach beaches shore shoreline coast coastal tide tides river rivers stream streams brook creek waterfall waterfalls lake harbor harbour pier fountain rapids splash splashing lagoon bay boat boats sailboat sailing ship kayak canoe"
        )
        add(
            [.fire],
            "fire fires fireplace campfire bonfire flame flames flaming burning blaze blazing ember embers hearth inferno wildfire torch torches firewood"
        )
        add(
            [.forest],
            "forest forests woods woodland woodlands jungle rainforest trees birds bird birdsong songbird songbirds chirping meadow meadows garden orchard grove countryside foliage park wilderness bamboo"
        )
        add(
            [.city],
            "city cities street streets traffic car cars urban downtown town highway freeway road roads avenue intersection metropolis taxi taxis bus buses sidewalk crosswalk skyline skyscraper skyscrapers subway neon"
        )
        add(
            [.crowd],
            "crowd crowds crowded people audience spectators market marketplace bazaar festival party stadium concert cafe restaurant pub chatter chatting conversation gathering protest fans wedding parade celebration ballroom theater theatre"
        )
        add([.roomTone], "indoor indoors interior room office studio bedroom kitchen hallway library apartment classroom")
        return table
    }()

    private static let phrases: [String: [AmbienceCue]] = [
        "room tone": [.roomTone], "camp fire": [.fire], "fire place": [.fire], "bird song": [.forest],
        "sea shore": [.water], "rush hour": [.city], "busy street": [.city, .crowd],
    ]

    /// Every cue mentioned in `text`; with `honourNegation`, mentions a negation reaches do not count
    /// (`PromptWords.isNegated`, the rule the camera parser uses too).
    static func mentions(in text: String, honourNegation: Bool) -> Set<AmbienceCue> {
        var found: Set<AmbienceCue> = []
        for clause in PromptWords.clauses(of: text) {
            var index = 0
            while index < clause.count {
                let word = clause[index]
                var cues: [AmbienceCue] = []
                var span = 1
                if index + 1 < clause.count, let phrase = phrases[word + " " + clause[index + 1]] {
                    cues = phrase
                    span = 2
                } else if let single = words[word] {
                    cues = single
                }
                if !(honourNegation && PromptWords.isNegated(clause, at: index)) { found.formUnion(cues) }
                index += span
            }
        }
        return found
    }
}
