import Foundation
import KinemaCore
import KinemaStore

/// Test data and a fixed clock: every time is `t0 + seconds`, so no test sleeps.
enum Fixtures {
    /// A whole number of milliseconds, so it survives the stores' millisecond resolution exactly.
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)
    static let tenant = "tenant-a"
    static let lease: TimeInterval = 30

    static func at(_ seconds: TimeInterval) -> Date { t0.addingTimeInterval(seconds) }

    static func request(seed: UInt32 = 7) -> GenerationRequest {
        GenerationRequest(
            prompt: "slow push in on the lighthouse, gentle waves", negativePrompt: "camera shake", duration: 5,
            cfgScale: 0.5, sound: true, shots: nil, seed: seed, hasEndImage: false, webhookURL: nil
        )
    }

    static func newTask(
        id: UUID = UUID(), tenant: String = tenant, maxAttempts: Int = 3, etaSeconds: Int = 60
    ) -> NewTask {
        NewTask(
            id: id, tenant: tenant, request: request(), imageKey: "inputs/\(id.uuidString)/image.png", endImageKey: nil,
            maxAttempts: maxAttempts, etaSeconds: etaSeconds
        )
    }

    /// Enqueues one task at `t0 + seconds` and returns its id.
    @discardableResult
    static func enqueue(
        _ store: any TaskStore, at seconds: TimeInterval = 0, maxAttempts: Int = 3, tenant: String = tenant
    ) async throws -> UUID {
        let task = newTask(tenant: tenant, maxAttempts: maxAttempts)
        try await store.enqueue(task, now: at(seconds))
        return task.id
    }

    /// Claims the next task at `t0 + seconds`, failing the test when none is queued.
    static func claim(
        _ store: any TaskStore, by worker: String = "worker-1", at seconds: TimeInterval
    ) async throws -> ClaimedTask {
        guard let claimed = try await store.claim(workerID: worker, engine: "motion", leaseDuration: lease, now: at(seconds))
        else { throw FixtureError(message: "expected a queued task to claim at t0+\(seconds)s") }
        return claimed
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
