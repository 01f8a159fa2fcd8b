import Foundation
import KinemaCore

/// Turns a validated request into a `ShotPlan` (pure: no pixels, no I/O).
///
/// Amounts below are at full strength for a 5-second shot; longer shots move a little further (by the square
/// root of their length, capped), modifiers multiply them, and `cfg_scale` blends from subtle (0.3× at 0) to
/// full (1× at 1). The no-directive default (a gentle push-in toward the most salient point) ignores cfg: it is
/// the engine's own "natural" motion.
public enum ShotPlanner {
    /// Full-strength amounts per move (log-zoom, view shift in image units, radians, keystone).
    enum Amount {
        static let zoomIn = 0.35, dollyIn = 0.30, zoomOut = 0.22, dollyOut = 0.20
        static let pan = 0.11, tilt = 0.10, truck = 0.11, pedestal = 0.10, crane = 0.12, craneZoom = 0.06
        static let roll = 0.07, orbitShift = 0.09, orbitYaw = 0.10, orbitRoll = 0.012
        static let defaultPush = 0.12, defaultPull = 0.6
        /// Pans into the soft extension when zoom is vetoed are kept small.
        static let vetoedZoomPanLimit = 0.06
    }

    /// How strongly named directives are followed at a given cfg_scale (0.3 at 0 … 1 at 1).
    public static func adherence(cfgScale: Double) -> Double { 0.3 + 0.7 * cfgScale }

    /// Effect intensity factor at a given cfg_scale (0.4 at 0 … 1 at 1).
    public static func effectAdherence(cfgScale: Double) -> Double { 0.4 + 0.6 * cfgScale }

    /// Parses one shot's text with the request's negative prompt and cfg applied.
    public static func directives(prompt: String, negativePrompt: String?, cfgScale: Double) -> PromptDirectives {
        var d = PromptParser.parse(prompt)
        if let negative = negativePrompt {
            let veto = PromptParser.vetoes(in: negative)
            d.vetoedMoves.formUnion(veto.moves)
            d.vetoedEffects.formUnion(veto.effects)
            d.moves.removeAll { veto.moves.contains($0.move) }
            d.effects.removeAll { veto.effects.contains($0.effect) }
        }
        let a = adherence(cfgScale: cfgScale), ea = effectAdherence(cfgScale: cfgScale)
        for i in d.moves.indices { d.moves[i].strength *= a }
        for i in d.effects.indices { d.effects[i].intensity *= ea }
        return d
    }

    /// Plans the clip.
    ///
    /// - Parameters:
    ///   - request: the validated request (shots, durations, cfg, seed…).
    ///   - aspect: output width / height.
    ///   - salient: salient points of the first image, strongest first (at least one).
    ///   - endFraming: where the end image sits on the first image (identity when unaligned), if there is one.
    public static func plan(
        request: GenerationRequest, aspect: Double, salient: [SalientPoint], endFraming: CameraPose? = nil
    ) -> ShotPlan {
        let salient = salient.isEmpty ? [SalientPoint(x: 0.5, y: 0.5, weight: 1)] : salient
        let fps = GenerationRequest.framesPerSecond
        let entries = request.clips
        let globalEffects =
            request.shots != nil
            ? directives(prompt: request.prompt ?? "", negativePrompt: request.negativePrompt, cfgScale: request.cfgScale).effects
            : []
        var shots: [PlannedShot] = []
        var first = 0
        var previousFraming: ShotFraming?
        var closeFocus = 0
        for (index, entry) in entries.enumerated() {
            let count = entry.seconds * fps
            let d = directives(prompt: entry.prompt, negativePrompt: request.negativePrompt, cfgScale: request.cfgScale)
            let framing = chooseFraming(index: index, named: d.framing, previous: previousFraming)
            var focus = SalientPoint(x: 0.5, y: 0.5, weight: 1)
            if framing != .wide {
                focus = salient[closeFocus % salient.count]
                closeFocus += 1
            }
            let base = CameraPath.realize(
                CameraPath.key(for: CameraPose(centerX: focus.x, centerY: focus.y, zoom: framing.zoom), aspect: aspect, margin: 0),
                aspect: aspect, margin: 0, offset: (0, 0))
            let isLast = index == entries.count - 1
            let travels = isLast && endFraming != nil
            let shotSeed = UInt32(truncatingIfNeeded: SeededNoise(seed: request.seed).hash(0x5107, index))
            let path: CameraPath
            if travels, let target = endFraming {
                path = endImagePath(from: base, to: target, directives: d, aspect: aspect, seconds: Double(entry.seconds), seed: shotSeed)
            } else {
                path = movePath(from: base, directives: d, salient: salient[0], aspect: aspect, seconds: Double(entry.seconds), seed: shotSeed)
            }
            var effects = d.effects
            for e in globalEffects where !effects.contains(where: { $0.effect == e.effect }) { effects.append(e) }
            let transition: ShotTransition = index == 0 ? .none : (d.wantsDissolve ? .dissolve(frames: min(12, count / 3)) : .cut)
            shots.append(
                PlannedShot(
                    firstFrame: first, frameCount: count, directives: d, framing: framing, path: path, effects: effects,
                    transition: transition, travelsToEndImage: travels))
            first += count
            previousFraming = framing
        }
        return ShotPlan(aspect: aspect, shots: shots, endFraming: endFraming, seed: request.seed)
    }

    /// Wide first, then alternate medium and close-up; a named framing wins unless it repeats the previous shot's
    /// wide (two wides in a row would make the cut invisible, so the second becomes medium).
    static func chooseFraming(index: Int, named: ShotFraming?, previous: ShotFraming?) -> ShotFraming {
        if let named, !(named == .wide && previous == .wide) { return named }
        if index == 0 { return .wide }
        switch previous {
        case .wide?: return .medium
        case .medium?: return .closeUp
        default: return .medium
        }
    }

    /// The camera path for a shot's named moves (or the default push-in) from its base framing.
    static func movePath(
        from base: CameraPose, directives d: PromptDirectives, salient: SalientPoint, aspect: Double, seconds: Double, seed: UInt32
    ) -> CameraPath {
        let lengthFactor = min(1.6, max(0.8, (seconds / 5).squareRoot()))
        var logZoom = 0.0, dx = 0.0, dy = 0.0, roll = 0.0, yaw = 0.0, pitch = 0.0, handheld = 0.0
        var dolly = false, fast = false
        var target = (x: base.centerX, y: base.centerY)
        let zoomVetoed = d.vetoedMoves.contains(.zoomIn) && d.vetoedMoves.contains(.zoomOut)
        let named = d.moves.filter { $0.move != .handheld && $0.move != .staticCamera }
        for m in d.moves {
            let s = m.strength * (m.move == .handheld ? 1 : lengthFactor)
            if m.pace == .fast && m.move != .handheld { fast = true }
            switch m.move {
            case .zoomIn: logZoom += Amount.zoomIn * s
            case .dollyIn: logZoom += Amount.dollyIn * s; dolly = true
            case .zoomOut: logZoom -= Amount.zoomOut * s
            case .dollyOut: logZoom -= Amount.dollyOut * s; dolly = true
            // In 2-D a pan looks like a truck; a keystone would hint at the turn but costs the renderer its fast
            // axis-aligned path on the most common moves, so pans and tilts stay flat (orbit carries the perspective).
            case .panLeft: dx -= Amount.pan * s
            case .panRight: dx += Amount.pan * s
            case .tiltUp: dy -= Amount.tilt * s
            case .tiltDown: dy += Amount.tilt * s
            case .truckLeft: dx -= Amount.truck * s
            case .truckRight: dx += Amount.truck * s
            case .pedestalUp: dy -= Amount.pedestal * s
            case .pedestalDown: dy += Amount.pedestal * s
            case .craneUp: dy -= Amount.crane * s; logZoom -= Amount.craneZoom * s
            case .craneDown: dy += Amount.crane * s; logZoom += Amount.craneZoom * s
            case .rollLeft: roll -= Amount.roll * s
            case .rollRight: roll += Amount.roll * s
            case .orbitLeft: dx -= Amount.orbitShift * s; yaw -= Amount.orbitYaw * s; roll -= Amount.orbitRoll * s
            case .orbitRight: dx += Amount.orbitShift * s; yaw += Amount.orbitYaw * s; roll += Amount.orbitRoll * s
            case .handheld: handheld = max(handheld, min(1.5, m.strength))
            case .staticCamera: break
            }
        }
        let isStatic = d.moves.contains { $0.move == .staticCamera }
        if named.isEmpty && !isStatic && handheld == 0 {
            // The engine's own motion: a gentle push toward the most salient region, unless zoom is vetoed.
            if !d.vetoedMoves.contains(.zoomIn) {
                logZoom = Amount.defaultPush * lengthFactor
                target = (
                    base.centerX + Amount.defaultPull * (salient.x - base.centerX),
                    base.centerY + Amount.defaultPull * (salient.y - base.centerY)
                )
            }
        }
        var margin = 0.0
        let shift = max(abs(dx), abs(dy))
        if zoomVetoed || d.vetoedMoves.contains(.zoomIn) {
            // No zoom allowed: translate at constant zoom into the soft extension, a short way.
            let limit = Amount.vetoedZoomPanLimit
            dx = min(limit, max(-limit, dx)); dy = min(limit, max(-limit, dy))
            logZoom = min(0, logZoom)
            yaw = 0; pitch = 0
            margin = max(abs(dx), abs(dy)) + abs(roll) * max(aspect, 1 / aspect) * 0.5 + 0.01
        } else if logZoom < 0 {
            // Zooming out reveals the soft extension; let pans use it too.
            margin = 0.5 * (exp(-logZoom) - 1) * (1 + max(aspect, 1 / aspect) * abs(roll) + abs(yaw) + abs(pitch)) + shift + 0.01
        } else if shift > 0 {
            logZoom += log(1 / (1 - 2 * min(0.3, shift)))
        }
        if margin == 0 {
            // Room for rotation and keystone so the minimum-zoom guard rarely has to step in.
            logZoom += max(aspect, 1 / aspect) * abs(roll) + abs(yaw) + abs(pitch)
        }
        target.x += dx
        target.y += dy
        let end = CameraPose(
            centerX: target.x, centerY: target.y, zoom: base.zoom * exp(logZoom),
            roll: base.roll + roll, yaw: base.yaw + yaw, pitch: base.pitch + pitch)
        let easing: CameraPath.Easing = fast ? .fast : (dolly ? .easeIn : .inOut)
        return CameraPath(
            from: base, to: end, aspect: aspect, margin: margin, easing: easing, handheld: handheld, duration: seconds, seed: seed)
    }

    /// The last shot of a request with an end image travels from its framing to the end image's framing.
    static func endImagePath(
        from base: CameraPose, to target: CameraPose, directives d: PromptDirectives, aspect: Double, seconds: Double, seed: UInt32
    ) -> CameraPath {
        var margin = 0.0
        for (du, dv) in [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5), (0.5, 0.5)] {
            let p = target.viewMap(aspect: aspect).apply(du: du, dv: dv)
            margin = max(margin, -p.u, p.u - 1, -p.v, p.v - 1)
        }
        let handheld = d.directive(for: .handheld).map { min(1.5, $0.strength) } ?? 0
        return CameraPath(
            from: base, to: target, aspect: aspect, margin: margin > 0 ? margin + 0.005 : 0, easing: .inOut,
            handheld: handheld, duration: seconds, seed: seed)
    }
}
