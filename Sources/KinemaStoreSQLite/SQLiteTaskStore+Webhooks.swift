import Foundation
import GRDB
import KinemaCore
import KinemaStore

/// The webhook outbox (rows written by the `tasks_webhook_outbox` trigger) and the tenants' signing secrets.
extension SQLiteTaskStore {
    static let deliveryColumns =
        "webhook_id, task_id, tenant, url, event_type, status, attempts, last_status_code, last_error, next_attempt_at, created_at"

    static func delivery(_ row: Row) throws -> WebhookDelivery {
        let taskText: String = row["task_id"]
        guard let taskID = UUID(uuidString: taskText) else { throw StoreError(.invalidRecord, "webhook row with task id '\(taskText)'") }
        let statusText: String = row["status"]
        guard let status = WebhookDelivery.Status(rawValue: statusText) else {
            throw StoreError(.invalidRecord, "webhook row with status '\(statusText)'")
        }
        let next: Int64? = row["next_attempt_at"]
        return WebhookDelivery(
            webhookID: row["webhook_id"], taskID: taskID, tenant: row["tenant"], url: row["url"], eventType: row["event_type"],
            status: status, attempts: row["attempts"], lastStatusCode: row["last_status_code"], lastError: row["last_error"],
            nextAttemptAt: next.map(TaskRow.date), createdAt: TaskRow.date(row["created_at"]))
    }

    public func claimWebhooks(claimer: String, limit: Int, claimFor: TimeInterval, now: Date) async throws -> [WebhookDelivery] {
        let nowMs = TaskRow.millis(now)
        let until = TaskRow.millis(now.addingTimeInterval(claimFor))
        return try await write { db in
            // One write transaction: no other claimer (process or thread) can take the same rows in between.
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.deliveryColumns) FROM webhook_deliveries
                    WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                    ORDER BY next_attempt_at LIMIT ?
                    """,
                arguments: [nowMs, nowMs, limit])
            let deliveries = try rows.map(Self.delivery)
            for d in deliveries {
                try db.execute(
                    sql: "UPDATE webhook_deliveries SET claimed_by = ?, claimed_until = ? WHERE webhook_id = ?",
                    arguments: [claimer, until, d.webhookID])
            }
            return deliveries
        }
    }

    public func recordWebhookAttempt(webhookID: String, claimer: String, outcome: WebhookAttemptOutcome, now: Date) async throws -> Bool {
        let (status, next, code, error) = Self.columns(of: outcome)
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_deliveries
                    SET status = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?, attempts = attempts + 1,
                        claimed_by = NULL, claimed_until = NULL
                    WHERE webhook_id = ? AND claimed_by = ? AND status = 'pending'
                    """,
                arguments: [status, next, code, error, webhookID, claimer])
            return db.changesCount == 1
        }
    }

    /// The columns an outcome sets: status, next attempt (ms), last status code, last error.
    static func columns(of outcome: WebhookAttemptOutcome) -> (String, Int64?, Int?, String?) {
        switch outcome {
        case .delivered(let code): ("delivered", nil, code, nil)
        case .retry(let at, let code, let error): ("pending", TaskRow.millis(at), code, error)
        case .failed(let code, let error): ("failed", nil, code, error)
        }
    }

    public func webhookDeliveries(taskID: UUID) async throws -> [WebhookDelivery] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT \(Self.deliveryColumns) FROM webhook_deliveries WHERE task_id = ? ORDER BY created_at, webhook_id",
                arguments: [taskID.uuidString]
            ).map(Self.delivery)
        }
    }

    public func nextWebhookDue() async throws -> Date? {
        try await read { db in
            try Int64.fetchOne(db, sql: "SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'").map(TaskRow.date)
        }
    }

    public func webhookSecrets(tenant: String, now: Date) async throws -> WebhookSecrets? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT secret, previous, previous_until FROM webhook_secrets WHERE tenant = ?", arguments: [tenant])
                .map(Self.secrets)
        }
    }

    static func secrets(_ row: Row) -> WebhookSecrets {
        let until: Int64? = row["previous_until"]
        return WebhookSecrets(current: row["secret"], previous: row["previous"], previousUntil: until.map(TaskRow.date))
    }

    public func storeWebhookSecret(tenant: String, secret: String, rotate: Bool, now: Date) async throws -> WebhookSecrets {
        let nowMs = TaskRow.millis(now)
        let until = TaskRow.millis(now.addingTimeInterval(WebhookSecrets.rotationOverlap))
        return try await write { db in
            if rotate {
                try db.execute(
                    sql: """
                        UPDATE webhook_secrets SET previous = secret, previous_until = ?, secret = ?, created_at = ? WHERE tenant = ?
                        """,
                    arguments: [until, secret, nowMs, tenant])
            }
            try db.execute(
                sql: "INSERT OR IGNORE INTO webhook_secrets (tenant, secret, created_at) VALUES (?, ?, ?)", arguments: [tenant, secret, nowMs])
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT secret, previous, previous_until FROM webhook_secrets WHERE tenant = ?", arguments: [tenant])
            else { throw StoreError(.invalidRecord, "the webhook secret of tenant \(tenant) was not stored") }
            return Self.secrets(row)
        }
    }
}
