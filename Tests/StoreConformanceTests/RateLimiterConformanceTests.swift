import Foundation
import KinemaStore
import Testing

/// Token buckets as each deployment counts them: in memory on an embedded node, in the database when nodes
/// share PostgreSQL. Same rules for both; clocks are fixed, so nothing sleeps.
@Suite struct RateLimiterConformanceTests {
    /// The limiter a node of `backend` uses, with one or two handles on the same buckets (two "nodes").
    static func withLimiters(_ backend: StoreBackend, _ body: ([any RateLimiter]) async throws -> Void) async throws {
        switch backend {
        case .sqlite:
            // Embedded mode is one node per data directory: its buckets live in that process.
            try await body([LocalRateLimiter()])
        case .postgres:
            try await backend.withLocation { location in
                let stores = try (0..<2).map { _ in try location.open() }
                defer { for store in stores { try? location.close(store) } }
                try await body(stores.map { try #require($0 as? any RateLimiter) })
            }
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aBurstPassesThenTheRateHoldsAndTheWaitIsExact(backend: StoreBackend) async throws {
        try await Self.withLimiters(backend) { limiters in
            let limit = RateLimit(perSecond: 2, burst: 3)
            // Requests alternate between the handles: the bucket is shared.
            for i in 0..<3 {
                #expect(try await limiters[i % limiters.count].takeToken(key: "k", limit: limit, now: Fixtures.at(0)) == nil)
            }
            let wait = try #require(try await limiters[0].takeToken(key: "k", limit: limit, now: Fixtures.at(0)))
            #expect(abs(wait - 0.5) < 0.001)
            // A refused request took nothing: a quarter of a second later half a token is still missing.
            let later = try #require(try await limiters.last!.takeToken(key: "k", limit: limit, now: Fixtures.at(0.25)))
            #expect(abs(later - 0.25) < 0.001)
            #expect(try await limiters[0].takeToken(key: "k", limit: limit, now: Fixtures.at(0.5)) == nil)
            #expect(try await limiters[0].takeToken(key: "k", limit: limit, now: Fixtures.at(0.5)) != nil)
            // Other keys have their own buckets; a long pause refills only up to the burst.
            #expect(try await limiters[0].takeToken(key: "other", limit: limit, now: Fixtures.at(0.5)) == nil)
            for _ in 0..<3 {
                #expect(try await limiters[0].takeToken(key: "k", limit: limit, now: Fixtures.at(100)) == nil)
            }
            #expect(try await limiters[0].takeToken(key: "k", limit: limit, now: Fixtures.at(100)) != nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func concurrentTakesNeverHandOutMoreThanTheBucketHolds(backend: StoreBackend) async throws {
        try await Self.withLimiters(backend) { limiters in
            let limit = RateLimit(perSecond: 1, burst: 10)
            let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<40 {
                    let limiter = limiters[i % limiters.count]
                    group.addTask { try await limiter.takeToken(key: "busy", limit: limit, now: Fixtures.at(0)) == nil }
                }
                var count = 0
                for try await ok in group where ok { count += 1 }
                return count
            }
            #expect(granted == 10)
        }
    }

    @Test func aClockThatStepsBackDoesNotRefillOrBreakTheBucket() async throws {
        let limiter = LocalRateLimiter()
        let limit = RateLimit(perSecond: 1, burst: 1)
        #expect(try await limiter.takeToken(key: "k", limit: limit, now: Fixtures.at(10)) == nil)
        #expect(try await limiter.takeToken(key: "k", limit: limit, now: Fixtures.at(5)) != nil)
        #expect(try await limiter.takeToken(key: "k", limit: limit, now: Fixtures.at(11)) == nil)
    }
}
