import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Retention in the store (both backends): which blobs are due, recording their deletion once, a deleted result
/// reading as none while the task stays succeeded, and the one-holder maintenance claim.
@Suite struct RetentionConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func candidatesFollowThePolicyAndAreOfferedOnce(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // Claimed in submit order: succeeded at t0+11, failed at t0+13; canceled at t0+20; one stays queued.
            let done = try await Fixtures.enqueue(store, at: 0)
            let broken = try await Fixtures.enqueue(store, at: 1)
            let canceled = try await Fixtures.enqueue(store, at: 2)
            let queued = try await Fixtures.enqueue(store, at: 3)
            var claimed = try await Fixtures.claim(store, at: 10)
            #expect(claimed.task.id == done)
            #expect(try await store.complete(claimed.lease, resultKey: "results/aa/\(done).mp4", now: Fixtures.at(11)))
            claimed = try await Fixtures.claim(store, at: 12)
            #expect(try await store.fail(claimed.lease, reason: "bad", retryable: false, now: Fixtures.at(13)))
            #expect(try await store.cancel(id: canceled, tenant: Fixtures.tenant, now: Fixtures.at(20)) != nil)

            // Nothing when the policy keeps everything.
            #expect(try await store.retentionCandidates(inputsEndedBy: nil, resultsEndedBefore: nil, limit: 10).isEmpty)
            // Inputs of every ended task (by the time they ended), oldest first; results only past the cutoff.
            let inputs = try await store.retentionCandidates(inputsEndedBy: Fixtures.at(15), resultsEndedBefore: nil, limit: 10)
            #expect(inputs.map(\.taskID) == [done, broken] && inputs.allSatisfy { $0.kind == .inputs })
            #expect(inputs.first?.keys == ["inputs/\(done.uuidString)/image.png"])
            #expect(try await store.retentionCandidates(inputsEndedBy: nil, resultsEndedBefore: Fixtures.at(11), limit: 10).isEmpty)
            let results = try await store.retentionCandidates(inputsEndedBy: nil, resultsEndedBefore: Fixtures.at(12), limit: 10)
            #expect(results == [RetentionCandidate(taskID: done, kind: .result, keys: ["results/aa/\(done).mp4"], finishedAt: Fixtures.at(11))])
            let all = try await store.retentionCandidates(inputsEndedBy: Fixtures.at(30), resultsEndedBefore: Fixtures.at(30), limit: 10)
            #expect(all.count == 4 && !all.contains { $0.taskID == queued }, "\(all)")
            #expect(try await store.retentionCandidates(inputsEndedBy: Fixtures.at(30), resultsEndedBefore: Fixtures.at(30), limit: 2).count == 2)

            // Recorded once; then no longer offered. A deleted result reads as none; the task stays succeeded.
            for candidate in all { #expect(try await store.markDeleted(candidate, now: Fixtures.at(31))) }
            #expect(!(try await store.markDeleted(all[0], now: Fixtures.at(32))))
            #expect(try await store.retentionCandidates(inputsEndedBy: Fixtures.at(40), resultsEndedBefore: Fixtures.at(40), limit: 10).isEmpty)
            let status = try #require(try await store.taskStatus(id: done, tenant: Fixtures.tenant))
            #expect(status.status == .succeeded && status.resultKey == nil)
            #expect(try await store.tasks(tenant: Fixtures.tenant, limit: 10, after: nil).first { $0.id == done }?.resultKey == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func oneHolderAtATimeUntilItsClaimRunsOut(backend: StoreBackend) async throws {
        try await backend.withStore { (store: any TaskStore) async throws in
            #expect(try await store.claimMaintenance("retention", holder: "node-a", seconds: 10, now: Fixtures.at(0)))
            #expect(!(try await store.claimMaintenance("retention", holder: "node-b", seconds: 10, now: Fixtures.at(5))))
            // The holder renews; another job is separate.
            #expect(try await store.claimMaintenance("retention", holder: "node-a", seconds: 10, now: Fixtures.at(8)))
            #expect(try await store.claimMaintenance("other", holder: "node-b", seconds: 10, now: Fixtures.at(8)))
            #expect(!(try await store.claimMaintenance("retention", holder: "node-b", seconds: 10, now: Fixtures.at(17))))
            // Once the claim ran out (node-a died), node-b takes over.
            #expect(try await store.claimMaintenance("retention", holder: "node-b", seconds: 10, now: Fixtures.at(18)))
            #expect(!(try await store.claimMaintenance("retention", holder: "node-a", seconds: 10, now: Fixtures.at(19))))
        }
    }
}
