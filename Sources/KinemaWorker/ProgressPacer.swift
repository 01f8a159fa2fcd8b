import KinemaCore
import Synchronization

/// Paces a running task's heartbeats: one every `heartbeatInterval` keeps the lease, and one more each time the
/// render's progress crosses another `step` percent, at most one per `minimumSpacing` — so a client watching a
/// short render sees it move in steps of about 10 % instead of jumping from 0 to 75 to 100, and a long render
/// costs no more heartbeats than ten (issue 16). The engine reports through `record`; the heartbeat loop waits with
/// `waitForStep(upTo:)` and sends what `take()` returns.
final class ProgressPacer: Sendable {
    /// Percent between progress heartbeats.
    static let step = 10
    /// Least time between two heartbeats sent for progress.
    static let minimumSpacing: Duration = .milliseconds(250)

    private struct State {
        /// The engine's latest report.
        var progress: RenderProgress
        /// `progress.percent / step` when a heartbeat last took it.
        var sentStep: Int
        /// Fired when the progress crosses the next step; replaced by `take()`.
        var stepCrossed = OneShot()
    }

    private let state: Mutex<State>

    /// A pacer starting at `progress` (already known to the store, so it does not count as a step).
    init(_ progress: RenderProgress) {
        state = Mutex(State(progress: progress, sentStep: progress.percent / Self.step))
    }

    /// The engine's report; wakes the heartbeat loop when it crosses a step.
    func record(_ progress: RenderProgress) {
        let crossed = state.withLock { state -> OneShot? in
            state.progress = progress
            return progress.percent / Self.step > state.sentStep ? state.stepCrossed : nil
        }
        crossed?.fire()
    }

    /// The latest report, to send now: later reports are measured against it.
    func take() -> RenderProgress {
        state.withLock { state in
            state.sentStep = state.progress.percent / Self.step
            if state.stepCrossed.fired { state.stepCrossed = OneShot() }
            return state.progress
        }
    }

    /// Whether the progress crossed a step since the last `take()`.
    var stepPending: Bool { state.withLock { $0.progress.percent / Self.step > $0.sentStep } }

    /// Returns once the progress crossed a step since the last `take()`, `timeout` passed, or the task is cancelled.
    func waitForStep(upTo timeout: Duration) async {
        guard timeout > .zero, !stepPending else { return }
        let crossed = state.withLock { $0.stepCrossed }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await crossed.wait() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}
