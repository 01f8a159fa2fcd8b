import Foundation

/// Reads camera directives, modifiers, ambient effects and negations out of free text (pure, deterministic).
///
/// The vocabulary is documented in docs/motion-engine.md. Text is lower-cased, hyphens become spaces and the
/// prompt is split into clauses at punctuation and at "and", "then", "while"; a modifier applies to the moves
/// of its own clause, or to every unmodified move when its clause names no move.
public enum PromptParser {
    /// Parses a prompt into directives with modifier strengths (cfg scaling and the negative prompt come later).
    public static func parse(_ prompt: String) -> PromptDirectives {
        var result = PromptDirectives()
        var globalMultiplier: Double?
        var globalPace: MovePace?
        var clauseMoves: [[MoveDirective]] = []
        var clauseHasOwnModifier: [Bool] = []

        for clause in PromptWords.clauses(of: prompt) {
            var moves: [MoveDirective] = []
            var multiplier = 1.0
            var pace = MovePace.normal
            var sawModifier = false
            var i = 0
            while i < clause.count {
                let word = clause[i]
                let negated = PromptWords.isNegated(clause, at: i)
                if let m = moveModifiers[word] {
                    multiplier *= m.multiplier
                    if m.fast { pace = .fast }
                    sawModifier = true
                }
                if let framing = framing(in: clause, at: i) {
                    result.framing = framing
                    i += 2
                    continue
                }
                if dissolveWords.contains(word) { result.wantsDissolve = true }
                if let (move, consumed) = move(in: clause, at: i) {
                    if negated {
                        if move == .staticCamera {
                            result.vetoedMoves.formUnion(CameraMove.allCases.filter { $0 != .staticCamera })
                        } else {
                            result.vetoedMoves.formUnion(family(of: move, word: word))
                        }
                    } else if !moves.contains(where: { $0.move == move }) {
                        moves.append(MoveDirective(move: move, strength: 1))
                    }
                    i += consumed
                    continue
                }
                if let effect = effect(for: word, in: clause, at: i) {
                    if negated {
                        result.vetoedEffects.insert(effect)
                    } else if result.directive(for: effect) == nil {
                        result.effects.append(EffectDirective(effect: effect, intensity: effectIntensity(clause, at: i, effect: effect)))
                    }
                }
                i += 1
            }
            if moves.isEmpty, sawModifier {
                globalMultiplier = (globalMultiplier ?? 1) * multiplier
                if pace == .fast { globalPace = .fast }
            }
            clauseMoves.append(moves.map { MoveDirective(move: $0.move, strength: multiplier, pace: pace) })
            clauseHasOwnModifier.append(sawModifier)
        }
        for (moves, own) in zip(clauseMoves, clauseHasOwnModifier) {
            for var move in moves where !result.moves.contains(where: { $0.move == move.move }) {
                if !own {
                    move.strength *= globalMultiplier ?? 1
                    move.pace = globalPace ?? move.pace
                }
                result.moves.append(move)
            }
        }
        result.moves.removeAll { result.vetoedMoves.contains($0.move) }
        result.effects.removeAll { result.vetoedEffects.contains($0.effect) }
        // "static" next to a real move is a contradiction; the named move wins.
        if result.moves.count > 1 { result.moves.removeAll { $0.move == .staticCamera } }
        return result
    }

    /// Everything a negative prompt names: the moves and effects it vetoes (category words veto whole families).
    public static func vetoes(in negativePrompt: String) -> (moves: Set<CameraMove>, effects: Set<AmbientEffect>) {
        var moves = Set<CameraMove>()
        var effects = Set<AmbientEffect>()
        for clause in PromptWords.clauses(of: negativePrompt) {
            var i = 0
            while i < clause.count {
                let word = clause[i]
                if let family = vetoFamilies[word] { moves.formUnion(family) }
                if (word == "camera" || word == "camera's") && i + 1 < clause.count,
                    ["movement", "movements", "motion", "moves", "move", "moving"].contains(clause[i + 1])
                {
                    moves.formUnion(CameraMove.allCases.filter { $0 != .staticCamera })
                }
                if let (move, consumed) = move(in: clause, at: i), move != .staticCamera {
                    moves.formUnion(family(of: move, word: word))
                    i += consumed
                    continue
                }
                if let effect = effect(for: word, in: clause, at: i) { effects.insert(effect) }
                if flickerWords.contains(word) { effects.formUnion([.fireFlicker, .lightFlicker]) }
                if ["effects", "particles", "weather"].contains(word) { effects.formUnion([.rain, .snow, .fogDrift]) }
                i += 1
            }
        }
        return (moves, effects)
    }

    // MARK: - Tokens and clauses

    // MARK: - Moves

    private enum Direction { case inward, outward, left, right, up, down, clockwise, counterClockwise, around }

    private static func direction(of word: String) -> Direction? {
        switch word {
        case "in", "into", "inward", "inwards", "forward", "forwards", "closer", "toward", "towards": .inward
        case "out", "outward", "outwards", "back", "backward", "backwards", "away": .outward
        case "left", "leftward", "leftwards": .left
        case "right", "rightward", "rightwards": .right
        case "up", "upward", "upwards", "skyward", "skywards", "higher": .up
        case "down", "downward", "downwards", "lower": .down
        case "clockwise": .clockwise
        case "counterclockwise", "anticlockwise": .counterClockwise
        case "around", "round": .around
        default: nil
        }
    }

    /// A verb family: how each direction maps to a move, and the move when no direction follows.
    private struct Verb {
        var map: [Direction: CameraMove]
        var fallback: CameraMove?
    }

    private static let zoomVerb = Verb(map: [.inward: .zoomIn, .outward: .zoomOut], fallback: .zoomIn)
    private static let panVerb = Verb(map: [.left: .panLeft, .right: .panRight, .up: .tiltUp, .down: .tiltDown], fallback: .panRight)
    private static let tiltVerb = Verb(map: [.up: .tiltUp, .down: .tiltDown], fallback: .tiltUp)
    private static let truckVerb = Verb(map: [.left: .truckLeft, .right: .truckRight], fallback: nil)
    private static let pedestalVerb = Verb(map: [.up: .pedestalUp, .down: .pedestalDown], fallback: .pedestalUp)
    private static let craneVerb = Verb(map: [.up: .craneUp, .down: .craneDown], fallback: .craneUp)
    private static let rollVerb = Verb(
        map: [.left: .rollLeft, .counterClockwise: .rollLeft, .right: .rollRight, .clockwise: .rollRight], fallback: nil)
    private static let orbitVerb = Verb(map: [.left: .orbitLeft, .right: .orbitRight, .around: .orbitRight], fallback: .orbitRight)
    private static let moveVerb = Verb(
        map: [.inward: .dollyIn, .outward: .dollyOut, .left: .truckLeft, .right: .truckRight, .up: .pedestalUp, .down: .pedestalDown],
        fallback: nil)

    private static let verbs: [String: Verb] = {
        var v: [String: Verb] = [:]
        for w in ["zoom", "zooms", "zooming", "zoomed"] { v[w] = zoomVerb }
        for w in ["push", "pushes", "pushing"] { v[w] = Verb(map: [.inward: .zoomIn], fallback: .zoomIn) }
        for w in ["pull", "pulls", "pulling"] { v[w] = Verb(map: [.outward: .zoomOut], fallback: nil) }
        for w in ["dolly", "dollies", "dollying"] {
            v[w] = Verb(map: [.inward: .dollyIn, .outward: .dollyOut, .left: .truckLeft, .right: .truckRight], fallback: .dollyIn)
        }
        for w in ["pan", "pans", "panning", "panned"] { v[w] = panVerb }
        for w in ["tilt", "tilts", "tilting", "tilted"] { v[w] = tiltVerb }
        for w in ["truck", "trucks", "trucking", "track", "tracks", "slide", "slides", "sliding", "strafe", "strafes"] { v[w] = truckVerb }
        v["tracking"] = Verb(map: truckVerb.map, fallback: .truckRight)
        for w in ["pedestal", "pedestals", "boom", "booms"] { v[w] = pedestalVerb }
        // Subjects rise and sink too ("the sun rises"): these verbs need an explicit direction.
        for w in ["rise", "rises", "rising", "raise", "raises", "ascend", "ascends", "descend", "descends", "sink", "sinks"] {
            v[w] = Verb(map: pedestalVerb.map, fallback: nil)
        }
        for w in ["crane", "cranes", "craning", "jib", "jibs"] { v[w] = craneVerb }
        for w in ["roll", "rolls"] { v[w] = rollVerb }
        for w in ["rotate", "rotates", "rotating", "spin", "spins", "spinning", "twist", "twists", "dutch"] {
            v[w] = Verb(map: rollVerb.map, fallback: .rollRight)
        }
        for w in ["orbit", "orbits", "orbiting", "arc", "arcs", "arcing", "circle", "circles", "circling"] { v[w] = orbitVerb }
        for w in [
            "move", "moves", "moving", "travel", "travels", "traveling", "travelling", "glide", "glides", "gliding", "drift", "drifts", "drifting",
        ] {
            v[w] = moveVerb
        }
        return v
    }()

    private static let staticWords: Set<String> = ["static", "locked", "lockedoff", "tripod", "stationary", "motionless", "unmoving"]
    private static let handheldWords: Set<String> = [
        "handheld", "shaky", "shake", "shakes", "shaking", "wobble", "wobbly", "wobbling", "jitter", "jittery", "documentary",
    ]

    /// The move named at `index`, and how many tokens it used.
    private static func move(in clause: [String], at index: Int) -> (CameraMove, Int)? {
        let word = clause[index]
        if staticWords.contains(word) { return (.staticCamera, 1) }
        if (word == "still" || word == "fixed" || word == "steady") && index + 1 < clause.count && clause[index + 1] == "camera" {
            return (.staticCamera, 2)
        }
        if word == "camera" && index + 1 < clause.count && ["still", "fixed", "locked", "steady"].contains(clause[index + 1]) {
            return (.staticCamera, 2)
        }
        if word == "hand" && index + 1 < clause.count && clause[index + 1] == "held" { return (.handheld, 2) }
        if handheldWords.contains(word) { return (.handheld, 1) }
        guard let verb = verbs[word] else { return nil }
        // Look a few words ahead for a direction ("pan slowly to the left"), stopping at the next verb.
        var j = index + 1
        while j < clause.count && j <= index + 4 {
            if verbs[clause[j]] != nil { break }
            if let dir = direction(of: clause[j]), let move = verb.map[dir] { return (move, j - index + 1) }
            j += 1
        }
        return verb.fallback.map { ($0, 1) }
    }

    /// Moves vetoed by negating one named move: the whole family of the verb ("no zoom" vetoes in and out).
    private static func family(of move: CameraMove, word: String) -> Set<CameraMove> {
        if let family = vetoFamilies[word] { return family.union([move]) }
        return [move]
    }

    private static let vetoFamilies: [String: Set<CameraMove>] = {
        var f: [String: Set<CameraMove>] = [:]
        for w in ["zoom", "zooms", "zooming", "zoomed"] { f[w] = [.zoomIn, .zoomOut, .dollyIn, .dollyOut] }
        for w in ["dolly", "dollies", "dollying"] { f[w] = [.dollyIn, .dollyOut] }
        for w in ["push", "pushes", "pushing"] { f[w] = [.zoomIn, .dollyIn] }
        for w in ["pan", "pans", "panning"] { f[w] = [.panLeft, .panRight] }
        for w in ["tilt", "tilts", "tilting"] { f[w] = [.tiltUp, .tiltDown] }
        for w in ["truck", "trucking", "tracking"] { f[w] = [.truckLeft, .truckRight] }
        for w in ["pedestal", "boom"] { f[w] = [.pedestalUp, .pedestalDown] }
        for w in ["crane", "jib"] { f[w] = [.craneUp, .craneDown] }
        for w in ["roll", "rolls", "rolling", "rotation", "rotate", "rotating", "spin", "spinning", "dutch", "tilted"] {
            f[w] = [.rollLeft, .rollRight]
        }
        for w in ["orbit", "orbiting", "arc"] { f[w] = [.orbitLeft, .orbitRight] }
        for w in ["shake", "shaky", "shaking", "handheld", "jitter", "jittery", "wobble", "wobbly"] { f[w] = [.handheld] }
        return f
    }()

    // MARK: - Modifiers

    private static let moveModifiers: [String: (multiplier: Double, fast: Bool)] = {
        var m: [String: (Double, Bool)] = [:]
        for w in ["slow", "slowly", "leisurely", "unhurried"] { m[w] = (0.6, false) }
        for w in ["gentle", "gently", "subtle", "subtly", "slight", "slightly", "soft", "softly", "calm", "calmly", "barely", "tiny"] {
            m[w] = (0.55, false)
        }
        for w in ["fast", "quick", "quickly", "rapid", "rapidly", "swift", "swiftly", "whip", "sudden", "suddenly", "crash", "snap"] {
            m[w] = (1.4, true)
        }
        for w in ["dramatic", "dramatically", "dynamic", "strong", "strongly", "intense", "big", "huge", "epic", "extreme", "sweeping", "bold"] {
            m[w] = (1.6, false)
        }
        return m
    }()

    // MARK: - Framing and transitions

    private static func framing(in clause: [String], at index: Int) -> ShotFraming? {
        let word = clause[index]
        let next = index + 1 < clause.count ? clause[index + 1] : ""
        if word == "closeup" || word == "closeups" { return .closeUp }
        if word == "close" && (next == "up" || next == "shot") { return .closeUp }
        if word == "extreme" && next == "closeup" { return .closeUp }
        if (word == "medium" || word == "mid") && ["shot", "close", "framing"].contains(next) { return .medium }
        if word == "wide" && ["shot", "angle", "view", "framing"].contains(next) { return .wide }
        if word == "establishing" { return .wide }
        return nil
    }

    private static let dissolveWords: Set<String> = ["dissolve", "dissolves", "crossfade", "crossfades", "fade", "fades", "blend", "blends"]

    // MARK: - Effects

    private static let flickerWords: Set<String> = ["flicker", "flickers", "flickering", "flickery"]

    private static func effect(for word: String, in clause: [String], at index: Int) -> AmbientEffect? {
        switch word {
        case "water", "ripple", "ripples", "rippling", "rippled", "lake", "lakes", "river", "rivers", "ocean", "sea", "pond",
            "waves", "wave", "reflection", "reflections", "stream", "creek", "waterfall", "shimmering", "puddle", "puddles":
            return .waterRipple
        case "rain", "raining", "rainy", "rainfall", "drizzle", "drizzling", "downpour", "rainstorm", "raindrops":
            return .rain
        case "snow", "snowing", "snowy", "snowfall", "snowflakes", "snowflake", "blizzard", "flurries":
            return .snow
        case "fire", "fires", "flame", "flames", "candle", "candles", "candlelight", "campfire", "fireplace", "torch", "torches",
            "bonfire", "embers", "hearth":
            return .fireFlicker
        case "wind", "windy", "breeze", "breezy", "sway", "sways", "swaying", "rustle", "rustles", "rustling", "gust", "gusts",
            "gusty", "blowing", "windswept":
            return .windSway
        case "fog", "foggy", "mist", "misty", "haze", "hazy", "smoke", "smoky", "smokey", "steam", "steamy":
            return .fogDrift
        case "neon", "strobe", "strobing", "lightning", "flashing", "blinking", "flashes":
            return .lightFlicker
        default:
            if flickerWords.contains(word) {
                // "flickering candle": the flicker belongs to the fire named in the same clause.
                let fireNamed = clause.indices.contains {
                    !flickerWords.contains(clause[$0]) && effect(for: clause[$0], in: clause, at: $0) == .fireFlicker
                }
                return fireNamed ? .fireFlicker : .lightFlicker
            }
            return nil
        }
    }

    private static func effectIntensity(_ clause: [String], at index: Int, effect: AmbientEffect) -> Double {
        var intensity = 1.0
        for j in max(0, index - 2)..<index {
            switch clause[j] {
            case "heavy", "heavily", "dense", "thick", "strong", "intense", "pouring", "torrential", "raging", "roaring", "stormy", "wild":
                intensity = 1.5
            case "light", "lightly", "thin", "soft", "gentle", "faint", "slight", "subtle", "little", "calm", "wispy":
                if effect != .lightFlicker { intensity = 0.55 }
            default: break
            }
        }
        return intensity
    }

}
