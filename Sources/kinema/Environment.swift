import Foundation
import KinemaStore

/// Command line > environment > default: the environment half of that rule.
enum Env {
    static func string(_ name: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { return nil }
        return v
    }

    static func int(_ name: String) -> Int? { string(name).flatMap { Int($0) } }

    static func double(_ name: String) -> Double? { string(name).flatMap { Double($0) } }

    /// A comma-separated list.
    static func list(_ name: String) -> [String] {
        string(name)?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
    }

    /// Who may read stored files: `--group-access` or `KINEMA_GROUP_ACCESS=1` opens them to the owner's group.
    /// Applied at once to the process umask, so everything the command creates afterwards follows it.
    static func fileAccess(groupAccess flag: Bool) -> FileAccess {
        let access: FileAccess = flag || ["1", "true", "yes"].contains(string("KINEMA_GROUP_ACCESS")?.lowercased() ?? "") ? .group : .owner
        access.restrictNewFiles()
        return access
    }

    /// The data directory from `--data-dir`, `KINEMA_DATA_DIR`, or `./data`.
    static func dataDirectory(_ option: String?) -> URL {
        URL(fileURLWithPath: option ?? string("KINEMA_DATA_DIR") ?? "data", isDirectory: true)
    }
}

/// A usage or input error: printed as "Error: …" and the process exits non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Signal hygiene for long-running commands.
enum ProcessSignals {
    /// Unblocks SIGTERM and SIGINT on the calling thread (and the threads it starts later).
    ///
    /// A process inherits its parent's blocked-signal mask; started from a runtime that blocks them (test
    /// runners, some supervisors), `kinema serve` would otherwise never see a shutdown request.
    static func unblockTermination() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}
