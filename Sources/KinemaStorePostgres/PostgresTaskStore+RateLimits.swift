import Foundation
import KinemaStore
import PostgresNIO

/// Token buckets in the shared database, so a key's rate limit holds across every API node.
extension PostgresTaskStore: RateLimiter {
    /// One statement refills and takes a token under the row's lock; a refused take changes nothing and reads
    /// the bucket to say how long to wait. Times are each node's clock in milliseconds; a bucket never runs
    /// backwards when clocks disagree (`GREATEST`).
    public func takeToken(key: String, limit: RateLimit, now: Date) async throws -> TimeInterval? {
        let nowMs = PostgresTaskRow.millis(now)
        let burst = Double(limit.burst)
        let perMs = limit.perSecond / 1000
        let taken = try await rows(
            """
            INSERT INTO rate_buckets AS b (key, tokens, updated_at) VALUES (\(key), \(burst - 1), \(nowMs))
            ON CONFLICT (key) DO UPDATE
            SET tokens = LEAST(\(burst), b.tokens + GREATEST(0, \(nowMs) - b.updated_at) * \(perMs)) - 1,
                updated_at = GREATEST(b.updated_at, \(nowMs))
            WHERE LEAST(\(burst), b.tokens + GREATEST(0, \(nowMs) - b.updated_at) * \(perMs)) >= 1
            RETURNING tokens
            """)
        if !taken.isEmpty { return nil }
        let bucket = try await rows("SELECT tokens, updated_at FROM rate_buckets WHERE key = \(key)")
        guard let row = bucket.first else { return nil } // deleted meanwhile: nothing to wait for
        let (tokens, updatedAt) = try PostgresTaskRow.readable { try row.decode((Double, Int64).self) }
        let available = limit.refilled(tokens, after: Double(nowMs - updatedAt) / 1000)
        return limit.wait(from: available)
    }
}
