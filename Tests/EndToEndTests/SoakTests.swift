import Foundation
import Testing

/// The soak (`scripts/soak`, full length via `make soak`) in a short form: 30 tasks per mode, on embedded SQLite and
/// on a throwaway PostgreSQL, while the server (SQLite) or the API node and a worker (PostgreSQL) are SIGKILLed at
/// random moments and restarted. The script itself checks every accepted task against the store and the blob
/// directory; this test runs it against the binary under test and reads its verdict.
@Suite(.serialized) struct SoakTests {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/soak")
    static let tasks = 30

    @Test func shortSoakWithKillsLosesNothingAndDuplicatesNothing() async throws {
        // A kill every 0.75-2.25 s: the first two fall well inside the 7.5 s of submits, so each mode sees at least
        // two kills (on PostgreSQL, the API node and then a worker).
        let run = try await Tools.run(
            "python3",
            // 40 attempts: under the whole suite's load (load average 25 was seen) a render can outlast several 1.5 s kill
            // intervals in a row, and a task whose attempts ran out by design would count as lost.
            [
                Self.script.path, "--tasks", String(Self.tasks), "--mode", "both", "--rate", "4", "--kill-interval", "1.5", "--timeout", "300",
                "--max-attempts", "40",
            ],
            environment: ["KINEMA_BIN": ServerProcess.binary.path],
            timeout: .seconds(420)
        )
        #expect(run.status == 0, "scripts/soak failed:\n\(run.output)")
        #expect(run.output.contains("soak: PASS"), "\(run.output)")

        // One `soak result: key=value ...` line per mode.
        let results = run.output.split(separator: "\n").filter { $0.hasPrefix("soak result: ") }.map { line in
            Dictionary(
                line.dropFirst("soak result: ".count).split(separator: " ").compactMap { pair -> (String, String)? in
                    let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    return parts.count == 2 ? (parts[0], parts[1]) : nil
                }, uniquingKeysWith: { _, last in last })
        }
        #expect(results.map { $0["mode"] } == ["sqlite", "postgres"], "\(run.output)")
        for result in results {
            let mode = result["mode"] ?? "?"
            #expect(result["accepted"] == String(Self.tasks), "\(mode): \(result)")
            for zero in ["lost", "duplicates", "5xx_outside_windows", "no_answer_outside_windows", "unexpected_status", "never_accepted"] {
                #expect(result[zero] == "0", "\(mode): \(zero) is \(result[zero] ?? "missing"); \(run.output)")
            }
            #expect((Int(result["kills"] ?? "") ?? 0) >= 2, "\(mode): too few kills to mean anything: \(result)")
        }
        let postgresKills = results.last?["kills_by_process"] ?? ""
        #expect(postgresKills.contains("pg-api") && postgresKills.contains("pg-worker"), "\(postgresKills)")
    }
}
