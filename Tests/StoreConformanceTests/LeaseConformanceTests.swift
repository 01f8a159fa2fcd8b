import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Heartbeats, completion, failure, release and lease rescue, on every backend.
@Suite struct LeaseConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func heartbeatExtendsTheLeaseAndRecordsProgress(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 0)
            let progress = RenderProgress(percent: 40, etaSeconds: 12)
            #expect(try await store.heartbeat(claimed.lease, progress: progress, leaseDuration: 30, now: Fixtures.at(20)))

            let task = try #require(try await store.task(id: id))
            #expect(task.status == .processing)
            #expect(task.progressPercent == 40)
            #expect(task.etaSeconds == 12)
            #expect(task.leaseExpiresAt == Fixtures.at(50))
            #expect(task.updatedAt == Fixtures.at(20))

            // Past the original expiry (30 s) but inside the extended one: nothing to rescue.
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(45)) == RescueReport())
            #expect(try await store.task(id: id)?.status == .processing)
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(51)) == RescueReport(requeued: [id]))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aLeaseIsNotRescuedAtItsExactExpiry(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            _ = try await Fixtures.claim(store, at: 0)
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(Fixtures.lease)) == RescueReport())
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(Fixtures.lease + 0.001)) == RescueReport(requeued: [id]))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func completeMarksSucceededWithTheResult(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 1)
            _ = try await store.heartbeat(claimed.lease, progress: RenderProgress(percent: 90, etaSeconds: 3), leaseDuration: 30, now: Fixtures.at(5))
            #expect(try await store.complete(claimed.lease, resultKey: "results/\(id).mp4", now: Fixtures.at(8)))

            let task = try #require(try await store.task(id: id))
            #expect(task.status == .succeeded)
            #expect(task.progressPercent == 100)
            #expect(task.etaSeconds == 0)
            #expect(task.resultKey == "results/\(id).mp4")
            #expect(task.finishedAt == Fixtures.at(8))
            #expect(task.updatedAt == Fixtures.at(8))
            #expect(task.startedAt == Fixtures.at(1))
            #expect(task.reason == "")
            #expect(task.leaseOwner == nil)
            #expect(task.leaseExpiresAt == nil)
            #expect(task.attempt == 1)

            let attempts = try await store.attempts(of: id)
            #expect(attempts.map(\.outcome) == [.succeeded])
            #expect(attempts.first?.endedAt == Fixtures.at(8))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aDuplicateOrLateCompletionIsANoOp(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 1)
            #expect(try await store.complete(claimed.lease, resultKey: "first.mp4", now: Fixtures.at(8)))
            let first = try #require(try await store.task(id: id))

            #expect(try await store.complete(claimed.lease, resultKey: "first.mp4", now: Fixtures.at(9)) == false)
            #expect(try await store.complete(claimed.lease, resultKey: "second.mp4", now: Fixtures.at(10)) == false)
            #expect(try await store.fail(claimed.lease, reason: "late", retryable: false, now: Fixtures.at(11)) == false)
            #expect(
                try await store.heartbeat(claimed.lease, progress: RenderProgress(percent: 5, etaSeconds: 9), leaseDuration: 30, now: Fixtures.at(12))
                    == false)
            #expect(try await store.release(claimed.lease, now: Fixtures.at(13)) == false)
            #expect(try await store.task(id: id) == first)
            #expect(try await store.attempts(of: id).count == 1)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aZombieWorkerCannotWriteToARescuedTask(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let zombie = try await Fixtures.claim(store, by: "worker-a", at: 0)
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(31)) == RescueReport(requeued: [id]))

            // Rescued but not yet re-claimed: the zombie's writes are refused and the task stays queued.
            #expect(try await store.complete(zombie.lease, resultKey: "zombie.mp4", now: Fixtures.at(32)) == false)
            #expect(try await store.task(id: id)?.status == .queued)

            let fresh = try await Fixtures.claim(store, by: "worker-b", at: 33)
            #expect(fresh.task.attempt == 2)
            let progress = RenderProgress(percent: 99, etaSeconds: 1)
            #expect(try await store.heartbeat(zombie.lease, progress: progress, leaseDuration: 30, now: Fixtures.at(34)) == false)
            #expect(try await store.complete(zombie.lease, resultKey: "zombie.mp4", now: Fixtures.at(35)) == false)
            #expect(try await store.fail(zombie.lease, reason: "zombie", retryable: false, now: Fixtures.at(36)) == false)
            #expect(try await store.release(zombie.lease, now: Fixtures.at(37)) == false)

            let running = try #require(try await store.task(id: id))
            #expect(running.status == .processing)
            #expect(running.leaseOwner == "worker-b")
            #expect(running.progressPercent == 0)
            #expect(running.resultKey == nil)
            #expect(running.leaseExpiresAt == Fixtures.at(63))

            #expect(try await store.complete(fresh.lease, resultKey: "real.mp4", now: Fixtures.at(40)))
            #expect(try await store.task(id: id)?.resultKey == "real.mp4")
            #expect(try await store.attempts(of: id).map(\.outcome) == [.expired, .succeeded])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aLateHolderStillCompletesIfNobodyRescuedTheTask(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 0)
            #expect(try await store.complete(claimed.lease, resultKey: "slow.mp4", now: Fixtures.at(90)))
            #expect(try await store.task(id: id)?.status == .succeeded)
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(91)) == RescueReport())
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func anExpiredLeaseRequeuesTheTaskCountingTheAttempt(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store)
            let claimed = try await Fixtures.claim(store, at: 0)
            _ = try await store.heartbeat(
                claimed.lease, progress: RenderProgress(percent: 60, etaSeconds: 4), leaseDuration: 30, now: Fixtures.at(10))
            #expect(try await store.rescueExpiredLeases(now: Fixtures.at(41)) == RescueReport(requeued: [id]))

            let task = try #require(try await store.task(id: id))
            #expect(task.status == .queued)
            #expect(task.attempt == 1)
            #expect(task.progressPercent == 0)
            #expect(task.leaseOwner == nil)
            #expect(task.leaseExpiresAt == nil)
            #expect(task.finishedAt == nil)
            #expect(task.reason == "")
            #expect(task.updatedAt == Fixtures.at(41))

            let attempts = try await store.attempts(of: id)
            #expect(attempts.count == 1)
            #expect(attempts.first?.outcome == .expired)
            #expect(attempts.first?.endedAt == Fixtures.at(41))
            #expect(attempts.first?.error?.isEmpty == false)

            #expect(try await Fixtures.claim(store, at: 42).lease.attempt == 2)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aTaskFailsOnceItsLeaseExpiredMaxAttemptsTimes(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 3)
            var now: TimeInterval = 0
            for attempt in 1...3 {
                let claimed = try await Fixtures.claim(store, at: now)
                #expect(claimed.lease.attempt == attempt)
                now += Fixtures.lease + 1
                let report = try await store.rescueExpiredLeases(now: Fixtures.at(now))
                #expect(report == (attempt < 3 ? RescueReport(requeued: [id]) : RescueReport(failed: [id])))
            }
            let task = try #require(try await store.task(id: id))
            #expect(task.status == .failed)
            #expect(task.reason == "the worker's lease expired on attempt 3 of 3 (attempts exhausted)")
            #expect(task.attempt == 3)
            #expect(task.finishedAt == Fixtures.at(now))
            #expect(task.leaseOwner == nil)
            #expect(try await store.attempts(of: id).map(\.outcome) == [.expired, .expired, .expired])
            #expect(try await store.claim(workerID: "w", engine: "motion", leaseDuration: 30, now: Fixtures.at(now + 1)) == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aRetryableFailureRequeuesUntilAttemptsRunOut(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 2)
            let first = try await Fixtures.claim(store, at: 0)
            #expect(try await store.fail(first.lease, reason: "engine busy", retryable: true, now: Fixtures.at(5)))
            var task = try #require(try await store.task(id: id))
            #expect(task.status == .queued)
            #expect(task.attempt == 1)
            #expect(task.reason == "")
            #expect(task.finishedAt == nil)

            let second = try await Fixtures.claim(store, at: 6)
            #expect(second.lease.attempt == 2)
            _ = try await store.heartbeat(second.lease, progress: RenderProgress(percent: 30, etaSeconds: 9), leaseDuration: 30, now: Fixtures.at(7))
            #expect(try await store.fail(second.lease, reason: "engine busy again", retryable: true, now: Fixtures.at(8)))
            task = try #require(try await store.task(id: id))
            #expect(task.status == .failed)
            #expect(task.reason == "engine busy again")
            #expect(task.finishedAt == Fixtures.at(8))
            #expect(task.progressPercent == 30)

            let attempts = try await store.attempts(of: id)
            #expect(attempts.map(\.outcome) == [.failed, .failed])
            #expect(attempts.map(\.error) == ["engine busy", "engine busy again"])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aNonRetryableFailureFailsAtOnceKeepingProgress(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 3)
            let claimed = try await Fixtures.claim(store, at: 0)
            _ = try await store.heartbeat(
                claimed.lease, progress: RenderProgress(percent: 45, etaSeconds: 20), leaseDuration: 30, now: Fixtures.at(3))
            #expect(try await store.fail(claimed.lease, reason: "image could not be decoded", retryable: false, now: Fixtures.at(4)))

            let task = try #require(try await store.task(id: id))
            #expect(task.status == .failed)
            #expect(task.reason == "image could not be decoded")
            #expect(task.progressPercent == 45)
            #expect(task.finishedAt == Fixtures.at(4))
            #expect(task.resultKey == nil)
            #expect(task.leaseOwner == nil)
            #expect(task.attempt == 1)
            #expect(try await store.attempts(of: id).map(\.outcome) == [.failed])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func releaseRequeuesWithoutUsingAnAttempt(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 1)
            for round in 0..<3 {
                let claimed = try await Fixtures.claim(store, at: Double(round * 10))
                #expect(claimed.lease.attempt == 1)
                #expect(try await store.release(claimed.lease, now: Fixtures.at(Double(round * 10 + 5))))
                let task = try #require(try await store.task(id: id))
                #expect(task.status == .queued)
                #expect(task.attempt == 0)
                #expect(task.leaseOwner == nil)
            }
            let last = try await Fixtures.claim(store, at: 100)
            #expect(try await store.complete(last.lease, resultKey: "done.mp4", now: Fixtures.at(101)))
            #expect(try await store.task(id: id)?.status == .succeeded)

            let attempts = try await store.attempts(of: id)
            #expect(attempts.map(\.outcome) == [.released, .released, .released, .succeeded])
            #expect(attempts.map(\.attempt) == [1, 1, 1, 1])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func requeueOrphansTakesBackOnlyThatWorkersTasks(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let a1 = try await Fixtures.enqueue(store, at: 0)
            let b1 = try await Fixtures.enqueue(store, at: 1)
            let a2 = try await Fixtures.enqueue(store, at: 2, maxAttempts: 1)
            let queued = try await Fixtures.enqueue(store, at: 3)
            _ = try await Fixtures.claim(store, by: "worker-a", at: 10)
            _ = try await Fixtures.claim(store, by: "worker-b", at: 11)
            _ = try await Fixtures.claim(store, by: "worker-a", at: 12)

            // The leases are still valid: the restarted worker knows its old tasks are dead anyway.
            let report = try await store.requeueOrphans(ofWorker: "worker-a", now: Fixtures.at(13))
            #expect(report.requeued == [a1])
            #expect(report.failed == [a2])

            #expect(try await store.task(id: a1)?.status == .queued)
            #expect(try await store.task(id: a1)?.attempt == 1)
            let exhausted = try #require(try await store.task(id: a2))
            #expect(exhausted.status == .failed)
            #expect(exhausted.reason == "the worker restarted during attempt 1 of 1 (attempts exhausted)")
            #expect(try await store.task(id: b1)?.leaseOwner == "worker-b")
            #expect(try await store.task(id: queued)?.status == .queued)
            #expect(try await store.attempts(of: a1).map(\.outcome) == [.expired])
            #expect(try await store.requeueOrphans(ofWorker: "worker-a", now: Fixtures.at(14)) == RescueReport())
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func releaseLeasesGivesBackThatWorkersTasksWithoutCountingAnAttempt(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let a1 = try await Fixtures.enqueue(store, at: 0)
            let b1 = try await Fixtures.enqueue(store, at: 1)
            // On its last attempt: a release must not fail it, as an orphan sweep would.
            let a2 = try await Fixtures.enqueue(store, at: 2, maxAttempts: 1)
            _ = try await Fixtures.claim(store, by: "worker-a", at: 10)
            _ = try await Fixtures.claim(store, by: "worker-b", at: 11)
            _ = try await Fixtures.claim(store, by: "worker-a", at: 12)

            let report = try await store.releaseLeases(ofWorker: "worker-a", now: Fixtures.at(13))
            #expect(report == RescueReport(requeued: [a1, a2]))
            for id in [a1, a2] {
                let task = try #require(try await store.task(id: id))
                #expect(task.status == .queued && task.attempt == 0 && task.leaseOwner == nil)
                #expect(try await store.attempts(of: id).map(\.outcome) == [.released])
            }
            #expect(try await store.task(id: b1)?.leaseOwner == "worker-b")
            #expect(try await store.releaseLeases(ofWorker: "worker-a", now: Fixtures.at(14)) == RescueReport())
            // Released tasks are claimed again as usual.
            #expect(try await Fixtures.claim(store, by: "worker-c", at: 15).task.id == a1)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func attemptsOfATaskNeverOverlap(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, maxAttempts: 3)
            let first = try await Fixtures.claim(store, by: "a", at: 0)
            _ = try await store.rescueExpiredLeases(now: Fixtures.at(31))
            let second = try await Fixtures.claim(store, by: "b", at: 32)
            #expect(try await store.release(second.lease, now: Fixtures.at(40)))
            let third = try await Fixtures.claim(store, by: "c", at: 41)
            #expect(try await store.fail(third.lease, reason: "flaky", retryable: true, now: Fixtures.at(50)))
            let fourth = try await Fixtures.claim(store, by: "d", at: 51)
            #expect(try await store.complete(fourth.lease, resultKey: "ok.mp4", now: Fixtures.at(60)))
            #expect(try await store.complete(first.lease, resultKey: "zombie.mp4", now: Fixtures.at(61)) == false)

            let attempts = try await store.attempts(of: id)
            #expect(attempts.map(\.workerID) == ["a", "b", "c", "d"])
            #expect(attempts.map(\.attempt) == [1, 2, 2, 3])
            #expect(attempts.map(\.outcome) == [.expired, .released, .failed, .succeeded])
            #expect(Set(attempts.map(\.leaseID)).count == 4)
            try expectNoOverlap(attempts)
        }
    }
}

/// Fails the test unless every attempt ended before the next one started.
func expectNoOverlap(_ attempts: [TaskAttemptRecord], sourceLocation: SourceLocation = #_sourceLocation) throws {
    for (earlier, later) in zip(attempts, attempts.dropFirst()) {
        let ended = try #require(earlier.endedAt, "attempt \(earlier.attempt) still running", sourceLocation: sourceLocation)
        #expect(ended <= later.startedAt, sourceLocation: sourceLocation)
    }
}
