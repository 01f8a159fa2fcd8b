import Foundation
import KinemaCore

/// Progress on stderr: on a terminal one line redrawn in place (bar, percent, status, eta, elapsed); otherwise one
/// plain line per change, so logs stay readable.
final class ProgressBar: @unchecked Sendable {
    // SAFETY: `last` is only touched under `lock`.
    private let lock = NSLock()
    private let interactive: Bool
    private let plainStep: Int
    private let started = ContinuousClock.now
    private var last: (status: String, percent: Int)?

    /// `plainStep`: without a terminal, a line only when the percent crosses a multiple of it (or the status changes).
    init(interactive: Bool, plainStep: Int = 1) {
        self.interactive = interactive
        self.plainStep = max(1, plainStep)
    }

    func update(_ p: RenderProgress) { update(status: "rendering", percent: p.percent, eta: p.etaSeconds) }

    func update(status: String, percent: Int, eta: Int) {
        lock.lock()
        defer { lock.unlock() }
        let elapsed = Int((ContinuousClock.now - started).timeInterval)
        if interactive {
            guard last.map({ $0.status != status || $0.percent != percent }) ?? true else { return }
            let filled = max(0, min(30, percent * 30 / 100))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: 30 - filled)
            // Carriage return and clear to the end of the line: the bar is redrawn in place.
            FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(percent)%  \(status)  eta \(eta)s  elapsed \(elapsed)s".utf8))
        } else {
            if let last, last.status == status, last.percent / plainStep == percent / plainStep { return }
            FileHandle.standardError.write(Data("\(status) \(percent)% eta \(eta)s elapsed \(elapsed)s\n".utf8))
        }
        last = (status, percent)
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
