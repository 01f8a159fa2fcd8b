import ArgumentParser
import Foundation
import KinemaCore

/// `kinema keys`: create, list and revoke API keys. Secrets are shown once and stored only as hashes.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys.",
        subcommands: [Create.self, ListCredentials<APIKeyCommands>.self, RevokeCredential<APIKeyCommands>.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; the secret is printed alone on the last line, once.")

        @Option(help: "Tenant the key belongs to (default 'default').")
        var tenant: String = "default"

        @Option(
            help:
                "The engine this key's tasks go to when a request names none (\(EngineNames.known.joined(separator: ", "))); default: the serving node's first --engine."
        )
        var engine: String?

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard !tenant.isEmpty, tenant.count <= 128 else { throw CLIError("--tenant must be 1 to 128 characters.") }
            if let engine, !EngineNames.known.contains(engine) {
                throw CLIError("--engine \(engine): unknown engine; choose from \(EngineNames.known.joined(separator: ", ")).")
            }
            try await CredentialCommands.create(.apiKey, owner: tenant, defaultEngine: engine, store: store)
        }
    }
}
