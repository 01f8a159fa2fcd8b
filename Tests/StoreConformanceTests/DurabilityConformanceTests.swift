import Foundation
import KinemaCore
import KinemaStore
import Testing

/// What was written is still there after the store is closed and opened again.
@Suite struct DurabilityConformanceTests {
    @Test(arguments: StoreBackend.allCases)
    func dataSurvivesClosingAndReopening(backend: StoreBackend) async throws {
        try await backend.withLocation { location in
            let store = try location.open()
            let done = try await Fixtures.enqueue(store, at: 0)
            let running = try await Fixtures.enqueue(store, at: 1)
            let waiting = try await Fixtures.enqueue(store, at: 2)
            let first = try await Fixtures.claim(store, by: "w1", at: 10)
            #expect(try await store.complete(first.lease, resultKey: "done.mp4", now: Fixtures.at(11)))
            let second = try await Fixtures.claim(store, by: "w2", at: 12)
            let key = CredentialRecord(
                kind: .apiKey, id: "key-1", owner: "acme", hash: String(repeating: "ab", count: 32), prefix: "kn_abab",
                createdAt: Fixtures.at(3)
            )
            try await store.insertCredential(key)
            let before = [
                try await store.task(id: done), try await store.task(id: running), try await store.task(id: waiting),
            ]
            let attemptsBefore = try await store.attempts(of: running)
            try location.close(store)

            let reopened = try location.open()
            defer { try? location.close(reopened) }
            let after = [
                try await reopened.task(id: done), try await reopened.task(id: running), try await reopened.task(id: waiting),
            ]
            #expect(after == before)
            #expect(after.allSatisfy { $0 != nil })
            #expect(try await reopened.attempts(of: running) == attemptsBefore)
            #expect(try await reopened.credentials(.apiKey) == [key])

            // The reopened store honours the lease taken before the restart, and continues the queue.
            #expect(try await reopened.complete(second.lease, resultKey: "running.mp4", now: Fixtures.at(13)))
            #expect(try await Fixtures.claim(reopened, at: 14).task.id == waiting)
        }
    }
}
