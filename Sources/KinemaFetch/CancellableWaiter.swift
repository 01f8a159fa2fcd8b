import Synchronization

/// Resumes a continuation exactly once, from whichever comes first: the work's result or cancellation.
final class CancellableWaiter<Value: Sendable>: Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Value, any Error>)
        case cancelledEarly
        case finished
    }

    private let state = Mutex<State>(.idle)

    func install(_ continuation: CheckedContinuation<Value, any Error>) {
        let resumeNow = state.withLock { state -> Bool in
            switch state {
            case .idle:
                state = .waiting(continuation)
                return false
            case .cancelledEarly, .finished:
                return true
            case .waiting:
                preconditionFailure("a continuation is already installed")
            }
        }
        if resumeNow { continuation.resume(throwing: CancellationError()) }
    }

    func resume(returning value: Value) {
        take(orMarkCancelled: false)?.resume(returning: value)
    }

    func resume(throwing error: any Error) {
        take(orMarkCancelled: true)?.resume(throwing: error)
    }

    private func take(orMarkCancelled: Bool) -> CheckedContinuation<Value, any Error>? {
        state.withLock { state in
            switch state {
            case .waiting(let continuation):
                state = .finished
                return continuation
            case .idle:
                if orMarkCancelled { state = .cancelledEarly }
                return nil
            case .cancelledEarly, .finished:
                return nil
            }
        }
    }
}
