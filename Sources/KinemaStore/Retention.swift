import Foundation

/// Blobs whose time is up (retention, `RetentionSweeper`): a terminal task's inputs, or a success's result after
/// `--result-retention`. The task row stays; only the blobs go, and the row records that they went.
public struct RetentionCandidate: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable {
        /// The first (and end) image of a task that reached a terminal status.
        case inputs
        /// The MP4 of a succeeded task past its retention.
        case result
    }

    public var taskID: UUID
    public var kind: Kind
    /// The blob keys to delete.
    public var keys: [String]
    /// When the task ended.
    public var finishedAt: Date

    public init(taskID: UUID, kind: Kind, keys: [String], finishedAt: Date) {
        self.taskID = taskID
        self.kind = kind
        self.keys = keys
        self.finishedAt = finishedAt
    }
}

/// What the retention sweeper needs from the task store (both backends; one conformance suite).
public protocol RetentionStore: Sendable {
    /// Up to `limit` candidates, oldest first: inputs of tasks that ended at or before `inputsEndedBy` (`nil`: inputs
    /// are kept) and results of successes that ended before `resultsEndedBefore` (`nil`: results are kept). Each
    /// task's inputs and result are offered once: after `markDeleted` they are not offered again.
    func retentionCandidates(inputsEndedBy: Date?, resultsEndedBefore: Date?, limit: Int) async throws -> [RetentionCandidate]

    /// Records that the candidate's blobs are gone: a deleted result makes the task report no video (it stays
    /// SUCCEED). `false` when it was recorded already.
    func markDeleted(_ candidate: RetentionCandidate, now: Date) async throws -> Bool

    /// Claims the named maintenance job for `holder` until `now + seconds` when nobody else holds it (or the holder
    /// renews its own claim): one node at a time runs it, and a node that dies lets another take over afterwards.
    func claimMaintenance(_ name: String, holder: String, seconds: TimeInterval, now: Date) async throws -> Bool
}
