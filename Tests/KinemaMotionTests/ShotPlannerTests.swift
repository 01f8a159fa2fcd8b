import Testing
import KinemaCore
import KinemaMotion

@Suite struct ShotPlannerTests {
    let aspect = 16.0 / 9.0
    let centre = [SalientPoint(x: 0.5, y: 0.5, weight: 1)]

    func plan(
        _ prompt: String?, negative: String? = nil, cfg: Double = 0.5, duration: Int = 5, shots: [Shot]? = nil,
        salient: [SalientPoint]? = nil, end: CameraPose? = nil
    ) -> ShotPlan {
        ShotPlanner.plan(
            request: GenerationRequest(prompt: prompt, negativePrompt: negative, duration: duration, cfgScale: cfg, shots: shots, seed: 9),
            aspect: aspect, salient: salient ?? centre, endFraming: end)
    }

    func lastPose(_ p: ShotPlan) -> CameraPose { p.shots.last!.path.pose(at: 1) }

    @Test func framesTileTheClip() {
        let p = plan(
            nil, duration: 12,
            shots: [Shot(prompt: "wide", duration: 3), Shot(prompt: "zoom in", duration: 4), Shot(prompt: "pan left", duration: 5)])
        #expect(p.frameCount == 12 * 24)
        #expect(p.shots.map(\.firstFrame) == [0, 72, 168])
        #expect(p.shots.map(\.frameCount) == [72, 96, 120])
        #expect(p.shotIndex(containing: 71) == 0 && p.shotIndex(containing: 72) == 1 && p.shotIndex(containing: 287) == 2)
    }

    @Test func singleShotStartsAtIdentity() {
        for prompt in ["pan left", "zoom out", "roll right", "orbit left", "handheld", "crane up", "", "tilt down fast"] {
            #expect(plan(prompt).shots[0].path.pose(at: 0) == .identity, "\(prompt)")
        }
    }

    @Test func filmConventionDirections() {
        #expect(lastPose(plan("pan left")).centerX < 0.5) // the view moves left, the scene right
        #expect(lastPose(plan("pan right")).centerX > 0.5)
        #expect(lastPose(plan("tilt up")).centerY < 0.5) // the view moves up, the scene down
        #expect(lastPose(plan("tilt down")).centerY > 0.5)
        #expect(lastPose(plan("zoom in")).zoom > 1.2)
        #expect(lastPose(plan("zoom out")).zoom < 0.9)
        #expect(lastPose(plan("pedestal up")).centerY < 0.5)
        #expect(lastPose(plan("truck right")).centerX > 0.5)
        #expect(lastPose(plan("roll right")).roll > 0)
    }

    @Test func defaultIsGentlePushTowardSaliency() {
        let p = plan("a portrait", salient: [SalientPoint(x: 0.8, y: 0.3, weight: 1)])
        let end = lastPose(p)
        #expect(end.zoom > 1.05 && end.zoom < 1.25)
        #expect(end.centerX > 0.5 && end.centerY < 0.5)
    }

    @Test func staticCameraHoldsIdentity() {
        let p = plan("static shot, locked-off")
        for t in stride(from: 0.0, through: 1.0, by: 0.1) { #expect(p.shots[0].path.pose(at: t) == .identity) }
    }

    @Test func cfgScalesAdherence() {
        let low = lastPose(plan("zoom in", cfg: 0)).zoom, high = lastPose(plan("zoom in", cfg: 1)).zoom
        #expect(high > low * 1.15)
        let panLow = abs(lastPose(plan("pan right", cfg: 0)).centerX - 0.5), panHigh = abs(lastPose(plan("pan right", cfg: 1)).centerX - 0.5)
        #expect(panHigh > panLow * 2)
        // The engine's own default motion does not depend on cfg.
        #expect(lastPose(plan("a lake", cfg: 0)) == lastPose(plan("a lake", cfg: 1)))
    }

    @Test func modifiersChangeTheAmount() {
        #expect(lastPose(plan("slow zoom in")).zoom < lastPose(plan("zoom in")).zoom)
        #expect(lastPose(plan("dramatic zoom in")).zoom > lastPose(plan("zoom in")).zoom)
        // A fast move is finished early in the shot.
        let fast = plan("fast pan left").shots[0].path
        #expect(abs(fast.pose(at: 0.6).centerX - fast.pose(at: 1).centerX) < 1e-9)
    }

    @Test func negativePromptVetoesNamedMoves() {
        let p = plan("zoom in slowly", negative: "zoom")
        #expect(p.shots[0].directives.moves.isEmpty)
        for t in stride(from: 0.0, through: 1.0, by: 0.25) { #expect(p.shots[0].path.pose(at: t).zoom == 1) }
        let shake = plan("handheld pan left", negative: "camera shake")
        #expect(shake.shots[0].path.handheld == 0)
        #expect(lastPose(shake).centerX < 0.5)
        let flicker = plan("candle flickering, rain", negative: "flicker")
        #expect(flicker.shots[0].effects.map(\.effect) == [.rain])
    }

    @Test func effectsScaleWithCfg() {
        let low = plan("fog", cfg: 0).shots[0].effects[0].intensity, high = plan("fog", cfg: 1).shots[0].effects[0].intensity
        #expect(high > low * 2)
    }

    @Test func multiShotCoverageAndTransitions() {
        let p = plan(
            nil, duration: 9,
            shots: [
                Shot(prompt: "the bay", duration: 3), Shot(prompt: "the boat", duration: 3),
                Shot(prompt: "slow dissolve to the harbour", duration: 3),
            ],
            salient: [SalientPoint(x: 0.3, y: 0.4, weight: 1), SalientPoint(x: 0.7, y: 0.6, weight: 0.8)])
        #expect(p.shots.map(\.framing) == [.wide, .medium, .closeUp])
        #expect(p.shots[0].transition == .none && p.shots[1].transition == .cut)
        #expect(p.shots[2].transition == .dissolve(frames: 12))
        #expect(p.shots[0].path.pose(at: 0) == .identity)
        #expect(p.shots[1].path.pose(at: 0).zoom > 1.4)
        #expect(p.cues.contains { $0.isCut && abs($0.time - 3) < 1e-9 })
    }

    @Test func fastMovesAndCutsBecomeSoundCues() {
        let p = plan("whip pan right")
        #expect(p.cues.count == 1 && !p.cues[0].isCut && p.cues[0].intensity > 0.5)
        #expect(plan("slow pan right").cues.isEmpty)
    }

    @Test func endImageShotEndsOnTheEndFraming() {
        let target = CameraPose(centerX: 0.55, centerY: 0.45, zoom: 1.3)
        let p = plan("dissolve to the end", end: target)
        let end = lastPose(p)
        #expect(abs(end.centerX - 0.55) < 1e-9 && abs(end.centerY - 0.45) < 1e-9 && abs(end.zoom - 1.3) < 1e-9)
        #expect(p.shots[0].path.pose(at: 0) == .identity)
        #expect(p.shots[0].travelsToEndImage)
    }
}
