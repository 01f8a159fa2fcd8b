import ArgumentParser
import Foundation
import KinemaS3
import KinemaStore

/// `kinema bench-blobs`: blob store figures (not pass/fail): upload and download throughput of a result-sized file,
/// and this process's CPU per MB, for the local store and, with `--blob-store s3://…`, for object storage.
struct BenchBlobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-blobs",
        abstract: "Benchmark the blob stores: upload and download MB/s and Kinema's CPU per MB, local directory and S3.")

    @OptionGroup var blobOptions: BlobStoreOptions

    @Option(help: "Size of the file stored and read back, in MB.")
    var megabytes: Int = 20

    @Option(help: "Rounds per store (the figures are medians).")
    var rounds: Int = 5

    func run() async throws {
        guard (1...1024).contains(megabytes), (1...100).contains(rounds) else { throw CLIError("--megabytes must be 1…1024 and --rounds 1…100.") }
        var generator = SystemRandomNumberGenerator()
        let payload = Data((0..<(megabytes * 1024 * 1024)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-bench-blobs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var stores: [(String, any BlobStore)] = [("local", try LocalBlobStore(root: scratch.appendingPathComponent("blobs")))]
        if let s3 = try blobOptions.s3Store() { stores.append(("s3", s3)) }
        print("file: \(megabytes) MB, \(rounds) rounds per store; medians")
        for (name, store) in stores {
            var upload: [(seconds: Double, cpu: Double)] = []
            var download: [(seconds: Double, cpu: Double)] = []
            for round in 0..<rounds {
                let file = scratch.appendingPathComponent("result-\(round).mp4")
                try payload.write(to: file)
                let key = "results/be/bench-\(round).mp4"
                upload.append(try await Self.measure { try await store.putFile(at: file, key: key) })
                var read = 0
                download.append(
                    try await Self.measure {
                        if let url = store.localURL(for: key) {
                            // What a download through a node reads: the file, in 1 MiB pieces.
                            let handle = try FileHandle(forReadingFrom: url)
                            defer { try? handle.close() }
                            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { read += chunk.count }
                        } else if let stream = try await store.stream(key, range: nil) {
                            for try await chunk in stream { read += chunk.count }
                        }
                    })
                guard read == payload.count else { throw CLIError("\(name): read \(read) bytes back, not \(payload.count).") }
                try await store.delete(key)
            }
            for (what, samples) in [("upload", upload), ("download", download)] {
                let seconds = samples.map(\.seconds).sorted()[samples.count / 2]
                let cpu = samples.map(\.cpu).sorted()[samples.count / 2]
                print(
                    "\(name) \(what): \(String(format: "%.1f", Double(megabytes) / seconds)) MB/s, Kinema CPU \(String(format: "%.2f", cpu * 1000 / Double(megabytes))) ms per MB"
                )
            }
        }
    }

    /// Wall seconds and this process's CPU seconds spent in `body`.
    static func measure(_ body: () async throws -> Void) async throws -> (seconds: Double, cpu: Double) {
        let cpu = MotionBenchmark.cpuSeconds()
        let started = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - started
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, MotionBenchmark.cpuSeconds() - cpu)
    }
}
