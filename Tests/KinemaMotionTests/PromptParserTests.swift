import Testing
import KinemaMotion

@Suite struct PromptParserTests {
    @Test(arguments: [
        ("the camera pans left across the valley", CameraMove.panLeft),
        ("pan to the right", .panRight),
        ("slow tilt up to the sky", .tiltUp),
        ("tilts down", .tiltDown),
        ("zoom in on the face", .zoomIn),
        ("push-in toward the door", .zoomIn),
        ("zoom out to reveal the city", .zoomOut),
        ("pull back", .zoomOut),
        ("dolly in", .dollyIn),
        ("dolly out", .dollyOut),
        ("truck left along the street", .truckLeft),
        ("tracking shot", .truckRight),
        ("pedestal down", .pedestalDown),
        ("crane up over the rooftops", .craneUp),
        ("camera rolls clockwise", .rollRight),
        ("roll left", .rollLeft),
        ("orbit around the statue", .orbitRight),
        ("arc left around her", .orbitLeft),
        ("handheld shot", .handheld),
        ("shaky camera", .handheld),
        ("static shot of a lake", .staticCamera),
        ("locked-off camera", .staticCamera),
    ])
    func vocabularyNamesEachMove(prompt: String, move: CameraMove) {
        let d = PromptParser.parse(prompt)
        #expect(d.moves.map(\.move).contains(move), "\(prompt) → \(d.moves)")
    }

    @Test(arguments: [
        ("ripples on the lake", AmbientEffect.waterRipple),
        ("heavy rain", .rain),
        ("snow falling", .snow),
        ("a flickering candle", .fireFlicker),
        ("campfire at night", .fireFlicker),
        ("trees swaying in the wind", .windSway),
        ("morning fog", .fogDrift),
        ("neon sign", .lightFlicker),
        ("flickering lights in the hallway", .lightFlicker),
    ])
    func vocabularyNamesEachEffect(prompt: String, effect: AmbientEffect) {
        #expect(PromptParser.parse(prompt).effects.map(\.effect).contains(effect), "\(prompt)")
    }

    @Test func subjectsRisingAreNotCameraMoves() {
        #expect(PromptParser.parse("the sun rises over rolling hills").moves.isEmpty)
        #expect(PromptParser.parse("a truck drives by").moves.isEmpty)
    }

    @Test func modifiersScaleTheirOwnClause() {
        let d = PromptParser.parse("slow pan left, then a fast zoom in")
        let pan = try! #require(d.directive(for: .panLeft))
        let zoom = try! #require(d.directive(for: .zoomIn))
        #expect(pan.strength < 1 && pan.pace == .normal)
        #expect(zoom.strength > 1 && zoom.pace == .fast)
        #expect(
            PromptParser.parse("dramatic zoom in").directive(for: .zoomIn)!.strength > PromptParser.parse("zoom in").directive(for: .zoomIn)!.strength
        )
        #expect(PromptParser.parse("gentle zoom in").directive(for: .zoomIn)!.strength < 1)
    }

    @Test func modifierInItsOwnClauseAppliesToUnmodifiedMoves() {
        let d = PromptParser.parse("slowly, the camera pans right")
        #expect(d.directive(for: .panRight)!.strength < 1)
    }

    @Test func effectAdjectivesScaleIntensity() {
        #expect(PromptParser.parse("heavy rain").directive(for: .rain)!.intensity > PromptParser.parse("light rain").directive(for: .rain)!.intensity)
    }

    @Test func negationInsideThePromptVetoes() {
        let d = PromptParser.parse("a quiet lake, no zoom, without camera shake")
        #expect(d.moves.isEmpty)
        #expect(d.vetoedMoves.isSuperset(of: [.zoomIn, .zoomOut, .handheld]))
        let dontPan = PromptParser.parse("don't pan, zoom in")
        #expect(dontPan.moves.map(\.move) == [.zoomIn] && dontPan.vetoedMoves.isSuperset(of: [.panLeft, .panRight]))
        #expect(PromptParser.parse("rain but no fog").vetoedEffects == [.fogDrift])
    }

    @Test func negativePromptVetoesFamilies() {
        let v = PromptParser.vetoes(in: "zoom, camera shake, flicker, rain")
        #expect(v.moves.isSuperset(of: [.zoomIn, .zoomOut, .dollyIn, .dollyOut, .handheld]))
        #expect(v.effects.isSuperset(of: [.fireFlicker, .lightFlicker, .rain]))
        #expect(!v.moves.contains(.panLeft))
        let all = PromptParser.vetoes(in: "camera movement")
        #expect(all.moves.contains(.panLeft) && all.moves.contains(.zoomIn) && !all.moves.contains(.staticCamera))
    }

    @Test func framingAndDissolveWords() {
        #expect(PromptParser.parse("close-up of the eyes").framing == .closeUp)
        #expect(PromptParser.parse("wide shot of the bay").framing == .wide)
        #expect(PromptParser.parse("medium shot, dissolve").wantsDissolve)
        #expect(PromptParser.parse("medium shot").framing == .medium)
    }
}
