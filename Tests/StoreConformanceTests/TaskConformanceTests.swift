import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Submitting, reading and claiming tasks, on every backend.
@Suite struct TaskConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func enqueuedTaskReadsBackQueued(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = UUID()
            let request = GenerationRequest(
                prompt: nil, negativePrompt: "zoom", duration: 8, cfgScale: 0.25, sound: false,
                shots: [Shot(prompt: "wide shot", duration: 3), Shot(prompt: "close-up, «dolly» in", duration: 5)],
                seed: 4_000_000_000, hasEndImage: true, webhookURL: "https://example.com/hook"
            )
            let new = NewTask(
                id: id, tenant: "acme", request: request, imageKey: "in/a.png", endImageKey: "in/b.jpg",
                maxAttempts: 4, etaSeconds: 90
            )
            try await store.enqueue(new, now: Fixtures.at(1.234))

            let record = try #require(try await store.task(id: id, tenant: "acme"))
            #expect(
                record
                    == TaskRecord(
                        id: id, tenant: "acme", status: .queued, request: request, imageKey: "in/a.png", endImageKey: "in/b.jpg",
                        resultKey: nil, reason: "", progressPercent: 0, etaSeconds: 90, attempt: 0, maxAttempts: 4, engine: "motion",
                        createdAt: Fixtures.at(1.234), startedAt: nil, finishedAt: nil, updatedAt: Fixtures.at(1.234),
                        leaseOwner: nil, leaseExpiresAt: nil
                    ))
            #expect(try await store.task(id: id) == record)
            #expect(try await store.attempts(of: id).isEmpty)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func anotherTenantCannotSeeTheTask(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, tenant: "acme")
            #expect(try await store.task(id: id, tenant: "acme") != nil)
            #expect(try await store.task(id: id, tenant: "globex") == nil)
            #expect(try await store.task(id: id, tenant: "") == nil)
            #expect(try await store.task(id: UUID(), tenant: "acme") == nil)
            #expect(try await store.task(id: UUID()) == nil)
            #expect(try await store.task(id: id)?.tenant == "acme")
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func theStatusReadAgreesWithTheFullRecordInEveryState(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // The largest seed checks the seed survives the SQL-side JSON extraction exactly.
            var big = Fixtures.newTask(tenant: "acme")
            big.request.seed = UInt32.max
            try await store.enqueue(big, now: Fixtures.at(0.5))
            let failing = try await Fixtures.enqueue(store, at: 1, maxAttempts: 1, tenant: "acme")

            func agree(_ id: UUID, _ label: String) async throws {
                let full = try #require(try await store.task(id: id, tenant: "acme"), "\(label)")
                #expect(try await store.taskStatus(id: id, tenant: "acme") == full.statusRecord, "\(label)")
                #expect(try await store.taskStatus(id: id, tenant: "globex") == nil, "\(label): foreign tenant")
            }
            try await agree(big.id, "queued")
            #expect(try await store.taskStatus(id: big.id, tenant: "acme")?.seed == UInt32.max)

            let first = try await Fixtures.claim(store, at: 2)
            #expect(
                try await store.heartbeat(
                    first.lease, progress: RenderProgress(percent: 40, etaSeconds: 7), leaseDuration: Fixtures.lease, now: Fixtures.at(3)))
            try await agree(big.id, "processing")
            #expect(try await store.complete(first.lease, resultKey: "results/x.mp4", now: Fixtures.at(4)))
            try await agree(big.id, "succeeded")
            #expect(try await store.taskStatus(id: big.id, tenant: "acme")?.resultKey == "results/x.mp4")

            let second = try await Fixtures.claim(store, at: 5)
            #expect(second.task.id == failing)
            #expect(try await store.fail(second.lease, reason: "engine said \"no\"", retryable: false, now: Fixtures.at(6)))
            try await agree(failing, "failed")
            #expect(try await store.taskStatus(id: UUID(), tenant: "acme") == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aTenantsActiveTaskCapCountsQueuedAndRunningOnly(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            func submit(_ tenant: String, at seconds: TimeInterval) async throws -> UUID {
                var task = Fixtures.newTask(tenant: tenant)
                task.tenantActiveLimit = 2
                try await store.enqueue(task, now: Fixtures.at(seconds))
                return task.id
            }
            _ = try await submit("acme", at: 0)
            _ = try await submit("acme", at: 1)
            var refused = Fixtures.newTask(tenant: "acme")
            refused.tenantActiveLimit = 2
            let error = await #expect(throws: StoreError.self) { try await store.enqueue(refused, now: Fixtures.at(2)) }
            #expect(error?.code == .quotaExceeded)
            #expect(try await store.task(id: refused.id) == nil)
            // Another tenant has its own count; an uncapped submit is not counted against.
            _ = try await submit("globex", at: 3)
            try await store.enqueue(Fixtures.newTask(tenant: "acme"), now: Fixtures.at(4))

            // A running task still counts; a finished one frees its place.
            let running = try await Fixtures.claim(store, at: 5)
            #expect(running.task.tenant == "acme")
            await #expect(throws: StoreError.self) { try await submit("acme", at: 6) }
            #expect(try await store.complete(running.lease, resultKey: "results/r.mp4", now: Fixtures.at(7)))
            await #expect(throws: StoreError.self) { try await submit("acme", at: 8) } // still 2 active: one capped, one uncapped
            let next = try await Fixtures.claim(store, at: 9)
            #expect(try await store.fail(next.lease, reason: "bad", retryable: false, now: Fixtures.at(10)))
            _ = try await submit("acme", at: 11)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aDuplicateIDIsRejectedAndTheOriginalKept(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let first = Fixtures.newTask(tenant: "acme")
            try await store.enqueue(first, now: Fixtures.t0)
            var second = Fixtures.newTask(id: first.id, tenant: "globex")
            second.imageKey = "other.png"
            let error = await #expect(throws: StoreError.self) { try await store.enqueue(second, now: Fixtures.at(1)) }
            #expect(error?.code == .duplicateTask)
            let kept = try #require(try await store.task(id: first.id))
            #expect(kept.tenant == "acme")
            #expect(kept.imageKey == first.imageKey)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aTaskWithoutAttemptsIsRejected(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let task = Fixtures.newTask(maxAttempts: 0)
            let error = await #expect(throws: StoreError.self) { try await store.enqueue(task, now: Fixtures.t0) }
            #expect(error?.code == .invalidRecord)
            let stored = try await store.task(id: task.id)
            #expect(stored == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func claimReturnsNilWhenNothingIsQueued(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.claim(workerID: "w", engine: "motion", leaseDuration: 30, now: Fixtures.t0) == nil)
            try await Fixtures.enqueue(store)
            _ = try await Fixtures.claim(store, at: 1)
            // The only task is running: nothing left to claim.
            #expect(try await store.claim(workerID: "w", engine: "motion", leaseDuration: 30, now: Fixtures.at(2)) == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func claimsTakeTheOldestTaskFirst(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // Inserted out of time order; equal times keep insertion order.
            let b = try await Fixtures.enqueue(store, at: 2)
            let a = try await Fixtures.enqueue(store, at: 1)
            let d = try await Fixtures.enqueue(store, at: 3)
            let c = try await Fixtures.enqueue(store, at: 2)
            var order: [UUID] = []
            for step in 0..<4 { order.append(try await Fixtures.claim(store, at: 10 + Double(step)).task.id) }
            #expect(order == [a, b, c, d])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func claimTakesTheTaskUnderANewLease(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let id = try await Fixtures.enqueue(store, at: 0)
            let claimed = try await Fixtures.claim(store, by: "worker-7", at: 5)
            #expect(claimed.lease.taskID == id)
            #expect(claimed.lease.workerID == "worker-7")
            #expect(claimed.lease.attempt == 1)
            #expect(claimed.task.id == id)
            #expect(claimed.task.status == .processing)
            #expect(claimed.task.attempt == 1)
            #expect(claimed.task.engine == "motion")
            #expect(claimed.task.leaseOwner == "worker-7")
            #expect(claimed.task.leaseExpiresAt == Fixtures.at(5 + Fixtures.lease))
            #expect(claimed.task.startedAt == Fixtures.at(5))
            #expect(claimed.task.updatedAt == Fixtures.at(5))
            #expect(claimed.task.createdAt == Fixtures.at(0))
            #expect(try await store.task(id: id) == claimed.task)

            let attempts = try await store.attempts(of: id)
            #expect(
                attempts == [
                    TaskAttemptRecord(
                        taskID: id, attempt: 1, leaseID: claimed.lease.leaseID, workerID: "worker-7", startedAt: Fixtures.at(5),
                        endedAt: nil, outcome: .running, error: nil
                    )
                ])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func eachClaimGetsADistinctLease(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            try await Fixtures.enqueue(store)
            let first = try await Fixtures.claim(store, at: 1)
            #expect(try await store.release(first.lease, now: Fixtures.at(2)))
            let second = try await Fixtures.claim(store, at: 3)
            #expect(second.lease.leaseID != first.lease.leaseID)
            #expect(second.lease.workerID == first.lease.workerID)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func countByStatusCountsEveryStatus(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let empty = try await store.countByStatus()
            #expect(empty == [.queued: 0, .processing: 0, .succeeded: 0, .failed: 0, .canceled: 0])

            for second in 0..<5 { try await Fixtures.enqueue(store, at: Double(second)) }
            let done = try await Fixtures.claim(store, at: 10)
            #expect(try await store.complete(done.lease, resultKey: "out.mp4", now: Fixtures.at(11)))
            let broken = try await Fixtures.claim(store, at: 12)
            #expect(try await store.fail(broken.lease, reason: "bad image", retryable: false, now: Fixtures.at(13)))
            _ = try await Fixtures.claim(store, at: 14)

            let counts = try await store.countByStatus()
            #expect(counts == [.queued: 2, .processing: 1, .succeeded: 1, .failed: 1, .canceled: 0])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func pingAnswers(backend: StoreBackend) async throws {
        try await backend.withStore { store in try await store.ping() }
    }
}
