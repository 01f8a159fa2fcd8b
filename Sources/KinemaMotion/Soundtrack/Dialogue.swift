import Foundation

/// Quoted dialogue in a prompt: the lines the soundtrack speaks.
///
/// `a fisherman shouts "the tide is turning!" as waves roll in` speaks "the tide is turning!". Text between
/// straight double quotes (`"…"`) or curly ones (`“…”`) counts; single quotes do not (they are apostrophes far
/// more often than quotes). The quoted words are dialogue, not a description of the scene, so ambience cues are
/// read from the prompt without them.
public enum Dialogue {
    /// Lines spoken at most per prompt (per shot for multi-shot requests).
    public static let maxLines = 4
    /// Characters spoken at most per line; a longer line is cut at the last word boundary before it.
    public static let maxCharacters = 200

    /// Words in a negative prompt that veto speech.
    static let vetoWords: Set<String> = ["dialogue", "dialog", "speech", "speaking", "voice", "voices", "talking", "narration", "narrator"]

    /// The quoted lines of `prompt`, in order, trimmed; empty and unterminated quotes are skipped.
    public static func lines(in prompt: String) -> [String] {
        var lines: [String] = []
        for (range, isQuote) in segments(of: prompt) where isQuote {
            let text = prompt[range].trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            lines.append(cut(text))
            if lines.count == maxLines { break }
        }
        return lines
    }

    /// `prompt` with every quoted part (quotes included) replaced by a full stop, so the words around it stay apart.
    public static func removingQuotes(_ prompt: String) -> String {
        var out = ""
        for (range, isQuote) in segments(of: prompt) {
            out += isQuote ? "." : String(prompt[range])
        }
        return out
    }

    /// Whether `negativePrompt` asks for no speech ("no dialogue", "voices", "talking"…).
    public static func isVetoed(by negativePrompt: String?) -> Bool {
        guard let negativePrompt else { return false }
        return PromptWords.words(of: negativePrompt).contains { vetoWords.contains($0) }
    }

    /// The prompt cut into plain and quoted ranges; the quote marks themselves belong to neither. An opening
    /// quote without its closing one is plain text.
    static func segments(of prompt: String) -> [(Range<String.Index>, Bool)] {
        var result: [(Range<String.Index>, Bool)] = []
        var plainStart = prompt.startIndex
        var index = prompt.startIndex
        while index < prompt.endIndex {
            let character = prompt[index]
            let closing: Character? = character == "\"" ? "\"" : (character == "“" ? "”" : nil)
            if let closing, let end = prompt[prompt.index(after: index)...].firstIndex(of: closing) {
                if plainStart < index { result.append((plainStart..<index, false)) }
                result.append((prompt.index(after: index)..<end, true))
                index = prompt.index(after: end)
                plainStart = index
            } else {
                index = prompt.index(after: index)
            }
        }
        if plainStart < prompt.endIndex { result.append((plainStart..<prompt.endIndex, false)) }
        return result
    }

    private static func cut(_ text: String) -> String {
        guard text.count > maxCharacters else { return text }
        let head = text.prefix(maxCharacters)
        if let space = head.lastIndex(where: { $0.isWhitespace }) { return String(head[..<space]) }
        return String(head)
    }
}
