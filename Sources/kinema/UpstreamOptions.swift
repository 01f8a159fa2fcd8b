import ArgumentParser
import Foundation
import KinemaCore
import KinemaEngines
import KinemaFetch
import Logging

/// `kinema serve` options of the upstream providers (`docs/engines.md`). Secrets are never options: they come from the
/// environment or from `--upstream-credentials`, so `ps` never shows them.
struct UpstreamOptions: ParsableArguments {
    @Option(
        name: .customLong("upstream-concurrency"),
        help:
            "Tasks each upstream provider runs at once on this node, I/O-bound and separate from --workers (env KINEMA_UPSTREAM_CONCURRENCY, default 16)."
    )
    var concurrencyOption: Int?

    @Option(
        name: .customLong("upstream-credentials"),
        help:
            "File of NAME=value lines with KINEMA_NOVITA_API_KEY, KINEMA_KLING_ACCESS_KEY, KINEMA_KLING_SECRET_KEY, KINEMA_FAL_KEY; refused unless mode 0600; the environment wins (env KINEMA_UPSTREAM_CREDENTIALS)."
    )
    var credentialsFile: String?

    @Option(name: .customLong("upstream-novita-url"), help: "Novita's API base (env KINEMA_UPSTREAM_NOVITA_URL, default https://api.novita.ai).")
    var novitaURL: String?

    @Option(
        name: .customLong("upstream-kling-url"),
        help: "Kling's API base (env KINEMA_UPSTREAM_KLING_URL, default https://api-singapore.klingai.com).")
    var klingURL: String?

    @Option(name: .customLong("upstream-kling-model"), help: "Kling's model_name (env KINEMA_UPSTREAM_KLING_MODEL, default kling-v3).")
    var klingModel: String?

    @Option(name: .customLong("upstream-fal-url"), help: "fal's queue base (env KINEMA_UPSTREAM_FAL_URL, default https://queue.fal.run).")
    var falURL: String?

    @Option(
        name: .customLong("upstream-fal-model"),
        help: "fal's model path (env KINEMA_UPSTREAM_FAL_MODEL, default fal-ai/kling-video/v3/standard/image-to-video).")
    var falModel: String?

    @Option(
        name: .customLong("upstream-poll-seconds"),
        help: "Seconds between two polls of one upstream task (env KINEMA_UPSTREAM_POLL_SECONDS, default 5).")
    var pollSeconds: Double?

    @Option(
        name: .customLong("upstream-timeout-seconds"),
        help:
            "Time cap on one upstream poll or lookup in seconds; a submit gets four times as long (env KINEMA_UPSTREAM_TIMEOUT_SECONDS, default 30).")
    var timeoutSeconds: Double?

    @Option(
        name: .customLong("upstream-deadline-minutes"),
        help: "Minutes an upstream task is followed after its submit before a final poll fails it (env KINEMA_UPSTREAM_DEADLINE_MINUTES, default 60)."
    )
    var deadlineMinutes: Double?

    @Option(
        name: .customLong("upstream-backoff-seconds"),
        help:
            "First wait after an upstream rate refusal, 5xx or broken connection; doubles with jitter up to 60 s (env KINEMA_UPSTREAM_BACKOFF_SECONDS, default 2)."
    )
    var backoffSeconds: Double?

    @Option(
        name: .customLong("upstream-pause-seconds"),
        help: "How often a provider paused for an account problem is tried again, in seconds (env KINEMA_UPSTREAM_PAUSE_SECONDS, default 30).")
    var pauseSeconds: Double?

    @Option(
        name: .customLong("upstream-fal-images"),
        help:
            "How images reach fal: data (inside the submit, as data: URIs) or url (our own signed links, which fal downloads; needs --public-url reachable by fal) (env KINEMA_UPSTREAM_FAL_IMAGES, default data)."
    )
    var falImages: String?

    func concurrency() throws -> Int {
        let value = concurrencyOption ?? Env.int("KINEMA_UPSTREAM_CONCURRENCY") ?? 16
        guard (1...4096).contains(value) else { throw CLIError("--upstream-concurrency must be 1…4096.") }
        return value
    }

    /// The gateway for the upstream providers among `enabled`, or `nil` when none is.
    func gateway(
        enabled: [String], allowFetchFrom: [IPNetwork], publicURL: String?, logger: Logger, signingSecret: () throws -> [UInt8]
    ) throws -> UpstreamGateway? {
        let providers = enabled.filter { UpstreamConfiguration.providers.contains($0) }
        guard !providers.isEmpty else { return nil }
        var configuration = UpstreamConfiguration()
        configuration.novitaURL = novitaURL ?? Env.string("KINEMA_UPSTREAM_NOVITA_URL") ?? configuration.novitaURL
        configuration.klingURL = klingURL ?? Env.string("KINEMA_UPSTREAM_KLING_URL") ?? configuration.klingURL
        configuration.klingModel = klingModel ?? Env.string("KINEMA_UPSTREAM_KLING_MODEL") ?? configuration.klingModel
        configuration.falURL = falURL ?? Env.string("KINEMA_UPSTREAM_FAL_URL") ?? configuration.falURL
        configuration.falModel = falModel ?? Env.string("KINEMA_UPSTREAM_FAL_MODEL") ?? configuration.falModel
        var settings = configuration.settings
        let poll = pollSeconds ?? Env.double("KINEMA_UPSTREAM_POLL_SECONDS") ?? 5
        let timeout = timeoutSeconds ?? Env.double("KINEMA_UPSTREAM_TIMEOUT_SECONDS") ?? 30
        let deadline = deadlineMinutes ?? Env.double("KINEMA_UPSTREAM_DEADLINE_MINUTES") ?? 60
        let backoff = backoffSeconds ?? Env.double("KINEMA_UPSTREAM_BACKOFF_SECONDS") ?? 2
        let pause = pauseSeconds ?? Env.double("KINEMA_UPSTREAM_PAUSE_SECONDS") ?? 30
        guard (0.05...3600).contains(poll), (0.1...3600).contains(timeout), deadline > 0, deadline <= 7 * 24 * 60,
            (0.01...600).contains(backoff), (0.1...3600).contains(pause)
        else {
            throw CLIError(
                "--upstream-poll-seconds must be 0.05…3600, --upstream-timeout-seconds 0.1…3600, --upstream-deadline-minutes up to a week, --upstream-backoff-seconds 0.01…600 and --upstream-pause-seconds 0.1…3600."
            )
        }
        settings.pollInterval = .milliseconds(Int64(poll * 1000))
        settings.requestTimeout = .milliseconds(Int64(timeout * 1000))
        settings.submitTimeout = .milliseconds(Int64(timeout * 4000))
        settings.deadline = .milliseconds(Int64(deadline * 60_000))
        settings.backoff = .milliseconds(Int64(backoff * 1000))
        settings.pauseProbe = .milliseconds(Int64(pause * 1000))
        settings.fetch.allow = allowFetchFrom
        configuration.settings = settings
        switch falImages ?? Env.string("KINEMA_UPSTREAM_FAL_IMAGES") ?? "data" {
        case "data":
            break
        case "url":
            guard let publicURL else {
                throw CLIError("--upstream-fal-images url needs --public-url: the address fal downloads the images from.")
            }
            // Valid while the task may still be followed (fal fetches the image when it starts the task).
            let signer = URLSigner(secret: try signingSecret())
            let ttl = Int(settings.deadline.components.seconds) + 600
            configuration.falImageLinks = { key in "\(publicURL)/files/\(key)?\(signer.query(key: key, ttl: ttl, now: Date()))" }
        case let other:
            throw CLIError("--upstream-fal-images \(other): choose data or url.")
        }
        let file = credentialsFile ?? Env.string("KINEMA_UPSTREAM_CREDENTIALS")
        do {
            let credentials = try UpstreamCredentials.load(environment: ProcessInfo.processInfo.environment, file: file)
            return try UpstreamGateway(
                enabled: providers, configuration: configuration, credentials: credentials, connectionsPerHost: try concurrency(), logger: logger)
        } catch let error as UpstreamConfigurationError {
            throw CLIError(error.description)
        }
    }
}
