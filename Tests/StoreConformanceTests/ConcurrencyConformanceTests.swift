import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Several connections (standing in for processes) working on the same data at once.
@Suite struct ConcurrencyConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func concurrentSubmitsNeverExceedATenantsActiveTaskCap(backend: StoreBackend) async throws {
        try await backend.withLocation { location in
            let limit = 5
            let stores = try (0..<4).map { _ in try location.open() }
            defer { for store in stores { try? location.close(store) } }
            // 24 submits race over four connections (standing in for four API nodes).
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<24 {
                    let store = stores[index % stores.count]
                    group.addTask {
                        var task = Fixtures.newTask(tenant: "acme")
                        task.tenantActiveLimit = limit
                        do {
                            try await store.enqueue(task, now: Fixtures.at(Double(index) / 1000))
                            return true
                        } catch let error as StoreError where error.code == .quotaExceeded {
                            return false
                        }
                    }
                }
                var all: [Bool] = []
                for try await accepted in group { all.append(accepted) }
                return all
            }
            #expect(outcomes.filter { $0 }.count == limit)
            #expect(try await stores[0].countByStatus()[.queued] == limit)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func concurrentClaimersNeverShareATaskAndTakeThemAll(backend: StoreBackend) async throws {
        try await backend.withLocation { location in
            let taskCount = 200
            let claimers = 8
            let stores = try (0..<4).map { _ in try location.open() }
            defer { for store in stores { try? location.close(store) } }

            var ids = Set<UUID>()
            for index in 0..<taskCount {
                ids.insert(try await Fixtures.enqueue(stores[index % stores.count], at: Double(index) / 1000))
            }

            let claims = try await withThrowingTaskGroup(of: [ClaimedTask].self) { group in
                for claimer in 0..<claimers {
                    let store = stores[claimer % stores.count]
                    group.addTask {
                        var mine: [ClaimedTask] = []
                        while let claimed = try await store.claim(
                            workerID: "worker-\(claimer)", engine: "motion", leaseDuration: 30, now: Fixtures.at(10)
                        ) {
                            mine.append(claimed)
                        }
                        return mine
                    }
                }
                var all: [ClaimedTask] = []
                for try await mine in group { all += mine }
                return all
            }

            let claimedIDs = claims.map(\.task.id)
            #expect(claimedIDs.count == taskCount)
            #expect(Set(claimedIDs) == ids)
            #expect(Set(claims.map(\.lease.leaseID)).count == taskCount)
            #expect(claims.allSatisfy { $0.lease.attempt == 1 && $0.task.leaseOwner == $0.lease.workerID })
            let counts = try await stores[0].countByStatus()
            #expect(counts[.processing] == taskCount)
            #expect(counts[.queued] == 0)
            for claim in claims.prefix(20) {
                #expect(try await stores[1].attempts(of: claim.task.id).count == 1)
            }
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func concurrentRescuesRescueEachTaskOnce(backend: StoreBackend) async throws {
        try await backend.withLocation { location in
            let first = try location.open()
            let second = try location.open()
            defer {
                try? location.close(first)
                try? location.close(second)
            }
            var ids = Set<UUID>()
            for index in 0..<40 { ids.insert(try await Fixtures.enqueue(first, at: Double(index) / 1000)) }
            for index in 0..<40 { _ = try await Fixtures.claim(first, by: "worker-\(index % 3)", at: 1) }

            async let reportA = first.rescueExpiredLeases(now: Fixtures.at(60))
            async let reportB = second.rescueExpiredLeases(now: Fixtures.at(60))
            let (a, b) = try await (reportA, reportB)

            let requeued = a.requeued + b.requeued
            #expect(requeued.count == ids.count)
            #expect(Set(requeued) == ids)
            #expect(a.failed.isEmpty && b.failed.isEmpty)
            for id in ids {
                let task = try #require(try await second.task(id: id))
                #expect(task.status == .queued)
                #expect(task.attempt == 1)
                #expect(try await first.attempts(of: id).map(\.outcome) == [.expired])
            }
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func workersRacingRescuersStillFinishEveryTaskOnce(backend: StoreBackend) async throws {
        try await backend.withLocation { location in
            let stores = try (0..<3).map { _ in try location.open() }
            defer { for store in stores { try? location.close(store) } }
            var ids = Set<UUID>()
            // 20 sweeps can expire a task at most 20 times, so 50 attempts never run out here.
            for index in 0..<60 { ids.insert(try await Fixtures.enqueue(stores[0], at: Double(index) / 1000, maxAttempts: 50)) }

            // Every worker claims at t=100 with a 30 s lease but reports at t=200, so a rescuer running
            // at t=150 may steal any task; whichever lease holds the task at the end wins, never both.
            let completions = try await withThrowingTaskGroup(of: [UUID].self) { group in
                for worker in 0..<4 {
                    let store = stores[worker % stores.count]
                    group.addTask {
                        var done: [UUID] = []
                        var round = 0.0
                        while let claimed = try await store.claim(
                            workerID: "w\(worker)", engine: "motion", leaseDuration: 30, now: Fixtures.at(100 + round)
                        ) {
                            round += 1
                            if try await store.complete(claimed.lease, resultKey: "\(claimed.lease.leaseID).mp4", now: Fixtures.at(200)) {
                                done.append(claimed.task.id)
                            }
                        }
                        return done
                    }
                }
                group.addTask {
                    for _ in 0..<20 { _ = try await stores[2].rescueExpiredLeases(now: Fixtures.at(150)) }
                    return []
                }
                var all: [UUID] = []
                for try await done in group { all += done }
                return all
            }

            // Tasks requeued after the workers stopped claiming are finished here.
            var leftovers: [UUID] = []
            while let claimed = try await stores[0].claim(workerID: "sweeper", engine: "motion", leaseDuration: 30, now: Fixtures.at(300)) {
                #expect(try await stores[0].complete(claimed.lease, resultKey: "late.mp4", now: Fixtures.at(301)))
                leftovers.append(claimed.task.id)
            }
            let finished = completions + leftovers
            #expect(finished.count == ids.count)
            #expect(Set(finished) == ids)
            for id in ids {
                let attempts = try await stores[1].attempts(of: id)
                #expect(attempts.filter { $0.outcome == .succeeded }.count == 1)
                #expect(try await stores[1].task(id: id)?.status == .succeeded)
            }
        }
    }
}
