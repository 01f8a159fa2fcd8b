import Foundation
import KinemaCore
import KinemaStore
import Testing

/// The webhook outbox and secrets on every backend: every path to a terminal status records one event for a task with
/// a webhook URL (in the same transaction: the trigger), claims are exclusive until they expire, attempts are fenced
/// by their claimer, and a tenant's secret is created once and rotated with an overlap.
@Suite struct WebhookConformanceTests {
    static let url = "https://hooks.example/kinema"

    static func enqueue(_ store: any TaskStore, webhook: String? = url, at seconds: TimeInterval = 0) async throws -> UUID {
        var task = Fixtures.newTask()
        task.request.webhookURL = webhook
        try await store.enqueue(task, now: Fixtures.at(seconds))
        return task.id
    }

    @Test(arguments: StoreBackend.allCases)
    func everyTerminalPathRecordsOneEventAndOnlyForTasksWithAWebhook(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // Succeeded.
            let done = try await Self.enqueue(store)
            let quiet = try await Self.enqueue(store, webhook: nil, at: 0.001)
            #expect(try await store.webhookDeliveries(taskID: done).isEmpty, "no event before the task ends")
            let first = try await Fixtures.claim(store, at: 1)
            #expect(first.task.id == done)
            #expect(try await store.webhookDeliveries(taskID: done).isEmpty)
            #expect(try await store.complete(first.lease, resultKey: "results/x.mp4", now: Fixtures.at(2)))
            let event = try #require(try await store.webhookDeliveries(taskID: done).first)
            #expect(event.webhookID == WebhookDelivery.webhookID(taskID: done))
            #expect(event.webhookID.hasPrefix("msg_") && event.webhookID.count == 36)
            #expect(event.url == Self.url)
            #expect(event.tenant == Fixtures.tenant)
            #expect(event.eventType == WebhookDelivery.taskResultEvent)
            #expect(event.status == .pending && event.attempts == 0 && event.lastError == nil && event.lastStatusCode == nil)
            #expect(event.nextAttemptAt == Fixtures.at(2))
            // The task without a webhook ends too: nothing recorded.
            let second = try await Fixtures.claim(store, at: 3)
            #expect(try await store.complete(second.lease, resultKey: "results/y.mp4", now: Fixtures.at(4)))
            #expect(try await store.webhookDeliveries(taskID: quiet).isEmpty)

            // Failed (no retry left), canceled while queued, canceled while running, failed by the lease rescuer.
            let failed = try await Self.enqueue(store, at: 5)
            let f = try await Fixtures.claim(store, at: 5)
            #expect(try await store.fail(f.lease, reason: "bad input", retryable: false, now: Fixtures.at(6)))
            let queued = try await Self.enqueue(store, at: 7)
            _ = try await store.cancel(id: queued, tenant: Fixtures.tenant, now: Fixtures.at(8))
            let running = try await Self.enqueue(store, at: 9)
            _ = try await Fixtures.claim(store, at: 9)
            _ = try await store.cancel(id: running, tenant: Fixtures.tenant, now: Fixtures.at(10))
            var lastChance = Fixtures.newTask(maxAttempts: 1)
            lastChance.request.webhookURL = Self.url
            try await store.enqueue(lastChance, now: Fixtures.at(11))
            _ = try await Fixtures.claim(store, at: 11)
            _ = try await store.rescueExpiredLeases(now: Fixtures.at(100))
            #expect(try await store.task(id: lastChance.id)?.status == .failed)
            for id in [failed, queued, running, lastChance.id] {
                let events = try await store.webhookDeliveries(taskID: id)
                #expect(events.count == 1, "\(id)")
                #expect(events.first?.status == .pending)
            }
            // A cancel of a finished task changes nothing, and records no second event.
            _ = try await store.cancel(id: done, tenant: Fixtures.tenant, now: Fixtures.at(101))
            #expect(try await store.webhookDeliveries(taskID: done).count == 1)
            #expect(try await store.nextWebhookDue() == Fixtures.at(2))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func claimsAreExclusiveUntilTheyExpireAndAttemptsAreFencedByTheirClaimer(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var ids: [UUID] = []
            for i in 0..<3 {
                let id = try await Self.enqueue(store, at: Double(i) * 0.01)
                _ = try await store.cancel(id: id, tenant: Fixtures.tenant, now: Fixtures.at(Double(1 + i)))
                ids.append(id)
            }
            // Due in order; not before they are due.
            #expect(try await store.claimWebhooks(claimer: "a", limit: 10, claimFor: 60, now: Fixtures.at(0.5)).isEmpty)
            let a = try await store.claimWebhooks(claimer: "a", limit: 2, claimFor: 60, now: Fixtures.at(10))
            #expect(a.map(\.taskID) == [ids[0], ids[1]])
            let b = try await store.claimWebhooks(claimer: "b", limit: 10, claimFor: 60, now: Fixtures.at(10))
            #expect(b.map(\.taskID) == [ids[2]])
            #expect(try await store.claimWebhooks(claimer: "c", limit: 10, claimFor: 60, now: Fixtures.at(20)).isEmpty)

            // Delivered: done for good. Another claimer's record is refused.
            #expect(
                !(try await store.recordWebhookAttempt(
                    webhookID: a[0].webhookID, claimer: "b", outcome: .delivered(statusCode: 200), now: Fixtures.at(11))))
            #expect(
                try await store.recordWebhookAttempt(
                    webhookID: a[0].webhookID, claimer: "a", outcome: .delivered(statusCode: 204), now: Fixtures.at(11)))
            #expect(
                !(try await store.recordWebhookAttempt(
                    webhookID: a[0].webhookID, claimer: "a", outcome: .delivered(statusCode: 200), now: Fixtures.at(12))))
            let delivered = try #require(try await store.webhookDeliveries(taskID: ids[0]).first)
            #expect(delivered.status == .delivered && delivered.attempts == 1 && delivered.lastStatusCode == 204 && delivered.nextAttemptAt == nil)

            // Retry: pending again, due later, claimable then by anyone.
            #expect(
                try await store.recordWebhookAttempt(
                    webhookID: a[1].webhookID, claimer: "a", outcome: .retry(at: Fixtures.at(50), statusCode: 500, error: "HTTP 500: oops"),
                    now: Fixtures.at(12)))
            let retried = try #require(try await store.webhookDeliveries(taskID: ids[1]).first)
            #expect(retried.status == .pending && retried.attempts == 1 && retried.lastStatusCode == 500 && retried.lastError == "HTTP 500: oops")
            #expect(retried.nextAttemptAt == Fixtures.at(50))
            #expect(try await store.claimWebhooks(claimer: "c", limit: 10, claimFor: 60, now: Fixtures.at(49)).isEmpty)

            // b's claim expired (it died mid-attempt): c takes over; b's late record is refused.
            let c = try await store.claimWebhooks(claimer: "c", limit: 10, claimFor: 60, now: Fixtures.at(71))
            #expect(Set(c.map(\.taskID)) == [ids[1], ids[2]])
            #expect(
                !(try await store.recordWebhookAttempt(
                    webhookID: b[0].webhookID, claimer: "b", outcome: .delivered(statusCode: 200), now: Fixtures.at(72))))
            #expect(
                try await store.recordWebhookAttempt(
                    webhookID: b[0].webhookID, claimer: "c", outcome: .failed(statusCode: nil, error: "timed out"), now: Fixtures.at(72)))
            let failed = try #require(try await store.webhookDeliveries(taskID: ids[2]).first)
            #expect(failed.status == .failed && failed.attempts == 1 && failed.lastError == "timed out" && failed.nextAttemptAt == nil)
            #expect(try await store.nextWebhookDue() == Fixtures.at(50))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aTenantsSecretIsMadeOnceAndRotatedWithAnOverlap(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            #expect(try await store.webhookSecrets(tenant: "t", now: Fixtures.at(0)) == nil)
            let made = try await store.storeWebhookSecret(tenant: "t", secret: "whsec_one", rotate: false, now: Fixtures.at(1))
            #expect(made == WebhookSecrets(current: "whsec_one"))
            // Without rotate, the stored one stays (the first stored wins).
            #expect(try await store.storeWebhookSecret(tenant: "t", secret: "whsec_two", rotate: false, now: Fixtures.at(2)).current == "whsec_one")
            let rotated = try await store.storeWebhookSecret(tenant: "t", secret: "whsec_three", rotate: true, now: Fixtures.at(3))
            #expect(rotated.current == "whsec_three" && rotated.previous == "whsec_one")
            #expect(rotated.previousUntil == Fixtures.at(3 + WebhookSecrets.rotationOverlap))
            #expect(rotated.active(now: Fixtures.at(4)) == ["whsec_three", "whsec_one"])
            #expect(rotated.active(now: Fixtures.at(4 + WebhookSecrets.rotationOverlap)) == ["whsec_three"])
            #expect(try await store.webhookSecrets(tenant: "t", now: Fixtures.at(5)) == rotated)
            // Rotating a tenant without a secret makes its first one.
            #expect(
                try await store.storeWebhookSecret(tenant: "u", secret: "whsec_u", rotate: true, now: Fixtures.at(6))
                    == WebhookSecrets(current: "whsec_u"))
        }
    }
}
