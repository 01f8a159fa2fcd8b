import Foundation
import KinemaStore
import Logging
import Metrics
import ServiceLifecycle

/// What is kept and for how long (`--keep-inputs`, `--result-retention`).
public struct RetentionPolicy: Sendable, Equatable {
    /// Delete a task's input images once it reaches a terminal status.
    public var deleteInputs: Bool = true
    /// How long a success's MP4 is kept after the task ended; `nil` keeps it forever (`--result-retention 0`).
    public var resultRetention: TimeInterval? = 30 * 86_400

    public init(deleteInputs: Bool = true, resultRetention: TimeInterval? = 30 * 86_400) {
        self.deleteInputs = deleteInputs
        self.resultRetention = resultRetention
    }

    /// Whether anything is ever deleted.
    public var deletesAnything: Bool { deleteInputs || resultRetention != nil }
}

/// Deletes blobs whose time is up: inputs of ended tasks, results past retention. One node at a time sweeps (a claim
/// in the store, renewed each round; a node that dies lets another take over after two intervals). A blob is deleted
/// before the row records it, so a crash in between only means the delete is repeated (deleting is idempotent); a
/// blob store that is down stops the round, and the next round goes on from there.
public struct RetentionSweeper: Service {
    let store: any TaskStore
    let blobs: any BlobStore
    let policy: RetentionPolicy
    let interval: Duration
    let holder: String
    let logger: Logger
    let now: @Sendable () -> Date

    public init(
        store: any TaskStore, blobs: any BlobStore, policy: RetentionPolicy, interval: Duration = .seconds(60), holder: String, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.blobs = blobs
        self.policy = policy
        self.interval = interval
        self.holder = holder
        self.logger = logger
        self.now = now
    }

    public func run() async throws {
        guard policy.deletesAnything else { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let seconds = Double(interval.components.seconds) * 2 + 1
                if try await store.claimMaintenance("retention", holder: holder, seconds: seconds, now: now()) {
                    _ = try await sweep()
                }
            } catch {
                logger.error("retention sweep failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// What one sweep would delete now (`kinema blobs gc --dry-run`), oldest first, at most `limit`.
    public func due(limit: Int = 1000) async throws -> [RetentionCandidate] {
        let at = now()
        return try await store.retentionCandidates(
            inputsEndedBy: policy.deleteInputs ? at : nil, resultsEndedBefore: policy.resultRetention.map { at.addingTimeInterval(-$0) },
            limit: limit)
    }

    /// Deletes everything due now, in batches; returns what it deleted.
    public func sweep(batch: Int = 200) async throws -> [RetentionCandidate] {
        var done: [RetentionCandidate] = []
        while !Task.isCancelled {
            let candidates = try await due(limit: batch)
            if candidates.isEmpty { break }
            for candidate in candidates {
                for key in candidate.keys { try await blobs.delete(key) }
                if try await store.markDeleted(candidate, now: now()) {
                    done.append(candidate)
                    Counter(label: "kinema_retention_deleted_total", dimensions: [("kind", candidate.kind.rawValue)]).increment()
                }
            }
            if candidates.count < batch { break }
        }
        if !done.isEmpty {
            logger.info(
                "retention deleted blobs",
                metadata: [
                    "inputs": "\(done.filter { $0.kind == .inputs }.count)", "results": "\(done.filter { $0.kind == .result }.count)",
                ])
        }
        return done
    }
}
