import Foundation
import GRDB
import KinemaCore
import KinemaStore

/// Conversions between stored column values and the store's records.
enum TaskRow {
    /// Every column of `tasks`, in the order `record(_:)` reads them.
    static let columns = """
        id, tenant, status, request_json, image_key, end_image_key, result_key, reason, progress_percent,
        eta_seconds, attempt, max_attempts, engine, created_at, started_at, finished_at, updated_at,
        lease_id, lease_owner, lease_expires_at, upstream
        """

    /// The columns `lifecycle(_:)` reads.
    static let lifecycleColumns =
        "id, status, attempt, max_attempts, lease_id, lease_expires_at, reason, upstream IS NOT NULL AS follows_upstream"

    /// The columns `statusRecord(_:)` reads, by position, in this order: a poll's view of a task.
    static let statusColumns = """
        id, status, COALESCE(json_extract(upstream, '$.seed'), json_extract(request_json, '$.seed')) AS seed, engine, features, CASE WHEN result_deleted_at IS NULL THEN result_key END AS result_key, reason, progress_percent, eta_seconds,
        created_at, started_at, finished_at
        """

    /// A row of `statusColumns`, read by position (the hot path of every poll: no lookups by column name).
    static func statusRecord(_ row: Row) throws -> TaskStatusRecord {
        guard let seed: Int64 = row[2], let seed32 = UInt32(exactly: seed) else {
            throw StoreError(.corrupt, "tasks.request_json holds no valid seed")
        }
        return TaskStatusRecord(
            id: try uuid(row[0], column: "id"),
            status: try status(row[1]),
            seed: seed32,
            engine: row[3] ?? EngineNames.motion,
            neededFeatures: RequestFeatures(rawValue: row[4] ?? 0),
            resultKey: row[5],
            reason: row[6],
            progressPercent: row[7],
            etaSeconds: row[8],
            createdAt: date(row[9]),
            startedAt: optionalDate(row[10]),
            finishedAt: optionalDate(row[11])
        )
    }

    static func record(_ row: Row) throws -> TaskRecord {
        TaskRecord(
            id: try uuid(row["id"], column: "id"),
            tenant: row["tenant"],
            status: try status(row["status"]),
            request: try request(row["request_json"]),
            imageKey: row["image_key"],
            endImageKey: row["end_image_key"],
            resultKey: row["result_key"],
            reason: row["reason"],
            progressPercent: row["progress_percent"],
            etaSeconds: row["eta_seconds"],
            attempt: row["attempt"],
            maxAttempts: row["max_attempts"],
            engine: row["engine"],
            createdAt: date(row["created_at"]),
            startedAt: optionalDate(row["started_at"]),
            finishedAt: optionalDate(row["finished_at"]),
            updatedAt: date(row["updated_at"]),
            leaseOwner: row["lease_owner"],
            leaseExpiresAt: optionalDate(row["lease_expires_at"]),
            upstream: (row["upstream"] as String?).flatMap { UpstreamHandle(encoded: $0) }
        )
    }

    /// The facts the state machine needs, read from a `tasks` row.
    static func lifecycle(_ row: Row) throws -> TaskLifecycle {
        var lease: TaskLeaseFacts?
        if let leaseID: String = row["lease_id"], let expires: Int64 = row["lease_expires_at"] {
            lease = TaskLeaseFacts(leaseID: try uuid(leaseID, column: "lease_id"), expiresAt: date(expires))
        }
        return TaskLifecycle(
            status: try status(row["status"]), attempt: row["attempt"], maxAttempts: row["max_attempts"],
            lease: lease, reason: row["reason"], followsUpstream: row["follows_upstream"]
        )
    }

    static func attempt(_ row: Row) throws -> TaskAttemptRecord {
        let outcomeName: String = row["outcome"]
        guard let outcome = TaskAttemptRecord.Outcome(rawValue: outcomeName) else {
            throw StoreError(.corrupt, "task_attempts.outcome holds unknown value \(outcomeName)")
        }
        return TaskAttemptRecord(
            taskID: try uuid(row["task_id"], column: "task_attempts.task_id"),
            attempt: row["attempt"],
            leaseID: try uuid(row["lease_id"], column: "task_attempts.lease_id"),
            workerID: row["worker_id"],
            startedAt: date(row["started_at"]),
            endedAt: optionalDate(row["ended_at"]),
            outcome: outcome,
            error: row["error"]
        )
    }

    static func credential(_ row: Row) throws -> CredentialRecord {
        guard let kind = CredentialKind(rawValue: row["kind"]) else {
            throw StoreError(.corrupt, "credential \(row["id"] as String? ?? "?") has an unknown kind")
        }
        return CredentialRecord(
            kind: kind, id: row["id"], owner: row["owner"], hash: row["hash"], prefix: row["prefix"],
            createdAt: date(row["created_at"]), revokedAt: optionalDate(row["revoked_at"]), defaultEngine: row["default_engine"]
        )
    }

    // MARK: Values

    /// Milliseconds since 1970, the unit of every stored time (and of the API's timestamps).
    static func millis(_ date: Date) -> Int64 {
        // Nearest, not down: t0 + 1.234 s is 1.23399… in binary and must still store as …234.
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func millis(_ interval: TimeInterval) -> Int64 {
        Int64((interval * 1000).rounded())
    }

    static func date(_ millis: Int64) -> Date {
        Date(timeIntervalSince1970: Double(millis) / 1000)
    }

    static func optionalDate(_ millis: Int64?) -> Date? {
        millis.map(date)
    }

    static func status(_ name: String) throws -> TaskStatus {
        guard let status = TaskStatus(rawValue: name) else {
            throw StoreError(.corrupt, "tasks.status holds unknown value \(name)")
        }
        return status
    }

    static func uuid(_ text: String, column: String) throws -> UUID {
        guard let id = UUID(canonical: text) else { throw StoreError(.corrupt, "\(column) holds a malformed UUID \(text)") }
        return id
    }

    /// Requests are stored in the versioned schema both stores share (`StoredRequest`).
    static func encode(_ request: GenerationRequest) throws -> String {
        try StoredRequest.encode(request)
    }

    static func request(_ json: String) throws -> GenerationRequest {
        try StoredRequest.decode(json)
    }
}
