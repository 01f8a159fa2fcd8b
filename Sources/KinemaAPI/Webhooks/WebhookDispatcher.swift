import Foundation
import KinemaAPIModels
import KinemaCore
import KinemaFetch
import KinemaStore
import Logging
import Metrics
import ServiceLifecycle

/// Delivery settings (`kinema serve --webhook-…`).
public struct WebhookConfiguration: Sendable {
    /// Attempts per event before it is recorded `failed` (`--webhook-max-attempts`).
    public var maxAttempts: Int = 6
    /// The wait after the first failed attempt, doubling after each further one (`--webhook-backoff`).
    public var firstBackoff: TimeInterval = 30
    /// The longest wait between two attempts.
    public var maxBackoff: TimeInterval = 3600
    /// One attempt's time cap, connection included (the contract's 5 s; `--webhook-timeout-seconds`).
    public var timeout: Duration = .seconds(5)
    /// How often an idle dispatcher looks for due events.
    public var pollInterval: Duration = .seconds(1)
    /// Deliveries in flight at once on one node.
    public var concurrency: Int = 32
    /// How much of a receiver's answer is read (the rest is dropped unread).
    public var maxAnswerBytes: Int = 64 * 1024

    public init() {}

    /// The wait after `attempts` failed attempts (≥ 1): `firstBackoff · 2^(attempts−1)` scaled by `jitter` (0.8…1.2
    /// in use, so receivers that failed together are not retried together), never more than `maxBackoff`.
    public func backoff(afterAttempts attempts: Int, jitter: Double) -> TimeInterval {
        let doubled = firstBackoff * pow(2, Double(max(0, min(attempts - 1, 40))))
        return min(doubled * jitter, maxBackoff)
    }
}

/// Delivers the webhook outbox: claims due events, POSTs each once per claim, records the attempt.
///
/// Runs beside the workers and never blocks one: a task's terminal transition only writes the outbox row (in its own
/// transaction, by the store's trigger). Every node runs one; a claim lasts well past one attempt's time cap, so an
/// event is attempted by one node at a time, and a node that dies mid-attempt leaves it to another after the claim.
struct WebhookDispatcher: Service {
    let store: any TaskStore
    let links: ResultLinks
    let configuration: WebhookConfiguration
    let fetcher: SafeFetcher
    let claimer: String
    let logger: Logger

    init(store: any TaskStore, links: ResultLinks, configuration: WebhookConfiguration, allow: [IPNetwork], nodeID: String, logger: Logger) {
        self.store = store
        self.links = links
        self.configuration = configuration
        var fetch = SafeFetcher.Configuration(allow: allow, maxBytes: configuration.maxAnswerBytes, timeout: configuration.timeout, maxRedirects: 0)
        fetch.subject = "webhook"
        fetch.accept = "*/*"
        self.fetcher = SafeFetcher(configuration: fetch)
        self.claimer = "\(nodeID)/webhooks/\(UUID().uuidString.lowercased())"
        self.logger = logger
    }

    /// Long enough that an attempt (at most `timeout`) always ends inside its claim.
    var claimSeconds: TimeInterval { max(60, configuration.timeout.timeInterval * 4) }

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            let batch: [WebhookDelivery]
            do {
                batch = try await store.claimWebhooks(
                    claimer: claimer, limit: configuration.concurrency, claimFor: claimSeconds, now: Date())
            } catch {
                logger.error("webhook claim failed", metadata: ["error": "\(error)"])
                batch = []
            }
            if batch.isEmpty {
                await cancelWhenGracefulShutdown { try? await Task.sleep(for: configuration.pollInterval) }
                continue
            }
            // A started attempt runs to its end (at most `timeout`), so its outcome is recorded even during shutdown.
            await withTaskGroup(of: Void.self) { group in
                for delivery in batch { group.addTask { await deliver(delivery) } }
            }
        }
    }

    /// One attempt: the task's result body at this moment (a freshly signed video URL), signed with the tenant's
    /// secrets, POSTed once; then the outcome recorded.
    func deliver(_ delivery: WebhookDelivery) async {
        var meta: Logger.Metadata = ["task": "\(delivery.taskID.uuidString.lowercased())", "webhook_id": "\(delivery.webhookID)"]
        let outcome: WebhookAttemptOutcome
        do {
            outcome = try await attempt(delivery)
        } catch {
            // The store failed while preparing: nothing was sent; the claim expires and the event is tried again.
            logger.error("webhook not sent: the store failed", metadata: meta.merging(["error": "\(error)"]) { $1 })
            return
        }
        let recorded = (try? await store.recordWebhookAttempt(webhookID: delivery.webhookID, claimer: claimer, outcome: outcome, now: Date()))
        meta["attempt"] = "\(delivery.attempts + 1)"
        let name: String
        switch outcome {
        case .delivered: name = "delivered"
        case .retry: name = "retry"
        case .failed: name = "failed"
        }
        Counter(label: "kinema_webhook_deliveries_total", dimensions: [("outcome", name)]).increment()
        switch outcome {
        case .delivered(let code):
            logger.info("webhook delivered", metadata: meta.merging(["status": "\(code)"]) { $1 })
        case .retry(let at, _, let error):
            logger.notice(
                "webhook attempt failed; will retry",
                metadata: meta.merging(["error": "\(error)", "retry_in_s": "\(Int(at.timeIntervalSinceNow.rounded()))"]) { $1 })
        case .failed(_, let error):
            logger.warning("webhook failed for good", metadata: meta.merging(["error": "\(error)"]) { $1 })
        }
        if recorded != true { logger.warning("webhook attempt not recorded: the claim was lost", metadata: meta) }
    }

    func attempt(_ delivery: WebhookDelivery) async throws -> WebhookAttemptOutcome {
        let now = Date()
        guard let task = try await store.taskStatus(id: delivery.taskID, tenant: delivery.tenant) else {
            return .failed(statusCode: nil, error: "the task no longer exists")
        }
        let body = Self.envelope(event: delivery.eventType, payload: TaskResultBody(task, links: links, now: now).jsonBytes())
        let secrets = try await tenantSecrets(delivery.tenant, now: now)
        let timestamp = Int64(now.timeIntervalSince1970.rounded(.down))
        let headers = [
            ("Content-Type", "application/json"),
            ("webhook-id", delivery.webhookID),
            ("webhook-timestamp", "\(timestamp)"),
            ("webhook-signature", WebhookSignature.header(id: delivery.webhookID, timestamp: timestamp, body: body, secrets: secrets)),
        ]
        let attempts = delivery.attempts + 1
        let statusCode: Int?
        let problem: String
        do {
            let answer = try await fetcher.post(delivery.url, body: Data(body), headers: headers)
            if (200...299).contains(answer.status) { return .delivered(statusCode: answer.status) }
            statusCode = answer.status
            problem =
                (300...399).contains(answer.status)
                ? "HTTP \(answer.status): a redirect, which is never followed" : "HTTP \(answer.status): \(Self.excerpt(answer.body))"
        } catch {
            // An address the rules refuse, or a URL that cannot be requested, will not change by waiting.
            if [.refusedAddress, .invalidURL, .unsupportedScheme].contains(error.code) {
                return .failed(statusCode: nil, error: error.message)
            }
            statusCode = nil
            problem = error.message
        }
        if attempts >= configuration.maxAttempts { return .failed(statusCode: statusCode, error: problem) }
        let wait = configuration.backoff(afterAttempts: attempts, jitter: Double.random(in: 0.8...1.2))
        return .retry(at: Date().addingTimeInterval(wait), statusCode: statusCode, error: problem)
    }

    /// The tenant's signing secrets, made on first use (concurrent nodes agree on one: the first stored wins).
    func tenantSecrets(_ tenant: String, now: Date) async throws -> [WebhookSecret] {
        var stored = try await store.webhookSecrets(tenant: tenant, now: now)
        if stored == nil {
            stored = try await store.storeWebhookSecret(tenant: tenant, secret: WebhookSecret.generate().text, rotate: false, now: now)
        }
        let secrets = (stored?.active(now: now) ?? []).compactMap(WebhookSecret.init)
        guard !secrets.isEmpty else { throw StoreError(.corrupt, "tenant \(tenant) has no readable webhook secret") }
        return secrets
    }

    /// `{"event_type": …, "payload": <the Task Result body>}`.
    static func envelope(event: String, payload: [UInt8]) -> [UInt8] {
        var out = JSONBytes(capacity: payload.count + 64)
        out.object { o in
            o.key("event_type")
            o.string(event)
            o.key("payload")
            o.raw(payload)
        }
        return out.bytes
    }

    /// The start of a receiver's answer, printable, for `last_error`.
    static func excerpt(_ body: Data) -> String {
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        let cleaned = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        return cleaned.isEmpty ? "(no body)" : cleaned
    }
}
