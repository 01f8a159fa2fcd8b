import Testing

@testable import KinemaAPI

/// The webhook retry schedule (issue 12): the defaults the issue names, doubling from the first wait, and the one-hour
/// cap holding with the jitter applied.
@Suite struct WebhookBackoffTests {
    @Test func theDefaultsAreSixAttemptsFromThirtySecondsCappedAtAnHour() {
        let config = WebhookConfiguration()
        #expect(config.maxAttempts == 6)
        #expect(config.firstBackoff == 30)
        #expect(config.maxBackoff == 3600)
        #expect(config.timeout == .seconds(5))
        #expect(config.maxAnswerBytes == 64 * 1024)
    }

    @Test func waitsDoubleUpToTheCap() {
        let config = WebhookConfiguration()
        let waits = (1...9).map { config.backoff(afterAttempts: $0, jitter: 1) }
        #expect(waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600])
        var fractional = WebhookConfiguration()
        fractional.firstBackoff = 0.2
        #expect((1...3).map { fractional.backoff(afterAttempts: $0, jitter: 1) } == [0.2, 0.4, 0.8])
    }

    @Test func jitterNeverPushesAWaitPastTheCap() {
        let config = WebhookConfiguration()
        #expect(abs(config.backoff(afterAttempts: 7, jitter: 1.2) - 2304) < 1e-6)
        #expect(config.backoff(afterAttempts: 8, jitter: 1.2) == 3600)
        #expect(config.backoff(afterAttempts: 40, jitter: 1.2) == 3600)
        #expect(abs(config.backoff(afterAttempts: 8, jitter: 0.8) - 3072) < 1e-6)
    }
}
