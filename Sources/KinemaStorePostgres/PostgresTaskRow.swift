import Foundation
import KinemaCore
import KinemaStore
import PostgresNIO

/// Conversions between stored column values and the store's records (the same encodings as the SQLite store).
enum PostgresTaskRow {
    /// Every column of `tasks` that `record(_:)` reads.
    static let columns = """
        id, tenant, status, request_json, image_key, end_image_key, result_key, reason, progress_percent,
        eta_seconds, attempt, max_attempts, engine, created_at, started_at, finished_at, updated_at,
        lease_id, lease_owner, lease_expires_at, upstream
        """

    /// The columns `lifecycle(_:)` reads.
    static let lifecycleColumns =
        "id, status, attempt, max_attempts, lease_id, lease_expires_at, reason, upstream IS NOT NULL AS follows_upstream"

    /// The columns `statusRecord(_:)` reads: a poll's view of a task (the seed taken out of the JSON in SQL).
    static let statusColumns = """
        id, status, COALESCE((upstream::jsonb ->> 'seed')::bigint, (request_json::jsonb ->> 'seed')::bigint) AS seed, engine, features, CASE WHEN result_deleted_at IS NULL THEN result_key END AS result_key, reason, progress_percent,
        eta_seconds, created_at, started_at, finished_at
        """

    static func statusRecord(_ row: PostgresRow) throws -> TaskStatusRecord {
        let row = row.makeRandomAccess()
        return try readable {
            guard let seed = try row["seed"].decode(Int64?.self).flatMap({ UInt32(exactly: $0) }) else {
                throw StoreError(.corrupt, "tasks.request_json holds no valid seed")
            }
            return TaskStatusRecord(
                id: try row["id"].decode(UUID.self),
                status: try status(row["status"].decode(String.self)),
                seed: seed,
                engine: try row["engine"].decode(String?.self) ?? EngineNames.motion,
                neededFeatures: RequestFeatures(rawValue: try row["features"].decode(Int.self)),
                resultKey: try row["result_key"].decode(String?.self),
                reason: try row["reason"].decode(String.self),
                progressPercent: try row["progress_percent"].decode(Int.self),
                etaSeconds: try row["eta_seconds"].decode(Int.self),
                createdAt: date(try row["created_at"].decode(Int64.self)),
                startedAt: try row["started_at"].decode(Int64?.self).map(date),
                finishedAt: try row["finished_at"].decode(Int64?.self).map(date)
            )
        }
    }

    static func record(_ row: PostgresRow) throws -> TaskRecord {
        let row = row.makeRandomAccess()
        return try readable {
            TaskRecord(
                id: try row["id"].decode(UUID.self),
                tenant: try row["tenant"].decode(String.self),
                status: try status(row["status"].decode(String.self)),
                request: try request(row["request_json"].decode(String.self)),
                imageKey: try row["image_key"].decode(String.self),
                endImageKey: try row["end_image_key"].decode(String?.self),
                resultKey: try row["result_key"].decode(String?.self),
                reason: try row["reason"].decode(String.self),
                progressPercent: try row["progress_percent"].decode(Int.self),
                etaSeconds: try row["eta_seconds"].decode(Int.self),
                attempt: try row["attempt"].decode(Int.self),
                maxAttempts: try row["max_attempts"].decode(Int.self),
                engine: try row["engine"].decode(String?.self),
                createdAt: date(try row["created_at"].decode(Int64.self)),
                startedAt: try row["started_at"].decode(Int64?.self).map(date),
                finishedAt: try row["finished_at"].decode(Int64?.self).map(date),
                updatedAt: date(try row["updated_at"].decode(Int64.self)),
                leaseOwner: try row["lease_owner"].decode(String?.self),
                leaseExpiresAt: try row["lease_expires_at"].decode(Int64?.self).map(date),
                upstream: try row["upstream"].decode(String?.self).flatMap { UpstreamHandle(encoded: $0) }
            )
        }
    }

    /// The task id and the facts the state machine needs, read from a row of `lifecycleColumns`.
    static func lifecycle(_ row: PostgresRow) throws -> (id: UUID, lifecycle: TaskLifecycle) {
        try readable { try lifecycle(row.makeRandomAccess()) }
    }

    private static func lifecycle(_ row: PostgresRandomAccessRow) throws -> (id: UUID, lifecycle: TaskLifecycle) {
        var lease: TaskLeaseFacts?
        if let leaseID = try row["lease_id"].decode(UUID?.self),
            let expires = try row["lease_expires_at"].decode(Int64?.self)
        {
            lease = TaskLeaseFacts(leaseID: leaseID, expiresAt: date(expires))
        }
        let lifecycle = TaskLifecycle(
            status: try status(row["status"].decode(String.self)),
            attempt: try row["attempt"].decode(Int.self),
            maxAttempts: try row["max_attempts"].decode(Int.self),
            lease: lease,
            reason: try row["reason"].decode(String.self),
            followsUpstream: try row["follows_upstream"].decode(Bool.self)
        )
        return (try row["id"].decode(UUID.self), lifecycle)
    }

    static func attempt(_ row: PostgresRow) throws -> TaskAttemptRecord {
        let row = row.makeRandomAccess()
        let outcomeName = try readable { try row["outcome"].decode(String.self) }
        guard let outcome = TaskAttemptRecord.Outcome(rawValue: outcomeName) else {
            throw StoreError(.corrupt, "task_attempts.outcome holds unknown value \(outcomeName)")
        }
        return try readable {
            TaskAttemptRecord(
                taskID: try row["task_id"].decode(UUID.self),
                attempt: try row["attempt"].decode(Int.self),
                leaseID: try row["lease_id"].decode(UUID.self),
                workerID: try row["worker_id"].decode(String.self),
                startedAt: date(try row["started_at"].decode(Int64.self)),
                endedAt: try row["ended_at"].decode(Int64?.self).map(date),
                outcome: outcome,
                error: try row["error"].decode(String?.self)
            )
        }
    }

    static func credential(_ row: PostgresRow) throws -> CredentialRecord {
        let row = row.makeRandomAccess()
        return try readable {
            let kindName = try row["kind"].decode(String.self)
            guard let kind = CredentialKind(rawValue: kindName) else {
                throw StoreError(.corrupt, "a credential has the unknown kind \(kindName)")
            }
            return CredentialRecord(
                kind: kind,
                id: try row["id"].decode(String.self),
                owner: try row["owner"].decode(String.self),
                hash: try row["hash"].decode(String.self),
                prefix: try row["prefix"].decode(String.self),
                createdAt: date(try row["created_at"].decode(Int64.self)),
                revokedAt: try row["revoked_at"].decode(Int64?.self).map(date),
                defaultEngine: try row["default_engine"].decode(String?.self)
            )
        }
    }

    /// Runs a decoding step, reporting a column PostgresNIO cannot read as `.corrupt` (no PostgresNIO error escapes).
    static func readable<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PostgresDecodingError {
            throw StoreError(
                .corrupt,
                "column \(error.columnName) holds a \(error.postgresType) value that cannot be read as \(error.targetType)"
            )
        }
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

    static func status(_ name: String) throws -> TaskStatus {
        guard let status = TaskStatus(rawValue: name) else {
            throw StoreError(.corrupt, "tasks.status holds unknown value \(name)")
        }
        return status
    }

    /// Requests are stored as JSON text (not `jsonb`, which would reorder keys) in the versioned schema both
    /// stores share (`StoredRequest`), so identical requests store identical bytes, as in the SQLite store.
    static func encode(_ request: GenerationRequest) throws -> String {
        try StoredRequest.encode(request)
    }

    static func request(_ json: String) throws -> GenerationRequest {
        try StoredRequest.decode(json)
    }
}
