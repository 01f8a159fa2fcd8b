import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaStore

/// `kinema worker-token`: create, list and revoke remote workers' tokens. Secrets are shown once and stored only as hashes.
struct WorkerTokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker-token",
        abstract: "Manage worker tokens (credentials of remote workers; distinct from API keys).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a worker token; the secret is printed alone on the last line, once.")

        @Option(help: "A name for the token, e.g. the machine it is for (default 'worker').")
        var name: String = "worker"

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard (1...128).contains(name.count) else { throw CLIError("--name must be 1 to 128 characters.") }
            let secret = WorkerToken.generate()
            let record = WorkerTokenRecord(
                id: UUID().uuidString.lowercased(), name: name, hash: WorkerToken.hash(secret),
                prefix: WorkerToken.displayPrefix(secret), createdAt: Date(), revokedAt: nil)
            try await store.withStore { try await $0.insertWorkerToken(record) }
            print("Created worker token \(record.id) ('\(name)'). The secret is shown only now:")
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List worker tokens (id, name, prefix, created, revoked).")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let tokens = try await store.withStore { try await $0.listWorkerTokens() }
            let iso = ISO8601DateFormatter()
            print("id\tname\tprefix\tcreated\trevoked")
            for t in tokens {
                print("\(t.id)\t\(t.name)\t\(t.prefix)…\t\(iso.string(from: t.createdAt))\t\(t.revokedAt.map { iso.string(from: $0) } ?? "-")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a worker token by id or by its shown prefix.")

        @Argument(help: "Token id or prefix.")
        var token: String

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let token = self.token
            guard try await store.withStore({ try await $0.revokeWorkerToken(idOrPrefix: token, now: Date()) }) else {
                throw CLIError("No worker token matches '\(token)'.")
            }
            print("Revoked \(token).")
        }
    }
}
