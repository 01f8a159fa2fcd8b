import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Idempotency keys on every backend: one task per tenant and key for 24 h, decided by a unique key (concurrent
/// submits included), nothing stored on a conflict, expired keys taken over and swept.
@Suite struct IdempotencyConformanceTests {
    static func task(_ key: String, hash: String = "h1", tenant: String = Fixtures.tenant) -> NewTask {
        var task = Fixtures.newTask(tenant: tenant)
        task.idempotency = IdempotencyClaim(key: key, requestHash: hash)
        return task
    }

    @Test(arguments: StoreBackend.allCases)
    func aKeyStandsForItsFirstTaskAndAConflictStoresNothing(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let first = Self.task("k-1")
            try await store.enqueue(first, now: Fixtures.at(0))
            #expect(
                try await store.idempotentSubmit(tenant: Fixtures.tenant, key: "k-1", now: Fixtures.at(1))
                    == IdempotentSubmit(taskID: first.id, requestHash: "h1"))
            for hash in ["h1", "h2"] {
                let again = Self.task("k-1", hash: hash)
                do {
                    try await store.enqueue(again, now: Fixtures.at(2))
                    Issue.record("a second task was stored under a live key")
                } catch let conflict as IdempotencyConflict {
                    #expect(conflict.existing == IdempotentSubmit(taskID: first.id, requestHash: "h1"))
                }
                #expect(try await store.task(id: again.id) == nil)
            }
            // Keys are per tenant.
            let other = Self.task("k-1", tenant: "tenant-b")
            try await store.enqueue(other, now: Fixtures.at(3))
            #expect(try await store.idempotentSubmit(tenant: "tenant-b", key: "k-1", now: Fixtures.at(3))?.taskID == other.id)
            #expect(try await store.idempotentSubmit(tenant: Fixtures.tenant, key: "unknown", now: Fixtures.at(3)) == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func anExpiredKeyIsTakenOverAndSwept(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let day = IdempotencyClaim.lifetime
            try await store.enqueue(Self.task("old"), now: Fixtures.at(0))
            try await store.enqueue(Self.task("young"), now: Fixtures.at(day - 10))
            #expect(try await store.idempotentSubmit(tenant: Fixtures.tenant, key: "old", now: Fixtures.at(day + 1)) == nil)
            let renewed = Self.task("old", hash: "h2")
            try await store.enqueue(renewed, now: Fixtures.at(day + 1))
            #expect(try await store.idempotentSubmit(tenant: Fixtures.tenant, key: "old", now: Fixtures.at(day + 2))?.taskID == renewed.id)
            // At 2 days, only the renewed key is live; the young one (from day - 10 s) has expired and is swept.
            #expect(try await store.sweepIdempotencyKeys(now: Fixtures.at(2 * day)) == 1)
            #expect(try await store.idempotentSubmit(tenant: Fixtures.tenant, key: "old", now: Fixtures.at(2 * day))?.taskID == renewed.id)
            #expect(try await store.sweepIdempotencyKeys(now: Fixtures.at(2 * day)) == 0)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func twentyConcurrentSubmitsWithOneKeyMakeOneTask(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let tasks = (0..<20).map { _ in Self.task("race") }
            let stored = await withTaskGroup(of: UUID?.self) { group in
                for task in tasks {
                    group.addTask {
                        do {
                            try await store.enqueue(task, now: Fixtures.at(0))
                            return task.id
                        } catch {
                            return nil
                        }
                    }
                }
                var ids: [UUID] = []
                for await id in group { if let id { ids.append(id) } }
                return ids
            }
            let winner = try await store.idempotentSubmit(tenant: Fixtures.tenant, key: "race", now: Fixtures.at(1))
            let counts = try await store.countByStatus()
            #expect(stored.count == 1)
            #expect(winner?.taskID == stored.first)
            #expect(counts[.queued] == 1)
        }
    }
}
