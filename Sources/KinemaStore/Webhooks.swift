import Foundation

/// One webhook event of a task and where its delivery stands (the outbox row).
///
/// The store writes the row in the same transaction that makes a task with `extra.webhook.url` terminal (a database
/// trigger on the task's status, so no path to a terminal status can forget it): a crash at any moment loses no
/// event. Dispatchers claim due rows for a short time (one node at a time delivers an event) and record each attempt.
public struct WebhookDelivery: Sendable, Equatable {
    public enum Status: String, Sendable, CaseIterable {
        case pending, delivered, failed
    }

    /// The Standard Webhooks `webhook-id`: `msg_` and the task id's hex digits, the same on every retry.
    public var webhookID: String
    public var taskID: UUID
    public var tenant: String
    public var url: String
    public var eventType: String
    public var status: Status
    /// Attempts made so far.
    public var attempts: Int
    public var lastStatusCode: Int?
    public var lastError: String?
    /// When the next attempt is due; `nil` once delivered or failed.
    public var nextAttemptAt: Date?
    public var createdAt: Date

    public init(
        webhookID: String, taskID: UUID, tenant: String, url: String, eventType: String, status: Status, attempts: Int,
        lastStatusCode: Int?, lastError: String?, nextAttemptAt: Date?, createdAt: Date
    ) {
        self.webhookID = webhookID
        self.taskID = taskID
        self.tenant = tenant
        self.url = url
        self.eventType = eventType
        self.status = status
        self.attempts = attempts
        self.lastStatusCode = lastStatusCode
        self.lastError = lastError
        self.nextAttemptAt = nextAttemptAt
        self.createdAt = createdAt
    }

    /// The one event type: a task reached a terminal status.
    public static let taskResultEvent = "ASYNC_TASK_RESULT"

    /// The `webhook-id` of a task's event.
    public static func webhookID(taskID: UUID) -> String {
        "msg_" + taskID.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }
}

/// How one delivery attempt ended.
public enum WebhookAttemptOutcome: Sendable, Equatable {
    /// A 2xx answer: done.
    case delivered(statusCode: Int)
    /// Failed; try again at `at`.
    case retry(at: Date, statusCode: Int?, error: String)
    /// Failed for good (attempts used up, or a target that can never be reached).
    case failed(statusCode: Int?, error: String)
}

/// A tenant's webhook secrets: the current one, and after a rotation the previous one until `previousUntil`.
public struct WebhookSecrets: Sendable, Equatable {
    public var current: String
    public var previous: String?
    public var previousUntil: Date?

    public init(current: String, previous: String? = nil, previousUntil: Date? = nil) {
        self.current = current
        self.previous = previous
        self.previousUntil = previousUntil
    }

    /// The secrets deliveries are signed with at `now`: the current one, and the previous one while it is kept.
    public func active(now: Date) -> [String] {
        if let previous, let previousUntil, previousUntil > now { return [current, previous] }
        return [current]
    }

    /// How long a rotated-out secret keeps signing deliveries.
    public static let rotationOverlap: TimeInterval = 24 * 3600
}

/// The webhook outbox and secrets, in the task store (both backends; one conformance suite).
public protocol WebhookStore: Sendable {
    /// Up to `limit` pending deliveries due at `now` and not claimed by anyone else, now claimed by `claimer`
    /// until `now + claimFor` (then another dispatcher may take them: a dispatcher that died loses nothing).
    func claimWebhooks(claimer: String, limit: Int, claimFor: TimeInterval, now: Date) async throws -> [WebhookDelivery]
    /// Records an attempt on a delivery `claimer` holds; `false` (nothing changed) when it no longer holds it.
    func recordWebhookAttempt(webhookID: String, claimer: String, outcome: WebhookAttemptOutcome, now: Date) async throws -> Bool
    /// A task's deliveries (none until it is terminal, or when it has no webhook).
    func webhookDeliveries(taskID: UUID) async throws -> [WebhookDelivery]
    /// When the earliest pending delivery is due (claimed or not), or `nil` when none is pending.
    func nextWebhookDue() async throws -> Date?
    /// The tenant's secrets, or `nil` when it has none yet.
    func webhookSecrets(tenant: String, now: Date) async throws -> WebhookSecrets?
    /// Stores `secret` as the tenant's secret. Without `rotate`, only when it has none (concurrent callers agree on one:
    /// the first stored wins and is returned). With `rotate`, the old current secret is kept as `previous` until
    /// `now + WebhookSecrets.rotationOverlap`.
    func storeWebhookSecret(tenant: String, secret: String, rotate: Bool, now: Date) async throws -> WebhookSecrets
}
