import Foundation
import Testing
import KinemaCore
import KinemaMotion

@Suite struct CameraPathTests {
    static let prompts = [
        "pan left", "pan right", "tilt up", "tilt down", "zoom in", "truck left", "pedestal up", "crane down", "roll left",
        "roll right", "orbit right", "dramatic orbit left", "handheld", "handheld zoom in", "fast pan right", "dramatic roll right and pan left",
        "a quiet street",
    ]

    func path(_ prompt: String, cfg: Double = 1, aspect: Double = 16.0 / 9.0, seconds: Int = 5) -> CameraPath {
        ShotPlanner.plan(
            request: GenerationRequest(prompt: prompt, duration: seconds, cfgScale: cfg, seed: 42), aspect: aspect,
            salient: [SalientPoint(x: 0.9, y: 0.1, weight: 1)]
        ).shots[0].path
    }

    @Test(arguments: prompts)
    func viewNeverLeavesTheImage(prompt: String) {
        for aspect in [16.0 / 9.0, 9.0 / 16.0, 1.0, 2.5] {
            let p = path(prompt, aspect: aspect)
            #expect(p.margin == 0)
            for i in 0...240 {
                let pose = p.pose(at: Double(i) / 240)
                #expect(pose.isInside(aspect: aspect), "\(prompt) @\(aspect) t=\(Double(i) / 240): \(pose)")
            }
        }
    }

    @Test func pullBackStaysWithinItsSoftExtension() {
        for prompt in ["zoom out", "pull back and roll left", "dramatic zoom out, pan right"] {
            let p = path(prompt)
            #expect(p.margin > 0)
            for i in 0...120 { #expect(p.pose(at: Double(i) / 120).isInside(aspect: 16.0 / 9.0, margin: p.margin), "\(prompt)") }
        }
    }

    @Test(arguments: prompts)
    func motionIsContinuousWithoutJumps(prompt: String) {
        let p = path(prompt)
        let n = 120
        var previous = p.pose(at: 0)
        var largest = 0.0
        for i in 1...n {
            let pose = p.pose(at: Double(i) / Double(n))
            let step = max(
                abs(pose.centerX - previous.centerX), abs(pose.centerY - previous.centerY),
                abs(log(pose.zoom / previous.zoom)), abs(pose.roll - previous.roll))
            largest = max(largest, step)
            previous = pose
        }
        // The biggest per-frame change stays a small fraction of the frame (no jumps).
        #expect(largest < 0.012, "\(prompt): \(largest)")
    }

    @Test func easingStartsAndEndsAtRest() {
        let p = path("pan right")
        let n = 120.0
        let firstStep = abs(p.pose(at: 1 / n).centerX - p.pose(at: 0).centerX)
        let middleStep = abs(p.pose(at: 0.5 + 1 / n).centerX - p.pose(at: 0.5).centerX)
        let lastStep = abs(p.pose(at: 1).centerX - p.pose(at: 1 - 1 / n).centerX)
        #expect(firstStep < middleStep * 0.05)
        #expect(lastStep < middleStep * 0.05)
        #expect(p.progress(at: 0) == 0 && p.progress(at: 1) == 1)
    }

    @Test func noJitterUnlessHandheldIsAsked() {
        // Without handheld the second difference (acceleration) of the centre is tiny and smooth.
        let smooth = path("pan right")
        let shaky = path("handheld pan right")
        func roughness(_ p: CameraPath) -> Double {
            var total = 0.0
            for i in 1..<119 {
                let a = p.pose(at: Double(i - 1) / 119).centerY, b = p.pose(at: Double(i) / 119).centerY, c = p.pose(at: Double(i + 1) / 119).centerY
                total += abs(a - 2 * b + c)
            }
            return total
        }
        #expect(roughness(smooth) < 1e-9)
        #expect(roughness(shaky) > 1e-5)
    }

    @Test func handheldIsSeeded() {
        let a = path("handheld"), b = path("handheld")
        #expect(a.pose(at: 0.5) == b.pose(at: 0.5))
        let other = ShotPlanner.plan(request: GenerationRequest(prompt: "handheld", seed: 43), aspect: 16.0 / 9.0, salient: []).shots[0].path
        #expect(other.pose(at: 0.5) != a.pose(at: 0.5))
    }
}
