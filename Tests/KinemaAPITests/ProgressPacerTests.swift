import KinemaCore
import Testing

@testable import KinemaWorker

/// The heartbeat loop's pacing (issue 16, item 4): a wake-up per crossed 10 % step, none for smaller moves, and the
/// liveness interval when nothing moves.
@Suite struct ProgressPacerTests {
    @Test func aCrossedStepIsPendingAndSmallerMovesAreNot() {
        let pacer = ProgressPacer(RenderProgress(percent: 0, etaSeconds: 9))
        pacer.record(RenderProgress(percent: 9, etaSeconds: 8))
        #expect(!pacer.stepPending)
        pacer.record(RenderProgress(percent: 10, etaSeconds: 8))
        #expect(pacer.stepPending)
        // Taking sends the latest report and measures later ones against it.
        pacer.record(RenderProgress(percent: 14, etaSeconds: 7))
        #expect(pacer.take() == RenderProgress(percent: 14, etaSeconds: 7))
        #expect(!pacer.stepPending)
        pacer.record(RenderProgress(percent: 19, etaSeconds: 6))
        #expect(!pacer.stepPending)
        pacer.record(RenderProgress(percent: 20, etaSeconds: 6))
        #expect(pacer.stepPending)
    }

    @Test func aStartingPercentIsNotAStep() {
        // A re-claimed task that starts where the store says it is does not heartbeat for that alone.
        let pacer = ProgressPacer(RenderProgress(percent: 35, etaSeconds: 9))
        pacer.record(RenderProgress(percent: 39, etaSeconds: 8))
        #expect(!pacer.stepPending)
    }

    @Test func aWaiterWakesWhenTheStepIsCrossedLongBeforeItsTimeout() async {
        let pacer = ProgressPacer(RenderProgress(percent: 0, etaSeconds: 9))
        let started = ContinuousClock.now
        async let waited: Void = pacer.waitForStep(upTo: .seconds(120))
        for percent in 1...10 {
            try? await Task.sleep(for: .milliseconds(5))
            pacer.record(RenderProgress(percent: percent, etaSeconds: 1))
        }
        await waited
        // Far under the timeout: the wake-up came from the step (this bounds a hang, not a speed).
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(pacer.take().percent == 10)
    }

    @Test func withoutProgressTheWaitEndsAtItsTimeout() async {
        let pacer = ProgressPacer(RenderProgress(percent: 0, etaSeconds: 9))
        let started = ContinuousClock.now
        pacer.record(RenderProgress(percent: 5, etaSeconds: 1))
        await pacer.waitForStep(upTo: .milliseconds(200))
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        #expect(!pacer.stepPending)
    }

    @Test func cancellingTheWaitEndsIt() async {
        let pacer = ProgressPacer(RenderProgress(percent: 0, etaSeconds: 9))
        let wait = Task { await pacer.waitForStep(upTo: .seconds(120)) }
        try? await Task.sleep(for: .milliseconds(20))
        wait.cancel()
        let started = ContinuousClock.now
        await wait.value
        #expect(ContinuousClock.now - started < .seconds(60))
    }
}
