import Foundation
import KinemaCore
import Testing

/// The task lifecycle, checked for every status × event without any I/O.
@Suite struct TaskStateMachineTests {
    static let held = UUID(uuidString: "00000000-0000-0000-0000-0000000000AA")!
    static let other = UUID(uuidString: "00000000-0000-0000-0000-0000000000BB")!
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)
    static let expiry = t0.addingTimeInterval(30)

    /// One representative task per status (PROCESSING on its first of three attempts).
    static func state(_ status: TaskStatus, attempt: Int = 1, maxAttempts: Int = 3) -> TaskLifecycle {
        switch status {
        case .queued: TaskLifecycle(status: .queued, attempt: attempt - 1, maxAttempts: maxAttempts)
        case .processing:
            TaskLifecycle(
                status: .processing, attempt: attempt, maxAttempts: maxAttempts,
                lease: TaskLeaseFacts(leaseID: held, expiresAt: expiry)
            )
        case .succeeded: TaskLifecycle(status: .succeeded, attempt: attempt, maxAttempts: maxAttempts)
        case .failed: TaskLifecycle(status: .failed, attempt: attempt, maxAttempts: maxAttempts, reason: "boom")
        case .canceled: TaskLifecycle(status: .canceled, attempt: attempt, maxAttempts: maxAttempts, reason: "canceled")
        }
    }

    /// Every kind of event, carrying the held lease where a lease is needed, and a time after expiry.
    enum Kind: String, CaseIterable, CustomStringConvertible {
        case claim, heartbeat, complete, failRetryable, failFatal, release, leaseExpired, orphaned, cancel
        var description: String { rawValue }

        func event(lease: UUID) -> TaskEvent {
            let later = TaskStateMachineTests.expiry.addingTimeInterval(60)
            switch self {
            case .claim: return .claim(leaseID: lease, expiresAt: later)
            case .heartbeat: return .heartbeat(leaseID: lease, expiresAt: later)
            case .complete: return .complete(leaseID: lease)
            case .failRetryable: return .fail(leaseID: lease, reason: "transient", retryable: true)
            case .failFatal: return .fail(leaseID: lease, reason: "bad input", retryable: false)
            case .release: return .release(leaseID: lease)
            case .leaseExpired: return .leaseExpired(now: later)
            case .orphaned: return .orphaned
            case .cancel: return .cancel
            }
        }
    }

    /// The specification: status reached (or the rejection) for every status × event, with attempts left.
    static func expected(_ status: TaskStatus, _ kind: Kind) -> Result<TaskStatus, TaskTransitionRejection> {
        switch (status, kind) {
        case (.queued, .claim): .success(.processing)
        case (_, .claim): .failure(.notQueued(status))
        case (.processing, .heartbeat): .success(.processing)
        case (.processing, .complete): .success(.succeeded)
        case (.processing, .failRetryable), (.processing, .release), (.processing, .leaseExpired),
            (.processing, .orphaned):
            .success(.queued)
        case (.processing, .failFatal): .success(.failed)
        case (.queued, .cancel), (.processing, .cancel): .success(.canceled)
        case (_, .cancel): .failure(.alreadyTerminal(status))
        case (_, _): .failure(.notProcessing(status))
        }
    }

    @Test(arguments: TaskStatus.allCases, Kind.allCases)
    func everyStatusAndEventFollowsTheTable(status: TaskStatus, kind: Kind) {
        let before = Self.state(status)
        let result = TaskStateMachine.apply(kind.event(lease: Self.held), to: before)
        switch (result, Self.expected(status, kind)) {
        case let (.success(transition), .success(expectedStatus)):
            #expect(transition.lifecycle.status == expectedStatus)
            #expect(transition.lifecycle.isConsistent)
            #expect(transition.lifecycle.maxAttempts == before.maxAttempts)
        case let (.failure(rejection), .failure(expectedRejection)):
            #expect(rejection == expectedRejection)
        default:
            Issue.record("\(status) × \(kind): got \(result), expected \(Self.expected(status, kind))")
        }
    }

    @Test(arguments: TaskStatus.allCases, Kind.allCases)
    func aForeignLeaseIsRefusedWhereALeaseIsNeeded(status: TaskStatus, kind: Kind) {
        let leaseEvents: Set<Kind> = [.heartbeat, .complete, .failRetryable, .failFatal, .release]
        let result = TaskStateMachine.apply(kind.event(lease: Self.other), to: Self.state(status))
        if status == .processing, leaseEvents.contains(kind) {
            #expect(result == .failure(.leaseMismatch))
        } else {
            // Events that carry no lease (or carry a new one) behave as with the held lease.
            let withHeld = TaskStateMachine.apply(kind.event(lease: Self.held), to: Self.state(status))
            switch (result, withHeld) {
            case let (.success(a), .success(b)): #expect(a.lifecycle.status == b.lifecycle.status)
            case let (.failure(a), .failure(b)): #expect(a == b)
            default: Issue.record("\(status) × \(kind) differs between leases")
            }
        }
    }

    /// Every accepted event from every consistent state (all attempt counts) keeps the invariants.
    @Test(arguments: Kind.allCases)
    func acceptedEventsPreserveInvariants(kind: Kind) {
        for maxAttempts in 1...3 {
            for status in TaskStatus.allCases {
                for attempt in 0...maxAttempts {
                    let before: TaskLifecycle =
                        switch status {
                        case .processing:
                            TaskLifecycle(
                                status: .processing, attempt: attempt, maxAttempts: maxAttempts,
                                lease: TaskLeaseFacts(leaseID: Self.held, expiresAt: Self.expiry)
                            )
                        case .failed, .canceled:
                            TaskLifecycle(status: status, attempt: attempt, maxAttempts: maxAttempts, reason: "x")
                        default: TaskLifecycle(status: status, attempt: attempt, maxAttempts: maxAttempts)
                        }
                    guard before.isConsistent else { continue }
                    guard case let .success(transition) = TaskStateMachine.apply(kind.event(lease: Self.held), to: before)
                    else { continue }
                    #expect(transition.lifecycle.isConsistent, "\(status) \(attempt)/\(maxAttempts) × \(kind)")
                    #expect(abs(transition.lifecycle.attempt - before.attempt) <= 1)
                }
            }
        }
    }

    @Test func claimCountsAnAttemptAndTakesTheLease() throws {
        let transition = try TaskStateMachine.apply(
            .claim(leaseID: Self.held, expiresAt: Self.expiry), to: .queued(maxAttempts: 3)
        ).get()
        #expect(
            transition.lifecycle
                == TaskLifecycle(
                    status: .processing, attempt: 1, maxAttempts: 3, lease: TaskLeaseFacts(leaseID: Self.held, expiresAt: Self.expiry)
                ))
        #expect(transition.endedAttempt == nil)
    }

    @Test func aQueuedTaskWithoutAttemptsLeftCannotBeClaimed() {
        let exhausted = TaskLifecycle(status: .queued, attempt: 3, maxAttempts: 3)
        #expect(!exhausted.isConsistent)
        #expect(
            TaskStateMachine.apply(.claim(leaseID: Self.held, expiresAt: Self.expiry), to: exhausted)
                == .failure(.attemptsExhausted))
    }

    @Test func heartbeatExtendsTheLease() throws {
        let later = Self.expiry.addingTimeInterval(45)
        let transition = try TaskStateMachine.apply(.heartbeat(leaseID: Self.held, expiresAt: later), to: Self.state(.processing)).get()
        #expect(transition.lifecycle.lease == TaskLeaseFacts(leaseID: Self.held, expiresAt: later))
        #expect(transition.lifecycle.attempt == 1)
        #expect(transition.endedAttempt == nil)
    }

    @Test func completeEndsTheAttemptAsSucceeded() throws {
        let transition = try TaskStateMachine.apply(.complete(leaseID: Self.held), to: Self.state(.processing)).get()
        #expect(transition.lifecycle == TaskLifecycle(status: .succeeded, attempt: 1, maxAttempts: 3))
        #expect(transition.endedAttempt == .succeeded)
    }

    @Test func aDuplicateCompletionIsRefused() throws {
        let done = try TaskStateMachine.apply(.complete(leaseID: Self.held), to: Self.state(.processing)).get()
        #expect(
            TaskStateMachine.apply(.complete(leaseID: Self.held), to: done.lifecycle)
                == .failure(.notProcessing(.succeeded)))
    }

    @Test func retryableFailureRequeuesWhileAttemptsRemain() throws {
        let transition = try TaskStateMachine.apply(
            .fail(leaseID: Self.held, reason: "gpu busy", retryable: true), to: Self.state(.processing, attempt: 2)
        ).get()
        #expect(transition.lifecycle == TaskLifecycle(status: .queued, attempt: 2, maxAttempts: 3))
        #expect(transition.endedAttempt == .failed)
    }

    @Test func retryableFailureOnTheLastAttemptFailsWithTheWorkersReason() throws {
        let transition = try TaskStateMachine.apply(
            .fail(leaseID: Self.held, reason: "gpu busy", retryable: true), to: Self.state(.processing, attempt: 3)
        ).get()
        #expect(transition.lifecycle == TaskLifecycle(status: .failed, attempt: 3, maxAttempts: 3, reason: "gpu busy"))
        #expect(transition.endedAttempt == .failed)
    }

    @Test func fatalFailureFailsAtOnce() throws {
        let transition = try TaskStateMachine.apply(
            .fail(leaseID: Self.held, reason: "bad input", retryable: false), to: Self.state(.processing, attempt: 1)
        ).get()
        #expect(transition.lifecycle == TaskLifecycle(status: .failed, attempt: 1, maxAttempts: 3, reason: "bad input"))
    }

    @Test func aFailureWithoutReasonStillRecordsOne() throws {
        let transition = try TaskStateMachine.apply(
            .fail(leaseID: Self.held, reason: "", retryable: false), to: Self.state(.processing)
        ).get()
        #expect(!transition.lifecycle.reason.isEmpty)
    }

    @Test func releaseDoesNotUseAnAttempt() throws {
        let released = try TaskStateMachine.apply(.release(leaseID: Self.held), to: Self.state(.processing, attempt: 3)).get()
        #expect(released.lifecycle == TaskLifecycle(status: .queued, attempt: 2, maxAttempts: 3))
        #expect(released.endedAttempt == .released)
        let reclaimed = try TaskStateMachine.apply(.claim(leaseID: Self.other, expiresAt: Self.expiry), to: released.lifecycle).get()
        #expect(reclaimed.lifecycle.attempt == 3)
    }

    @Test func anExpiredLeaseRequeuesWhileAttemptsRemain() throws {
        let transition = try TaskStateMachine.apply(
            .leaseExpired(now: Self.expiry.addingTimeInterval(0.001)), to: Self.state(.processing, attempt: 2)
        ).get()
        #expect(transition.lifecycle == TaskLifecycle(status: .queued, attempt: 2, maxAttempts: 3))
        #expect(transition.endedAttempt == .expired)
    }

    @Test func anExpiredLeaseOnTheLastAttemptFailsTheTaskWithAReason() throws {
        let transition = try TaskStateMachine.apply(
            .leaseExpired(now: Self.expiry.addingTimeInterval(1)), to: Self.state(.processing, attempt: 3)
        ).get()
        #expect(transition.lifecycle.status == .failed)
        #expect(transition.lifecycle.reason == "the worker's lease expired on attempt 3 of 3 (attempts exhausted)")
        #expect(transition.lifecycle.lease == nil)
        #expect(transition.endedAttempt == .expired)
    }

    @Test func aLeaseIsNotExpiredBeforeOrAtItsExpiry() {
        for now in [Self.t0, Self.expiry] {
            #expect(TaskStateMachine.apply(.leaseExpired(now: now), to: Self.state(.processing)) == .failure(.leaseNotExpired))
        }
    }

    @Test func aLateLeaseHolderIsHonouredUntilRescued() throws {
        // Past expiry but not yet swept: the holder's writes still count (nobody else has the task).
        let transition = try TaskStateMachine.apply(.complete(leaseID: Self.held), to: Self.state(.processing)).get()
        #expect(transition.lifecycle.status == .succeeded)
    }

    @Test func aZombieCannotWriteAfterItsTaskWasRescuedAndReclaimed() throws {
        let rescued = try TaskStateMachine.apply(.leaseExpired(now: Self.expiry.addingTimeInterval(1)), to: Self.state(.processing)).get()
        #expect(TaskStateMachine.apply(.complete(leaseID: Self.held), to: rescued.lifecycle) == .failure(.notProcessing(.queued)))
        let reclaimed = try TaskStateMachine.apply(
            .claim(leaseID: Self.other, expiresAt: Self.expiry.addingTimeInterval(60)), to: rescued.lifecycle
        ).get()
        #expect(reclaimed.lifecycle.attempt == 2)
        for kind in [Kind.heartbeat, .complete, .failRetryable, .failFatal, .release] {
            #expect(TaskStateMachine.apply(kind.event(lease: Self.held), to: reclaimed.lifecycle) == .failure(.leaseMismatch))
        }
    }

    @Test func orphansAreRequeuedEvenBeforeTheirLeaseExpires() throws {
        let transition = try TaskStateMachine.apply(.orphaned, to: Self.state(.processing, attempt: 1)).get()
        #expect(transition.lifecycle == TaskLifecycle(status: .queued, attempt: 1, maxAttempts: 3))
        #expect(transition.endedAttempt == .expired)
        let last = try TaskStateMachine.apply(.orphaned, to: Self.state(.processing, attempt: 3)).get()
        #expect(last.lifecycle.status == .failed)
        #expect(last.lifecycle.reason == "the worker restarted during attempt 3 of 3 (attempts exhausted)")
    }

    @Test func cancelEndsARunningAttempt() throws {
        let running = try TaskStateMachine.apply(.cancel, to: Self.state(.processing)).get()
        #expect(running.lifecycle == TaskLifecycle(status: .canceled, attempt: 1, maxAttempts: 3, reason: "canceled"))
        #expect(running.endedAttempt == .canceled)
        let waiting = try TaskStateMachine.apply(.cancel, to: Self.state(.queued)).get()
        #expect(waiting.endedAttempt == nil)
        #expect(waiting.lifecycle.reason == TaskStateMachine.canceledReason)
    }

    @Test func aTaskThatAlwaysExpiresFailsAfterMaxAttempts() throws {
        var lifecycle = TaskLifecycle.queued(maxAttempts: 3)
        var now = Self.t0
        for attempt in 1...3 {
            lifecycle = try TaskStateMachine.apply(.claim(leaseID: UUID(), expiresAt: now.addingTimeInterval(30)), to: lifecycle).get().lifecycle
            #expect(lifecycle.attempt == attempt)
            now = now.addingTimeInterval(31)
            lifecycle = try TaskStateMachine.apply(.leaseExpired(now: now), to: lifecycle).get().lifecycle
        }
        #expect(lifecycle.status == .failed)
        #expect(lifecycle.attempt == 3)
    }

    @Test func aTaskAProviderAcceptedIsFollowedAgainWithoutUsingAnAttemptWhenItsWorkerIsLost() throws {
        let lease = TaskLeaseFacts(leaseID: Self.held, expiresAt: Self.expiry)
        // The last attempt: an ordinary task would fail; a followed one goes back, its attempt un-counted.
        let followed = TaskLifecycle(status: .processing, attempt: 3, maxAttempts: 3, lease: lease, followsUpstream: true)
        for event in [TaskEvent.leaseExpired(now: Self.expiry.addingTimeInterval(1)), .orphaned] {
            let transition = try TaskStateMachine.apply(event, to: followed).get()
            #expect(transition.lifecycle.status == .queued)
            #expect(transition.lifecycle.attempt == 2)
            #expect(transition.lifecycle.isConsistent)
            #expect(transition.endedAttempt == .expired)
        }
        // A failure it reports itself still counts.
        let failed = try TaskStateMachine.apply(.fail(leaseID: Self.held, reason: "download", retryable: true), to: followed).get()
        #expect(failed.lifecycle.status == .failed)
        // And the same facts without the flag fail as before.
        var plain = followed
        plain.followsUpstream = false
        #expect(try TaskStateMachine.apply(.orphaned, to: plain).get().lifecycle.status == .failed)
    }
}
