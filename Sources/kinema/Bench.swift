import ArgumentParser
import Foundation
import KinemaMotion

/// `kinema bench`: the motion engine's benchmark matrix (figures, not pass/fail). `make bench` adds API load.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmark the motion engine: render-only, encode-only, end to end, peak RSS.")

    @Flag(help: "Only the 5 s 1280x720 cases (quick look).")
    var quick = false

    func run() async throws {
        let cases = quick ? MotionBenchmark.standardCases.filter { $0.seconds == 5 } : MotionBenchmark.standardCases
        let results = try await MotionBenchmark.run(cases: cases)
        print("")
        print(MotionBenchmark.report(results))
    }
}
