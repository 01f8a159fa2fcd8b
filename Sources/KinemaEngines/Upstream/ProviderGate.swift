import Foundation
import KinemaCore
import Logging

/// Pauses one provider for every task while it refuses the account (bad credentials, no balance): workers wait here
/// before claiming, so tasks stay queued rather than fail, and one of them is let through every `probeInterval` to
/// try again. The first success resumes everyone. The pause shows on `/readyz` (through the status board) and in one
/// error-level log line per pause.
actor ProviderGate {
    let provider: String
    let board: EngineStatusBoard
    let logger: Logger
    let probeInterval: Duration
    private var pausedReason: String?
    private var nextProbe = ContinuousClock.now

    init(provider: String, board: EngineStatusBoard, logger: Logger, probeInterval: Duration) {
        self.provider = provider
        self.board = board
        self.logger = logger
        self.probeInterval = probeInterval
    }

    /// Whether the provider is paused now.
    var isPaused: Bool { pausedReason != nil }

    /// Returns at once while the provider works; while it is paused, returns to one caller per probe interval (the
    /// probe) and holds the others. Returns early when the calling task is cancelled.
    func waitUntilReady() async {
        while pausedReason != nil, !Task.isCancelled {
            let now = ContinuousClock.now
            if now >= nextProbe {
                nextProbe = now + probeInterval
                return
            }
            try? await Task.sleep(until: nextProbe, clock: .continuous)
        }
    }

    /// The provider refused the account: pause it (the reason is the provider's words; it holds no secret).
    func pause(_ reason: String) {
        if pausedReason != reason {
            logger.error(
                "upstream provider paused: it refuses the account; its tasks wait until it works again",
                metadata: ["engine": "\(provider)", "reason": "\(reason)"])
        }
        pausedReason = reason
        nextProbe = ContinuousClock.now + probeInterval
        board.set(provider, pausedBecause: reason)
    }

    /// A call went through: resume the provider if it was paused.
    func resume() {
        guard pausedReason != nil else { return }
        pausedReason = nil
        board.set(provider, pausedBecause: nil)
        logger.notice("upstream provider works again; its tasks resume", metadata: ["engine": "\(provider)"])
    }
}
