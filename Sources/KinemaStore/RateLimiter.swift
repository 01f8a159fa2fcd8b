import Foundation
import Synchronization

/// A token bucket's settings: `perSecond` tokens flow in, at most `burst` are kept.
public struct RateLimit: Sendable, Equatable {
    /// Sustained requests per second.
    public var perSecond: Double
    /// Requests allowed at once after a quiet period (at least 1).
    public var burst: Int

    /// Creates a limit; `perSecond` must be positive and `burst` at least 1.
    public init(perSecond: Double, burst: Int) {
        precondition(perSecond > 0 && burst >= 1, "a rate limit needs perSecond > 0 and burst >= 1")
        self.perSecond = perSecond
        self.burst = burst
    }

    /// The bucket after `elapsed` seconds of refill from `tokens`, capped at `burst`.
    public func refilled(_ tokens: Double, after elapsed: TimeInterval) -> Double {
        min(Double(burst), tokens + max(0, elapsed) * perSecond)
    }

    /// Seconds until a bucket holding `tokens` (< 1) holds one.
    public func wait(from tokens: Double) -> TimeInterval {
        max(0, (1 - tokens) / perSecond)
    }
}

/// Per-key token buckets: where request rate limits are counted.
///
/// The embedded node counts in memory (`LocalRateLimiter`); nodes sharing PostgreSQL count in the database,
/// so the limit holds across all of them.
public protocol RateLimiter: Sendable {
    /// Takes one token from `key`'s bucket: `nil` when the request may go ahead, otherwise the seconds until
    /// a token will be there (nothing was taken).
    func takeToken(key: String, limit: RateLimit, now: Date) async throws -> TimeInterval?
}

/// Token buckets in this process's memory (one node), bounded in size.
public final class LocalRateLimiter: RateLimiter {
    /// Buckets kept at most; when full, buckets that have refilled completely (equal to a new one) go first.
    public static let capacity = 100_000

    private struct Bucket {
        var tokens: Double
        var updatedAt: Date
    }

    private let buckets = Mutex<[String: Bucket]>([:])

    /// Creates an empty set of buckets.
    public init() {}

    public func takeToken(key: String, limit: RateLimit, now: Date) async throws -> TimeInterval? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit.burst), updatedAt: now)
            bucket.tokens = limit.refilled(bucket.tokens, after: now.timeIntervalSince(bucket.updatedAt))
            bucket.updatedAt = max(bucket.updatedAt, now)
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return limit.wait(from: bucket.tokens)
            }
            bucket.tokens -= 1
            if buckets[key] == nil, buckets.count >= Self.capacity {
                buckets = buckets.filter { limit.refilled($0.value.tokens, after: now.timeIntervalSince($0.value.updatedAt)) < Double(limit.burst) }
                if buckets.count >= Self.capacity { buckets.removeAll(keepingCapacity: true) }
            }
            buckets[key] = bucket
            return nil
        }
    }
}
