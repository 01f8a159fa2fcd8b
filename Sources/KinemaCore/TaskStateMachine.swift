import Foundation

/// The lease a PROCESSING task is held under: who may write to it, and until when.
public struct TaskLeaseFacts: Sendable, Equatable, Hashable {
    /// Unique per claim; every worker write must present it.
    public var leaseID: UUID
    /// After this instant the lease may be rescued (it stays valid until someone does).
    public var expiresAt: Date

    /// Creates lease facts.
    public init(leaseID: UUID, expiresAt: Date) {
        self.leaseID = leaseID
        self.expiresAt = expiresAt
    }
}

/// The lifecycle facts of one task that decide which transitions are allowed.
///
/// Invariants (also enforced by the stores' CHECK constraints):
/// - `lease != nil` exactly when `status == .processing`;
/// - `0 <= attempt <= maxAttempts`, and a QUEUED task has `attempt < maxAttempts` (it can still be claimed);
/// - a PROCESSING task has `attempt >= 1`;
/// - `reason` is empty unless the task is FAILED or CANCELED.
public struct TaskLifecycle: Sendable, Equatable {
    /// Current status.
    public var status: TaskStatus
    /// Number of the current or last counted attempt (0 before the first claim).
    public var attempt: Int
    /// Claims allowed before an expiring or retryably failing task becomes FAILED.
    public var maxAttempts: Int
    /// The lease while PROCESSING, `nil` otherwise.
    public var lease: TaskLeaseFacts?
    /// Failure reason; empty unless FAILED or CANCELED.
    public var reason: String
    /// Whether the task was sent to a hosted provider (its upstream handle is stored: the id it was accepted under,
    /// or the intent written just before the submit, whose answer may have been lost): a lost lease then hands the
    /// task to the next worker without counting the attempt, which follows the accepted task or reconciles the
    /// submit (Kling: found by our id; others: failed with the lost-submit reason), since giving up would lose a
    /// paid result (the upstream deadline bounds how long it is followed).
    public var followsUpstream: Bool

    /// Creates lifecycle facts.
    public init(
        status: TaskStatus, attempt: Int, maxAttempts: Int, lease: TaskLeaseFacts? = nil, reason: String = "", followsUpstream: Bool = false
    ) {
        self.status = status
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.lease = lease
        self.reason = reason
        self.followsUpstream = followsUpstream
    }

    /// A freshly submitted task.
    public static func queued(maxAttempts: Int) -> TaskLifecycle {
        TaskLifecycle(status: .queued, attempt: 0, maxAttempts: maxAttempts)
    }

    /// Whether these facts satisfy the invariants listed on the type.
    public var isConsistent: Bool {
        guard maxAttempts >= 1, attempt >= 0, attempt <= maxAttempts else { return false }
        guard (lease != nil) == (status == .processing) else { return false }
        if status == .queued, attempt >= maxAttempts { return false }
        if status == .processing, attempt < 1 { return false }
        if status != .failed, status != .canceled, !reason.isEmpty { return false }
        return true
    }
}

/// Something that happens to a task.
public enum TaskEvent: Sendable, Equatable {
    /// A worker takes the QUEUED task under a new lease.
    case claim(leaseID: UUID, expiresAt: Date)
    /// The lease holder reports it is alive and extends its lease.
    case heartbeat(leaseID: UUID, expiresAt: Date)
    /// The lease holder finished successfully.
    case complete(leaseID: UUID)
    /// The lease holder gave up with an error.
    case fail(leaseID: UUID, reason: String, retryable: Bool)
    /// The lease holder hands the task back without using an attempt (graceful shutdown).
    case release(leaseID: UUID)
    /// A sweep found the lease past its expiry at `now`.
    case leaseExpired(now: Date)
    /// The lease holder is known to be gone (a restarted worker reclaiming its orphans), expired or not.
    case orphaned
    /// The owner no longer wants the task.
    case cancel
}

/// How the attempt that was running ended, when an event ends one.
public enum TaskAttemptEnding: String, Sendable, Equatable, CaseIterable {
    /// The holder completed the task.
    case succeeded
    /// The holder reported an error.
    case failed
    /// The lease was lost: it expired, or its worker restarted.
    case expired
    /// The holder handed the task back; the attempt does not count.
    case released
    /// The owner canceled the task while it ran.
    case canceled
}

/// The result of an accepted event: the new facts, and how the running attempt ended (if it did).
public struct TaskTransition: Sendable, Equatable {
    /// The task's facts after the event.
    public var lifecycle: TaskLifecycle
    /// Set when the event ended the running attempt.
    public var endedAttempt: TaskAttemptEnding?

    /// Creates a transition.
    public init(lifecycle: TaskLifecycle, endedAttempt: TaskAttemptEnding?) {
        self.lifecycle = lifecycle
        self.endedAttempt = endedAttempt
    }
}

/// Why an event was refused; the task is unchanged.
public enum TaskTransitionRejection: Error, Sendable, Equatable {
    /// Only a QUEUED task can be claimed.
    case notQueued(TaskStatus)
    /// A lease event arrived for a task that is not PROCESSING (finished, requeued or never claimed).
    case notProcessing(TaskStatus)
    /// The task is PROCESSING under another lease: the sender is a zombie whose lease was rescued.
    case leaseMismatch
    /// An expiry sweep ran before the lease's expiry.
    case leaseNotExpired
    /// A QUEUED task with no attempts left (cannot happen while the invariants hold).
    case attemptsExhausted
    /// The task already reached a terminal status.
    case alreadyTerminal(TaskStatus)
}

/// The task lifecycle as a pure function: `QUEUED → PROCESSING → SUCCEEDED | FAILED`, plus CANCELED.
///
/// Stores apply the same rules in SQL; they call this to decide outcomes (requeue or FAIL) so both
/// agree. Rules:
/// - a claim counts an attempt; a release un-counts it (the next claim reuses the number);
/// - lease events must present the lease the task is held under (fencing); a lease past its expiry
///   is still honoured until a sweep rescues the task;
/// - an expiry, orphaning or retryable failure requeues while attempts remain, and FAILS the task
///   once `attempt == maxAttempts`; a non-retryable failure FAILS at once;
/// - an expiry or orphaning of a task a hosted provider already accepted requeues it un-counted (its follower died;
///   the next one resumes following the same upstream task).
public enum TaskStateMachine {
    /// Reason recorded on a task canceled by its owner.
    public static let canceledReason = "canceled"

    /// Reason recorded when a task's last attempt ended because its lease expired.
    public static func expiredLeaseReason(attempt: Int, maxAttempts: Int) -> String {
        "the worker's lease expired on attempt \(attempt) of \(maxAttempts) (attempts exhausted)"
    }

    /// Reason recorded when a task's last attempt ended because its worker restarted.
    public static func orphanedReason(attempt: Int, maxAttempts: Int) -> String {
        "the worker restarted during attempt \(attempt) of \(maxAttempts) (attempts exhausted)"
    }

    /// Applies `event` to `state`: the resulting facts, or why the event is refused.
    public static func apply(_ event: TaskEvent, to state: TaskLifecycle) -> Result<TaskTransition, TaskTransitionRejection> {
        switch event {
        case let .claim(leaseID, expiresAt):
            guard state.status == .queued else { return .failure(.notQueued(state.status)) }
            guard state.attempt < state.maxAttempts else { return .failure(.attemptsExhausted) }
            var next = state
            next.status = .processing
            next.attempt += 1
            next.lease = TaskLeaseFacts(leaseID: leaseID, expiresAt: expiresAt)
            return .success(TaskTransition(lifecycle: next, endedAttempt: nil))

        case let .heartbeat(leaseID, expiresAt):
            if let rejection = fence(state, leaseID) { return .failure(rejection) }
            var next = state
            next.lease = TaskLeaseFacts(leaseID: leaseID, expiresAt: expiresAt)
            return .success(TaskTransition(lifecycle: next, endedAttempt: nil))

        case let .complete(leaseID):
            if let rejection = fence(state, leaseID) { return .failure(rejection) }
            var next = state
            next.status = .succeeded
            next.lease = nil
            return .success(TaskTransition(lifecycle: next, endedAttempt: .succeeded))

        case let .fail(leaseID, reason, retryable):
            if let rejection = fence(state, leaseID) { return .failure(rejection) }
            if retryable { return .success(requeueOrFail(state, ending: .failed, reason: reason)) }
            return .success(TaskTransition(lifecycle: failed(state, reason: reason), endedAttempt: .failed))

        case let .release(leaseID):
            if let rejection = fence(state, leaseID) { return .failure(rejection) }
            return .success(requeueUncounted(state, ending: .released))

        case let .leaseExpired(now):
            guard state.status == .processing, let lease = state.lease else {
                return .failure(.notProcessing(state.status))
            }
            guard lease.expiresAt < now else { return .failure(.leaseNotExpired) }
            if state.followsUpstream { return .success(requeueUncounted(state, ending: .expired)) }
            let reason = expiredLeaseReason(attempt: state.attempt, maxAttempts: state.maxAttempts)
            return .success(requeueOrFail(state, ending: .expired, reason: reason))

        case .orphaned:
            guard state.status == .processing, state.lease != nil else {
                return .failure(.notProcessing(state.status))
            }
            if state.followsUpstream { return .success(requeueUncounted(state, ending: .expired)) }
            let reason = orphanedReason(attempt: state.attempt, maxAttempts: state.maxAttempts)
            return .success(requeueOrFail(state, ending: .expired, reason: reason))

        case .cancel:
            guard !state.status.isTerminal else { return .failure(.alreadyTerminal(state.status)) }
            var next = state
            next.status = .canceled
            next.lease = nil
            next.reason = canceledReason
            return .success(TaskTransition(lifecycle: next, endedAttempt: state.status == .processing ? .canceled : nil))
        }
    }

    /// Fencing: a lease event is accepted only while the task is PROCESSING under exactly that lease.
    private static func fence(_ state: TaskLifecycle, _ leaseID: UUID) -> TaskTransitionRejection? {
        guard state.status == .processing, let lease = state.lease else { return .notProcessing(state.status) }
        guard lease.leaseID == leaseID else { return .leaseMismatch }
        return nil
    }

    /// The attempt ended without a result: try again while attempts remain, FAIL with `reason` when they are used up.
    private static func requeueOrFail(_ state: TaskLifecycle, ending: TaskAttemptEnding, reason: String) -> TaskTransition {
        if state.attempt < state.maxAttempts {
            var next = state
            next.status = .queued
            next.lease = nil
            return TaskTransition(lifecycle: next, endedAttempt: ending)
        }
        return TaskTransition(lifecycle: failed(state, reason: reason), endedAttempt: ending)
    }

    /// Back to QUEUED with the attempt un-counted (the next claim reuses its number).
    private static func requeueUncounted(_ state: TaskLifecycle, ending: TaskAttemptEnding) -> TaskTransition {
        var next = state
        next.status = .queued
        next.attempt -= 1
        next.lease = nil
        return TaskTransition(lifecycle: next, endedAttempt: ending)
    }

    private static func failed(_ state: TaskLifecycle, reason: String) -> TaskLifecycle {
        var next = state
        next.status = .failed
        next.lease = nil
        // The contract reports a reason for every failure; never store an empty one.
        next.reason = reason.isEmpty ? "the task failed" : reason
        return next
    }
}
