import Foundation
import KinemaCore
import KinemaStore
import Testing

/// `queueEstimate` on every backend: a queued task's place in its engine's queue, that engine's running tasks and live
/// workers, and its recent render time; and the eta made of them.
@Suite struct QueueEstimateConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func aQueuedTaskSeesItsEnginesQueueWorkersAndRecentRenders(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var ids: [UUID] = []
            for second in 0..<3 { ids.append(try await Fixtures.enqueue(store, at: TimeInterval(second))) }
            var other = Fixtures.newTask()
            other.engine = "diffusers"
            try await store.enqueue(other, now: Fixtures.at(3))
            // A rendered in 10 s; B running.
            let a = try await Fixtures.claim(store, by: "w1", at: 10)
            #expect(try await store.complete(a.lease, resultKey: "results/a.mp4", now: Fixtures.at(20)))
            _ = try await Fixtures.claim(store, by: "w1", at: 21)
            for worker in ["w1", "w2"] { try await store.recordWorkerPresence(workerID: worker, route: .engine("motion"), now: Fixtures.at(21)) }

            let c = try #require(try await store.queueEstimate(id: ids[2], engine: "motion", needs: [], since: Fixtures.at(0)))
            #expect(c == QueueEstimate(ahead: 0, running: 1, workers: 2, recentRenderSeconds: 10))
            #expect(c.etaSeconds(ownEstimate: 60) == 15) // half of B's turn on two workers, then its own 10 s

            let e = try await Fixtures.enqueue(store, at: 30)
            let behind = try #require(try await store.queueEstimate(id: e, engine: "motion", needs: [], since: Fixtures.at(0)))
            #expect(behind == QueueEstimate(ahead: 1, running: 1, workers: 2, recentRenderSeconds: 10))
            #expect(behind.etaSeconds(ownEstimate: 60) == 20)

            // Workers not seen since the window began do not count.
            #expect(try await store.queueEstimate(id: e, engine: "motion", needs: [], since: Fixtures.at(22))?.workers == 0)
            // No worker for the engine: no estimate; no success yet: the task's own estimate.
            let gpu = try #require(try await store.queueEstimate(id: other.id, engine: "diffusers", needs: [], since: Fixtures.at(0)))
            #expect(gpu.etaSeconds(ownEstimate: 60) == nil)
            #expect(QueueEstimate(ahead: 3, running: 0, workers: 1, recentRenderSeconds: nil).etaSeconds(ownEstimate: 40) == 160)
            // Only queued tasks have a place.
            #expect(try await store.queueEstimate(id: ids[1], engine: "motion", needs: [], since: Fixtures.at(0)) == nil)
            #expect(try await store.queueEstimate(id: UUID(), engine: "motion", needs: [], since: Fixtures.at(0)) == nil)
        }
    }
}
