import ArgumentParser
import Foundation
import KinemaCore
import KinemaStore
import KinemaStoreSQLite
import KinemaWorker
import Logging

/// `--keep-inputs` and `--result-retention`: what the retention sweep deletes (serve, and `kinema blobs gc`).
struct RetentionOptions: ParsableArguments {
    @Flag(
        name: .customLong("keep-inputs"),
        help: "Keep a task's input images after it ends (env KINEMA_KEEP_INPUTS=1); by default they are deleted once it ends.")
    var keepInputs = false

    @Option(
        name: .customLong("result-retention"),
        help:
            "How long a finished video is kept: days, or a number with s, m, h or d (90s, 12h, 30d); 0 keeps videos forever (env KINEMA_RESULT_RETENTION, default 30d). A task whose video was deleted still reports TASK_STATUS_SUCCEED, with no video; its old link answers 404 RESULT_EXPIRED."
    )
    var resultRetention: String?

    func policy() throws -> RetentionPolicy {
        let text = resultRetention ?? Env.string("KINEMA_RESULT_RETENTION") ?? "30d"
        guard let seconds = Self.seconds(text) else {
            throw CLIError("--result-retention must be a number of days, or a number with s, m, h or d (90s, 12h, 30d), not \(text).")
        }
        return RetentionPolicy(deleteInputs: !(keepInputs || Env.int("KINEMA_KEEP_INPUTS") == 1), resultRetention: seconds == 0 ? nil : seconds)
    }

    /// `30d`, `12h`, `10m`, `90s`, or a bare (fractional) number of days; `nil` when unreadable or negative.
    static func seconds(_ text: String) -> TimeInterval? {
        let units: [Character: TimeInterval] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        var number = text.trimmingCharacters(in: .whitespaces)
        var unit: TimeInterval = 86_400
        if let last = number.last, let scale = units[last] {
            unit = scale
            number.removeLast()
        }
        guard let value = Double(number), value.isFinite, value >= 0 else { return nil }
        return value * unit
    }
}

/// `kinema blobs gc`: runs the retention sweep once, now (or, with `--dry-run`, lists what it would delete).
struct Blobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Blob store maintenance.", subcommands: [GC.self])

    struct GC: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Delete the inputs of ended tasks and the videos past retention, as the server's sweep does (one pass, now).")

        @OptionGroup var store: StoreOptions
        @Option(name: .customLong("blob-dir"), help: "With --database: the shared blob directory (env KINEMA_BLOB_DIR).")
        var blobDir: String?
        @OptionGroup var blobOptions: BlobStoreOptions
        @OptionGroup var retention: RetentionOptions
        @Flag(name: .customLong("dry-run"), help: "Only list what would be deleted.")
        var dryRun = false

        func run() async throws {
            let policy = try retention.policy()
            let logger = Logger(label: "kinema.blobs")
            let blobs: any BlobStore
            if let s3 = try blobOptions.s3Store() {
                blobs = s3
            } else if store.databaseURL != nil {
                guard let path = blobDir ?? Env.string("KINEMA_BLOB_DIR") else {
                    throw CLIError("--database needs --blob-dir (or KINEMA_BLOB_DIR) or --blob-store s3://BUCKET.")
                }
                blobs = try LocalBlobStore(root: URL(fileURLWithPath: path, isDirectory: true))
            } else {
                blobs = try DataDirectory(Env.dataDirectory(store.dataDir), access: Env.fileAccess(groupAccess: false)).openBlobs()
            }
            let dryRun = self.dryRun
            try await store.withStore(logger: logger) { taskStore in
                let sweeper = RetentionSweeper(store: taskStore, blobs: blobs, policy: policy, holder: "kinema-blobs-gc", logger: logger)
                let items = dryRun ? try await sweeper.due(limit: 100_000) : try await sweeper.sweep()
                for item in items {
                    print(
                        "\(dryRun ? "would delete" : "deleted") \(item.kind.rawValue) of task \(item.taskID.uuidString.lowercased()): \(item.keys.joined(separator: " "))"
                    )
                }
                print("\(items.count) \(items.count == 1 ? "set" : "sets") of blobs \(dryRun ? "would be" : "were") deleted.")
            }
        }
    }
}
