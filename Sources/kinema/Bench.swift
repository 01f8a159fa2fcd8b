import ArgumentParser
import Foundation
import KinemaMotion

/// `kinema bench`: the motion engine's benchmark matrix (figures, not pass/fail). `make bench` adds API load.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark the motion engine: render-only, encode-only, end to end, peak RSS.",
        discussion: """
            Cases: \(MotionBenchmark.standardCases.map(\.id).joined(separator: ", ")). Run one case alone in a fresh \
            process (e.g. --case 1800x720-15s under /usr/bin/time -v) to measure its peak memory without the \
            allocator's high-water mark from earlier cases.
            """)

    @Flag(help: "Only the 5 s 1280x720 cases (quick look).")
    var quick = false

    @Option(name: .customLong("case"), help: "Run only this case (repeatable), e.g. 1800x720-15s or 1280x720-5s-sound.")
    var cases: [String] = []

    func validate() throws {
        for id in cases where MotionBenchmark.Case.named(id) == nil {
            throw ValidationError("unknown case '\(id)'; the cases are \(MotionBenchmark.standardCases.map(\.id).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let selected: [MotionBenchmark.Case]
        if !cases.isEmpty {
            selected = cases.compactMap(MotionBenchmark.Case.named)
        } else {
            selected = quick ? MotionBenchmark.standardCases.filter { $0.seconds == 5 } : MotionBenchmark.standardCases
        }
        let results = try await MotionBenchmark.run(cases: selected)
        print("")
        print(MotionBenchmark.report(results))
    }
}
