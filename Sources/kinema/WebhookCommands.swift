import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaStore

/// `kinema serve`'s webhook delivery options.
struct WebhookOptions: ParsableArguments {
    @Option(
        name: .customLong("webhook-max-attempts"),
        help: "Delivery attempts per webhook event before it is recorded failed (env KINEMA_WEBHOOK_MAX_ATTEMPTS, default 6).")
    var maxAttempts: Int?

    @Option(
        name: .customLong("webhook-backoff"),
        help:
            "Seconds before the second attempt, doubling after each failure up to 1 h, with ±20 % jitter; fractions allowed (env KINEMA_WEBHOOK_BACKOFF, default 30)."
    )
    var backoff: Double?

    @Option(
        name: .customLong("webhook-timeout-seconds"),
        help: "One attempt's time cap, connection included (env KINEMA_WEBHOOK_TIMEOUT_SECONDS, default 5, the contract's).")
    var timeout: Double?

    /// The delivery settings these options (or their environment variables) give.
    func configuration() throws -> WebhookConfiguration {
        var config = WebhookConfiguration()
        config.maxAttempts = maxAttempts ?? Env.int("KINEMA_WEBHOOK_MAX_ATTEMPTS") ?? config.maxAttempts
        config.firstBackoff = backoff ?? Env.double("KINEMA_WEBHOOK_BACKOFF") ?? config.firstBackoff
        let seconds = timeout ?? Env.double("KINEMA_WEBHOOK_TIMEOUT_SECONDS") ?? 5
        guard (1...100).contains(config.maxAttempts), (0.01...3600).contains(config.firstBackoff), (0.1...60).contains(seconds) else {
            throw CLIError("--webhook-max-attempts must be 1…100, --webhook-backoff 0.01…3600 and --webhook-timeout-seconds 0.1…60.")
        }
        config.timeout = .milliseconds(Int64(seconds * 1000))
        return config
    }
}

/// `kinema webhooks`: a tenant's signing secret, and a task's deliveries.
struct Webhooks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook signing secrets and deliveries.", subcommands: [Secret.self, List.self])

    struct Secret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a tenant's webhook signing secret (whsec_…) alone on the last line, creating it if there is none.")

        @Option(help: "The tenant (default 'default').")
        var tenant: String = "default"

        @Flag(help: "Make a new secret; for 24 h deliveries carry signatures with both the new and the old one.")
        var rotate = false

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard !tenant.isEmpty, tenant.count <= 128 else { throw CLIError("--tenant must be 1 to 128 characters.") }
            let tenant = self.tenant
            let rotate = self.rotate
            let secrets = try await store.withStore { store in
                try await store.storeWebhookSecret(tenant: tenant, secret: WebhookSecret.generate().text, rotate: rotate, now: Date())
            }
            if rotate, let until = secrets.previousUntil {
                print("Rotated. Deliveries are signed with both secrets until \(ISO8601DateFormatter().string(from: until)).")
            }
            print(secrets.current)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a task's webhook deliveries as JSON (as GET /v3/async/task-webhooks).")

        @Option(help: "The task id.")
        var task: String

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard let id = UUID(uuidString: task) else { throw CLIError("--task \(task) is not a task id (a UUID).") }
            let deliveries = try await store.withStore { store in
                guard try await store.task(id: id) != nil else { throw CLIError("No task \(id.uuidString.lowercased()).") }
                return try await store.webhookDeliveries(taskID: id)
            }
            print(String(decoding: TaskWebhooksBody.json(deliveries), as: UTF8.self))
        }
    }
}
