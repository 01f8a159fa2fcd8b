import Foundation

/// A camera move from the documented vocabulary, in film convention.
///
/// "pan left" turns the camera left, so the scene slides right across the frame; "tilt up" makes the scene
/// move down; "zoom in" magnifies. Truck/pedestal are the translating twins of pan/tilt.
public enum CameraMove: String, Sendable, CaseIterable, Codable {
    /// Magnify toward the frame's focus (zoom in, push in).
    case zoomIn
    /// Widen the view, revealing a soft extension of the image (zoom out, pull back).
    case zoomOut
    /// Move the camera forward; in 2-D it magnifies like a zoom, with a slower ease.
    case dollyIn
    /// Move the camera backward; widens like a zoom out, with a slower ease.
    case dollyOut
    /// Turn the camera left: the scene moves right.
    case panLeft
    /// Turn the camera right: the scene moves left.
    case panRight
    /// Turn the camera up: the scene moves down.
    case tiltUp
    /// Turn the camera down: the scene moves up.
    case tiltDown
    /// Slide the camera left: the scene moves right, without the pan's perspective turn.
    case truckLeft
    /// Slide the camera right: the scene moves left.
    case truckRight
    /// Raise the camera: the scene moves down.
    case pedestalUp
    /// Lower the camera: the scene moves up.
    case pedestalDown
    /// Raise the camera on a crane: the scene moves down while the view widens a little.
    case craneUp
    /// Lower the camera on a crane: the scene moves up while the view tightens a little.
    case craneDown
    /// Rotate the camera counter-clockwise about the lens axis: the scene turns clockwise.
    case rollLeft
    /// Rotate the camera clockwise about the lens axis: the scene turns counter-clockwise.
    case rollRight
    /// Circle left around the subject: a truck with a growing perspective turn.
    case orbitLeft
    /// Circle right around the subject.
    case orbitRight
    /// Seeded, smooth hand-held wobble (only when asked).
    case handheld
    /// A locked-off camera: no move at all.
    case staticCamera
}

/// A procedural effect that animates part of the picture without moving the camera.
public enum AmbientEffect: String, Sendable, CaseIterable, Codable {
    /// Horizontal ripples in the lower part of the frame, where water usually is.
    case waterRipple
    /// Falling, slanted rain streaks and a slightly darker, cooler picture.
    case rain
    /// Drifting snowflakes.
    case snow
    /// Brightness flicker limited to warm, bright areas (fire, candles).
    case fireFlicker
    /// Gentle horizontal sway of the upper part of the frame (foliage in the wind).
    case windSway
    /// Soft fog banks drifting across the lower two thirds.
    case fogDrift
    /// Flicker of the whole picture's brightness (failing lights, neon, lightning).
    case lightFlicker
}

/// How a named modifier changes a move: its size and its pace.
public enum MovePace: String, Sendable, Codable {
    /// Spread over the whole shot.
    case normal
    /// Over in about half the shot, with a whoosh on the soundtrack.
    case fast
}

/// One camera directive after modifiers, cfg scaling and vetoes.
public struct MoveDirective: Sendable, Equatable, Codable {
    /// The move.
    public var move: CameraMove
    /// Size relative to the move's full-strength amount (1 = full; modifiers and cfg scale it).
    public var strength: Double
    /// Whether the move runs over the whole shot or fast over part of it.
    public var pace: MovePace

    /// Creates a directive.
    public init(move: CameraMove, strength: Double, pace: MovePace = .normal) {
        self.move = move
        self.strength = strength
        self.pace = pace
    }
}

/// One ambient effect with its intensity (1 = full).
public struct EffectDirective: Sendable, Equatable, Codable {
    /// The effect.
    public var effect: AmbientEffect
    /// Intensity relative to full strength.
    public var intensity: Double

    /// Creates an effect directive.
    public init(effect: AmbientEffect, intensity: Double) {
        self.effect = effect
        self.intensity = intensity
    }
}

/// What a prompt asks for, before any framing: the parser's output.
public struct PromptDirectives: Sendable, Equatable {
    /// Camera moves in the order they were named (empty: nothing named).
    public var moves: [MoveDirective]
    /// Ambient effects in the order they were named.
    public var effects: [EffectDirective]
    /// Moves the prompt itself negated ("no zoom") or the negative prompt named.
    public var vetoedMoves: Set<CameraMove>
    /// Effects the prompt negated or the negative prompt named.
    public var vetoedEffects: Set<AmbientEffect>
    /// The prompt asks for a dissolve into this shot ("dissolve", "cross-fade", "fade in").
    public var wantsDissolve: Bool
    /// Coverage the prompt names ("wide", "medium", "close-up"), if any.
    public var framing: ShotFraming?

    /// Creates a set of directives.
    public init(
        moves: [MoveDirective] = [], effects: [EffectDirective] = [], vetoedMoves: Set<CameraMove> = [],
        vetoedEffects: Set<AmbientEffect> = [], wantsDissolve: Bool = false, framing: ShotFraming? = nil
    ) {
        self.moves = moves
        self.effects = effects
        self.vetoedMoves = vetoedMoves
        self.vetoedEffects = vetoedEffects
        self.wantsDissolve = wantsDissolve
        self.framing = framing
    }

    /// The named move directive for `move`, if present.
    public func directive(for move: CameraMove) -> MoveDirective? { moves.first { $0.move == move } }

    /// The named effect directive for `effect`, if present.
    public func directive(for effect: AmbientEffect) -> EffectDirective? { effects.first { $0.effect == effect } }
}

/// Virtual coverage of the same image: how tight a shot frames its focus.
public enum ShotFraming: String, Sendable, Codable, CaseIterable {
    /// The whole fitted image.
    case wide
    /// About two thirds of the image around a salient region.
    case medium
    /// About two fifths of the image around a salient region.
    case closeUp

    /// Zoom of the shot's base framing relative to the fitted image.
    public var zoom: Double {
        switch self {
        case .wide: 1.0
        case .medium: 1.5
        case .closeUp: 2.4
        }
    }
}

/// How a shot begins.
public enum ShotTransition: Sendable, Equatable, Codable {
    /// The first shot of the clip.
    case none
    /// A hard cut at the boundary frame.
    case cut
    /// A cross-dissolve from the previous shot's last framing over this many frames.
    case dissolve(frames: Int)
}

/// One planned shot: its frames, camera path and effects.
public struct PlannedShot: Sendable {
    /// Index of this shot's first frame in the clip.
    public var firstFrame: Int
    /// Number of frames in the shot.
    public var frameCount: Int
    /// The parsed directives (after vetoes) for this shot.
    public var directives: PromptDirectives
    /// The coverage this shot uses.
    public var framing: ShotFraming
    /// The camera path over the shot (on the first image).
    public var path: CameraPath
    /// The effects that run in this shot.
    public var effects: [EffectDirective]
    /// How the shot begins.
    public var transition: ShotTransition
    /// Whether the shot travels to the end image (the last shot of a request with one).
    public var travelsToEndImage: Bool
}

/// A picture-synchronised cue for the soundtrack, produced from the plan.
public struct PlannedCue: Sendable, Equatable {
    /// Seconds from the start of the clip.
    public var time: Double
    /// Whether the cue is a cut (else a whoosh of `intensity`).
    public var isCut: Bool
    /// 0…1 for whooshes.
    public var intensity: Double
}

/// The whole clip: shots in order, covering exactly the request's frame count.
public struct ShotPlan: Sendable {
    /// Output aspect ratio (width / height) the paths were planned for.
    public var aspect: Double
    /// Shots in order; their frame ranges tile `0..<frameCount`.
    public var shots: [PlannedShot]
    /// The end image's framing on the first image (identity when unaligned), if there is an end image.
    public var endFraming: CameraPose?
    /// Seed for every random choice of the render.
    public var seed: UInt32

    /// Total number of frames.
    public var frameCount: Int { shots.last.map { $0.firstFrame + $0.frameCount } ?? 0 }

    /// The shot that contains frame `index`.
    public func shotIndex(containing index: Int) -> Int {
        var lo = 0
        var hi = shots.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if shots[mid].firstFrame <= index { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Sound cues from the picture: whooshes on fast moves, cuts at hard shot boundaries.
    public var cues: [PlannedCue] {
        var cues: [PlannedCue] = []
        let fps = Double(FramePlanConstants.framesPerSecond)
        for shot in shots {
            let start = Double(shot.firstFrame) / fps
            if case .cut = shot.transition { cues.append(PlannedCue(time: start, isCut: true, intensity: 1)) }
            if case .dissolve = shot.transition {
                cues.append(PlannedCue(time: start, isCut: false, intensity: 0.35))
            }
            for move in shot.directives.moves where move.pace == .fast && move.move != .handheld && move.move != .staticCamera {
                let peak = start + Double(shot.frameCount) / fps * CameraPath.fastWindow * 0.5
                cues.append(PlannedCue(time: peak, isCut: false, intensity: min(1, 0.5 + 0.35 * move.strength)))
            }
        }
        return cues.sorted { $0.time < $1.time }
    }
}

/// Constants shared by the planner and the renderer.
enum FramePlanConstants {
    static let framesPerSecond = 24
    /// Effects fade in over this many seconds so the first frame is the image itself.
    static let effectFadeSeconds = 0.6
}
