import Foundation
import KinemaCore
import KinemaStore
import Testing

/// The upstream handle (`recordUpstream`) and the lease rule it brings, on every backend: a task a hosted provider
/// accepted is followed again after its worker dies, never failed for it (every submit is paid).
@Suite struct UpstreamConformanceTests {
    static let intent = UpstreamHandle(provider: "kling", submittedAt: Fixtures.at(2))
    static let accepted = UpstreamHandle(
        provider: "fal", id: "req-1", statusURL: "https://queue.example/r/1/status", responseURL: "https://queue.example/r/1",
        cancelURL: "https://queue.example/r/1/cancel", submittedAt: Fixtures.at(2))

    @Test(arguments: StoreBackend.allCases)
    func aRecordedHandleIsWhatTheNextClaimSees(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let first = try await Fixtures.claim(store, at: 1)
            #expect(first.task.upstream == nil)
            #expect(try await store.recordUpstream(taskID: id, leaseID: first.lease.leaseID, handle: Self.intent, now: Fixtures.at(2)))
            #expect(try await store.task(id: id)?.upstream == Self.intent)
            #expect(try await store.recordUpstream(taskID: id, leaseID: first.lease.leaseID, handle: Self.accepted, now: Fixtures.at(3)))
            #expect(try await store.release(first.lease, now: Fixtures.at(4)))
            let second = try await Fixtures.claim(store, at: 5)
            #expect(second.task.upstream == Self.accepted)
            #expect(second.task.updatedAt == Fixtures.at(5))
            // The provider's seed, once known, is what a poll reports.
            #expect(try await store.taskStatus(id: id, tenant: Fixtures.tenant)?.seed == second.task.request.seed)
            var seeded = Self.accepted
            seeded.seed = 4_000_000_000
            #expect(try await store.recordUpstream(taskID: id, leaseID: second.lease.leaseID, handle: seeded, now: Fixtures.at(6)))
            #expect(try await store.taskStatus(id: id, tenant: Fixtures.tenant)?.seed == 4_000_000_000)
            #expect(try await store.task(id: id)?.statusRecord.seed == 4_000_000_000)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func anAcceptedHandleIsNeverClearedNorReplacedByAnIntent(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let lease = try await Fixtures.claim(store, at: 1).lease.leaseID
            // An intent can be cleared (its submit was refused)...
            #expect(try await store.recordUpstream(taskID: id, leaseID: lease, handle: Self.intent, now: Fixtures.at(2)))
            #expect(try await store.recordUpstream(taskID: id, leaseID: lease, handle: nil, now: Fixtures.at(3)))
            #expect(try await store.task(id: id)?.upstream == nil)
            // ...an accepted handle cannot.
            #expect(try await store.recordUpstream(taskID: id, leaseID: lease, handle: Self.accepted, now: Fixtures.at(4)))
            #expect(!(try await store.recordUpstream(taskID: id, leaseID: lease, handle: nil, now: Fixtures.at(5))))
            #expect(!(try await store.recordUpstream(taskID: id, leaseID: lease, handle: Self.intent, now: Fixtures.at(5))))
            #expect(try await store.task(id: id)?.upstream == Self.accepted)
            // The same id again (a lookup found it) is fine.
            #expect(try await store.recordUpstream(taskID: id, leaseID: lease, handle: Self.accepted, now: Fixtures.at(6)))
            // Unknown tasks and finished ones take nothing.
            #expect(!(try await store.recordUpstream(taskID: UUID(), leaseID: lease, handle: Self.intent, now: Fixtures.at(6))))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aFinishedTaskTakesNoHandle(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 1)
            #expect(try await store.complete(claimed.lease, resultKey: "results/x.mp4", now: Fixtures.at(2)))
            #expect(!(try await store.recordUpstream(taskID: id, leaseID: claimed.lease.leaseID, handle: Self.accepted, now: Fixtures.at(3))))
            #expect(try await store.task(id: id)?.upstream == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aFollowedTaskWhoseWorkerDiesIsRequeuedWithoutUsingAnAttempt(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // One attempt only: an ordinary task would fail at its first lost lease.
            let id = try await Fixtures.enqueue(store, maxAttempts: 1)
            let claimed = try await Fixtures.claim(store, at: 0)
            #expect(try await store.recordUpstream(taskID: id, leaseID: claimed.lease.leaseID, handle: Self.accepted, now: Fixtures.at(1)))
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(Fixtures.lease + 1)) == RescueReport(requeued: [id]))
            var task = try #require(try await store.task(id: id))
            #expect(task.status == .queued)
            #expect(task.attempt == 0)
            #expect(task.upstream == Self.accepted)
            let again = try await Fixtures.claim(store, by: "w2", at: Fixtures.lease + 2)
            #expect(again.lease.attempt == 1)
            #expect(try await store.requeueOrphans(ofWorker: "w2", now: Fixtures.at(Fixtures.lease + 3)) == RescueReport(requeued: [id]))
            task = try #require(try await store.task(id: id))
            #expect(task.status == .queued)
            #expect(task.attempt == 0)
            let attempts = try await store.attempts(of: id)
            #expect(attempts.map(\.outcome) == [.expired, .expired])
            #expect(attempts.first?.leaseID == claimed.lease.leaseID)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func anIntentAloneIsRequeuedForTheNextWorkerToReconcileEvenOnTheLastAttempt(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // No id yet: the submit's answer may have been lost after the provider accepted (and billed) it. Failing the
            // task here would lose that result (Kling finds it again by our id), so the next worker gets the task
            // with the intent, uncounted, and reconciles before anything else.
            let id = try await Fixtures.enqueue(store, maxAttempts: 1)
            let first = try await Fixtures.claim(store, at: 0)
            #expect(try await store.recordUpstream(taskID: id, leaseID: first.lease.leaseID, handle: Self.intent, now: Fixtures.at(1)))
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(Fixtures.lease + 1)) == RescueReport(requeued: [id]))
            let task = try #require(try await store.task(id: id))
            #expect(task.status == .queued)
            #expect(task.attempt == 0)
            #expect(task.upstream == Self.intent)
            let again = try await Fixtures.claim(store, by: "w2", at: Fixtures.lease + 2)
            #expect(again.task.upstream == Self.intent)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aTaskNeverSentUpstreamStillCountsItsLostLease(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 1)
            _ = try await Fixtures.claim(store, at: 0)
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(Fixtures.lease + 1)).failed == [id])
        }
    }

    /// A worker whose lease lapsed (the task is held by another worker now) cannot write an intent, so it never starts
    /// a second paid submit, nor clear the other worker's intent; an accepted id it got still lands (the provider
    /// took that task and bills it), and is what the holder follows from then on.
    @Test(arguments: StoreBackend.allCases)
    func onlyTheCurrentLeaseWritesAnIntentButAnAcceptedIdAlwaysLands(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 3)
            let stale = try await Fixtures.claim(store, at: 0)
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(Fixtures.lease + 1)) == RescueReport(requeued: [id]))
            // Queued again: no lease writes an intent now.
            #expect(
                !(try await store.recordUpstream(taskID: id, leaseID: stale.lease.leaseID, handle: Self.intent, now: Fixtures.at(Fixtures.lease + 2)))
            )
            let holder = try await Fixtures.claim(store, by: "w2", at: Fixtures.lease + 3)
            #expect(
                !(try await store.recordUpstream(taskID: id, leaseID: stale.lease.leaseID, handle: Self.intent, now: Fixtures.at(Fixtures.lease + 4)))
            )
            #expect(try await store.task(id: id)?.upstream == nil)
            #expect(
                try await store.recordUpstream(taskID: id, leaseID: holder.lease.leaseID, handle: Self.intent, now: Fixtures.at(Fixtures.lease + 5)))
            #expect(!(try await store.recordUpstream(taskID: id, leaseID: stale.lease.leaseID, handle: nil, now: Fixtures.at(Fixtures.lease + 6))))
            #expect(try await store.task(id: id)?.upstream == Self.intent)
            #expect(
                try await store.recordUpstream(taskID: id, leaseID: stale.lease.leaseID, handle: Self.accepted, now: Fixtures.at(Fixtures.lease + 7)))
            #expect(try await store.task(id: id)?.upstream == Self.accepted)
        }
    }
}
