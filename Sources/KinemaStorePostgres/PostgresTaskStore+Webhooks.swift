import Foundation
import KinemaStore
import PostgresNIO

/// The webhook outbox (rows written by the `tasks_webhook_outbox` trigger) and the tenants' signing secrets.
extension PostgresTaskStore {
    static let deliveryColumns =
        "webhook_id, task_id, tenant, url, event_type, status, attempts, last_status_code, last_error, next_attempt_at, created_at"

    static func delivery(_ row: PostgresRow) throws -> WebhookDelivery {
        let row = row.makeRandomAccess()
        return try PostgresTaskRow.readable {
            let statusText = try row["status"].decode(String.self)
            guard let status = WebhookDelivery.Status(rawValue: statusText) else {
                throw StoreError(.corrupt, "webhook_deliveries.status holds unknown value \(statusText)")
            }
            return WebhookDelivery(
                webhookID: try row["webhook_id"].decode(String.self), taskID: try row["task_id"].decode(UUID.self),
                tenant: try row["tenant"].decode(String.self), url: try row["url"].decode(String.self),
                eventType: try row["event_type"].decode(String.self), status: status, attempts: try row["attempts"].decode(Int.self),
                lastStatusCode: try row["last_status_code"].decode(Int?.self), lastError: try row["last_error"].decode(String?.self),
                nextAttemptAt: try row["next_attempt_at"].decode(Int64?.self).map(PostgresTaskRow.date),
                createdAt: PostgresTaskRow.date(try row["created_at"].decode(Int64.self)))
        }
    }

    public func claimWebhooks(claimer: String, limit: Int, claimFor: TimeInterval, now: Date) async throws -> [WebhookDelivery] {
        let nowMs = PostgresTaskRow.millis(now)
        let until = PostgresTaskRow.millis(now.addingTimeInterval(claimFor))
        // SKIP LOCKED: dispatchers on other nodes take other rows instead of waiting on these.
        return try await rows(
            """
            UPDATE webhook_deliveries SET claimed_by = \(claimer), claimed_until = \(until)
            WHERE webhook_id IN (
                SELECT webhook_id FROM webhook_deliveries
                WHERE status = 'pending' AND next_attempt_at <= \(nowMs) AND (claimed_until IS NULL OR claimed_until <= \(nowMs))
                ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: Self.deliveryColumns)
            """
        ).map(Self.delivery).sorted { ($0.nextAttemptAt ?? .distantPast) < ($1.nextAttemptAt ?? .distantPast) }
    }

    public func recordWebhookAttempt(webhookID: String, claimer: String, outcome: WebhookAttemptOutcome, now: Date) async throws -> Bool {
        let status: String
        let next: Int64?
        let code: Int?
        let error: String?
        switch outcome {
        case .delivered(let c): (status, next, code, error) = ("delivered", nil, c, nil)
        case .retry(let at, let c, let e): (status, next, code, error) = ("pending", PostgresTaskRow.millis(at), c, e)
        case .failed(let c, let e): (status, next, code, error) = ("failed", nil, c, e)
        }
        return try await !rows(
            """
            UPDATE webhook_deliveries
            SET status = \(status), next_attempt_at = \(next), last_status_code = \(code), last_error = \(error),
                attempts = attempts + 1, claimed_by = NULL, claimed_until = NULL
            WHERE webhook_id = \(webhookID) AND claimed_by = \(claimer) AND status = 'pending'
            RETURNING 1
            """
        ).isEmpty
    }

    public func webhookDeliveries(taskID: UUID) async throws -> [WebhookDelivery] {
        try await rows(
            "SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries WHERE task_id = \(taskID) ORDER BY created_at, webhook_id"
        ).map(Self.delivery)
    }

    public func nextWebhookDue() async throws -> Date? {
        try await rows("SELECT min(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'").first.flatMap { row in
            try PostgresTaskRow.readable { try row.decode(Int64?.self) }.map(PostgresTaskRow.date)
        }
    }

    public func webhookSecrets(tenant: String, now: Date) async throws -> WebhookSecrets? {
        try await rows("SELECT secret, previous, previous_until FROM webhook_secrets WHERE tenant = \(tenant)").first.map(Self.secrets)
    }

    static func secrets(_ row: PostgresRow) throws -> WebhookSecrets {
        let row = row.makeRandomAccess()
        return try PostgresTaskRow.readable {
            WebhookSecrets(
                current: try row["secret"].decode(String.self), previous: try row["previous"].decode(String?.self),
                previousUntil: try row["previous_until"].decode(Int64?.self).map(PostgresTaskRow.date))
        }
    }

    public func storeWebhookSecret(tenant: String, secret: String, rotate: Bool, now: Date) async throws -> WebhookSecrets {
        let nowMs = PostgresTaskRow.millis(now)
        let until = PostgresTaskRow.millis(now.addingTimeInterval(WebhookSecrets.rotationOverlap))
        let logger = self.logger
        return try await transaction { connection in
            if rotate {
                _ = try await connection.query(
                    """
                    UPDATE webhook_secrets SET previous = secret, previous_until = \(until), secret = \(secret), created_at = \(nowMs)
                    WHERE tenant = \(tenant)
                    """, logger: logger
                ).collect()
            }
            _ = try await connection.query(
                """
                INSERT INTO webhook_secrets (tenant, secret, created_at) VALUES (\(tenant), \(secret), \(nowMs))
                ON CONFLICT (tenant) DO NOTHING
                """, logger: logger
            ).collect()
            let rows = try await connection.query(
                "SELECT secret, previous, previous_until FROM webhook_secrets WHERE tenant = \(tenant)", logger: logger
            ).collect()
            guard let row = rows.first else { throw StoreError(.corrupt, "the webhook secret of tenant \(tenant) was not stored") }
            return try Self.secrets(row)
        }
    }
}
