import Foundation
import KinemaCore
import KinemaStore
import Testing

/// `cancel(id:tenant:now:)` on every backend: queued and running tasks end CANCELED, the running attempt's worker is
/// fenced out, finished tasks are left alone, and another tenant's task is unknown.
@Suite struct CancelConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func aQueuedTaskIsCanceledAtOnceAndNeverClaimed(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let status = try #require(try await store.cancel(id: id, tenant: Fixtures.tenant, now: Fixtures.at(3)))
            #expect(status.status == .canceled)
            #expect(status.reason == TaskStateMachine.canceledReason)
            #expect(status.finishedAt == Fixtures.at(3))
            #expect(try await store.claim(workerID: "w", engine: "motion", leaseDuration: 30, now: Fixtures.at(4)) == nil)
            #expect(try await store.task(id: id)?.status == .canceled)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aRunningTaskIsCanceledAndItsWorkerFencedOut(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 1)
            _ = try await store.heartbeat(claimed.lease, progress: RenderProgress(percent: 30, etaSeconds: 9), leaseDuration: 30, now: Fixtures.at(2))
            let status = try #require(try await store.cancel(id: id, tenant: Fixtures.tenant, now: Fixtures.at(3)))
            #expect(status.status == .canceled)
            #expect(status.progressPercent == 30)
            // The worker learns it from its next write: every one is refused, and nothing is stored.
            #expect(
                !(try await store.heartbeat(
                    claimed.lease, progress: RenderProgress(percent: 40, etaSeconds: 5), leaseDuration: 30, now: Fixtures.at(4))))
            #expect(!(try await store.complete(claimed.lease, resultKey: "results/x.mp4", now: Fixtures.at(5))))
            #expect(!(try await store.fail(claimed.lease, reason: "boom", retryable: true, now: Fixtures.at(5))))
            let task = try #require(try await store.task(id: id))
            #expect(task.status == .canceled)
            #expect(task.resultKey == nil)
            #expect(task.leaseOwner == nil)
            #expect(try await store.attempts(of: id).map(\.outcome) == [.failed])
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(100)) == RescueReport())
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aFinishedTaskIsLeftAsItIsAndAnotherTenantsIsUnknown(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 1)
            #expect(try await store.complete(claimed.lease, resultKey: "results/done.mp4", now: Fixtures.at(2)))
            let status = try #require(try await store.cancel(id: id, tenant: Fixtures.tenant, now: Fixtures.at(3)))
            #expect(status.status == .succeeded)
            #expect(status.resultKey == "results/done.mp4")
            #expect(status.finishedAt == Fixtures.at(2))

            let other = try await Fixtures.enqueue(store)
            #expect(try await store.cancel(id: other, tenant: "someone-else", now: Fixtures.at(4)) == nil)
            #expect(try await store.cancel(id: UUID(), tenant: Fixtures.tenant, now: Fixtures.at(4)) == nil)
            #expect(try await store.task(id: other)?.status == .queued)
        }
    }
}
