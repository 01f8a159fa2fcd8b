import Foundation

/// Prompt text as words in clauses: the one tokenizer and the one negation rule that every reader of a prompt uses
/// (camera moves and effects in `PromptParser`, sound cues, dialogue vetoes), so "no rain" means the same to all.
///
/// Words are lower-cased, diacritic-folded runs of letters and digits ("don't" → "dont", "isn't" → "is not",
/// "hand-held" → "hand held"). Clauses end at punctuation and at joining words ("and", "then", "but"…).
enum PromptWords {
    /// Words that negate what follows them.
    static let negators: Set<String> = ["no", "not", "without", "dont", "never", "avoid", "nor", "doesnt", "zero", "minus"]
    /// Words that start a new clause, like punctuation does.
    static let clauseBreakers: Set<String> = ["and", "then", "while", "but", "as", "after", "before"]
    /// Words that end a negation's reach inside a clause ("no fog, just rain"; "no wind with waves").
    static let negationBreakers: Set<String> = ["with", "just", "only", "yet", "except", "instead"]
    /// How many words after a negator it reaches.
    static let negationReach = 4

    /// The clauses of `text`, each a list of words; empty clauses are dropped.
    static func clauses(of text: String) -> [[String]] {
        let folded = text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .replacingOccurrences(of: "’", with: "'")
            .replacingOccurrences(of: "don't", with: "dont")
            .replacingOccurrences(of: "doesn't", with: "doesnt")
            .replacingOccurrences(of: "n't", with: " not")
        var clauses: [[String]] = []
        var current: [String] = []
        var word = ""
        func endClause() {
            if !current.isEmpty { clauses.append(current) }
            current = []
        }
        func endWord() {
            guard !word.isEmpty else { return }
            if clauseBreakers.contains(word) { endClause() } else { current.append(word) }
            word = ""
        }
        for character in folded {
            if character.isLetter || character.isNumber {
                word.append(character)
            } else {
                endWord()
                if ",.;:!?()[]{}\n\"&|".contains(character) { endClause() }
            }
        }
        endWord()
        endClause()
        return clauses
    }

    /// Every word of `text`, in order, across clauses.
    static func words(of text: String) -> [String] {
        clauses(of: text).flatMap { $0 }
    }

    /// Whether the word at `index` is negated: a negator stands at most `negationReach` words before it in its
    /// clause, with no negation breaker in between.
    static func isNegated(_ clause: [String], at index: Int) -> Bool {
        var j = index - 1
        while j >= max(0, index - negationReach) {
            if negationBreakers.contains(clause[j]) { return false }
            if negators.contains(clause[j]) { return true }
            j -= 1
        }
        return false
    }
}
