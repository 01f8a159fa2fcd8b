import ArgumentParser
import Foundation
import KinemaCore

/// `kinema worker-token`: create, list and revoke remote workers' tokens. Secrets are shown once and stored only as hashes.
struct WorkerTokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker-token",
        abstract: "Manage worker tokens (credentials of remote workers; distinct from API keys).",
        subcommands: [Create.self, ListCredentials<WorkerTokenCommands>.self, RevokeCredential<WorkerTokenCommands>.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a worker token; the secret is printed alone on the last line, once.")

        @Option(help: "A name for the token, e.g. the machine it is for (default 'worker').")
        var name: String = "worker"

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard (1...128).contains(name.count) else { throw CLIError("--name must be 1 to 128 characters.") }
            try await CredentialCommands.create(.workerToken, owner: name, store: store)
        }
    }
}
