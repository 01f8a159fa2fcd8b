import Foundation
import Synchronization
import KinemaMedia

/// A cancellation flag shared between an async caller and the threads doing blocking work.
final class CancellationFlag: Sendable {
    private let state = Atomic<Bool>(false)
    /// Asks the work to stop at its next check.
    func cancel() { state.store(true, ordering: .relaxed) }
    /// Whether cancellation was asked.
    var isCancelled: Bool { state.load(ordering: .relaxed) }
}

/// Renders frames on several dedicated threads while the calling thread consumes them strictly in order.
///
/// At most `capacity` frames exist at once (rendered but not yet consumed, or being rendered): a render thread
/// waits before claiming a frame too far ahead of the consumer, so memory stays flat however long the clip.
/// Frames are independent (`render(index)` is pure), so the order in which threads finish does not matter.
final class RenderPipeline: @unchecked Sendable {
    // SAFETY: every mutable field below is read and written only while holding `condition`.
    private let condition = NSCondition()
    private var nextToClaim = 0
    private var nextToConsume = 0
    private var ready: [Int: YUVFrame] = [:]
    private var stopped = false
    private var runningThreads = 0

    let total: Int
    let threads: Int
    let capacity: Int

    init(total: Int, threads: Int) {
        self.total = total
        self.threads = max(1, threads)
        capacity = max(4, 2 * self.threads + 2)
    }

    /// Runs the pipeline on the calling thread: `consume` gets frames 0, 1, 2… in order.
    ///
    /// Stops early (and rethrows) if `consume` throws; stops with `MotionError.cancelled` when `flag` is set.
    func run(
        flag: CancellationFlag, render: @escaping @Sendable (Int) -> YUVFrame, consume: (Int, YUVFrame) throws -> Void
    ) throws {
        condition.lock()
        runningThreads = threads
        condition.unlock()
        for k in 0..<threads {
            let thread = Thread { [self] in
                renderLoop(flag: flag, render: render)
            }
            thread.name = "kinema-render-\(k)"
            thread.start()
        }
        defer {
            condition.lock()
            stopped = true
            condition.broadcast()
            while runningThreads > 0 { condition.wait() }
            ready.removeAll()
            condition.unlock()
        }
        for index in 0..<total {
            condition.lock()
            while ready[index] == nil && !flag.isCancelled {
                // A timed wait so cancellation is noticed even if every render thread is busy.
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
            }
            if flag.isCancelled {
                condition.unlock()
                throw MotionError(code: .cancelled, message: "the render was cancelled")
            }
            let frame = ready.removeValue(forKey: index)!
            nextToConsume = index + 1
            condition.broadcast()
            condition.unlock()
            try consume(index, frame)
        }
    }

    private func renderLoop(flag: CancellationFlag, render: @Sendable (Int) -> YUVFrame) {
        while true {
            condition.lock()
            while !stopped && !flag.isCancelled && nextToClaim < total && nextToClaim - nextToConsume >= capacity {
                condition.wait()
            }
            if stopped || flag.isCancelled || nextToClaim >= total {
                runningThreads -= 1
                condition.broadcast()
                condition.unlock()
                return
            }
            let index = nextToClaim
            nextToClaim += 1
            condition.unlock()

            let frame = render(index)

            condition.lock()
            ready[index] = frame
            condition.broadcast()
            condition.unlock()
        }
    }
}
