import ArgumentParser
import Foundation
import KinemaAPI
import KinemaCore
import KinemaStore

/// `kinema keys`: create, list and revoke API keys. Secrets are shown once and stored only as hashes.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys.",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; the secret is printed alone on the last line, once.")

        @Option(help: "Tenant the key belongs to (default 'default').")
        var tenant: String = "default"

        @Option(help: "The engine this key's tasks go to when a request names none (\(EngineNames.known.joined(separator: ", "))); default: the serving node's first --engine.")
        var engine: String?

        @OptionGroup var store: StoreOptions

        func run() async throws {
            guard !tenant.isEmpty, tenant.count <= 128 else { throw CLIError("--tenant must be 1 to 128 characters.") }
            if let engine, !EngineNames.known.contains(engine) {
                throw CLIError("--engine \(engine): unknown engine; choose from \(EngineNames.known.joined(separator: ", ")).")
            }
            let secret = APIKey.generate()
            let record = APIKeyRecord(
                id: UUID().uuidString.lowercased(), tenant: tenant, keyHash: APIKey.hash(secret),
                prefix: APIKey.displayPrefix(secret), createdAt: Date(), revokedAt: nil, defaultEngine: engine)
            try await store.withStore { try await $0.insertAPIKey(record) }
            print("Created key \(record.id) for tenant '\(tenant)'. The secret is shown only now:")
            print(secret)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (id, tenant, prefix, created, revoked, default engine).")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let keys = try await store.withStore { try await $0.listAPIKeys() }
            let iso = ISO8601DateFormatter()
            print("id\ttenant\tprefix\tcreated\trevoked\tengine")
            for k in keys {
                print("\(k.id)\t\(k.tenant)\t\(k.prefix)…\t\(iso.string(from: k.createdAt))\t\(k.revokedAt.map { iso.string(from: $0) } ?? "-")\t\(k.defaultEngine ?? "-")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by id or by its shown prefix.")

        @Argument(help: "Key id or prefix.")
        var key: String

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let key = self.key
            guard try await store.withStore({ try await $0.revokeAPIKey(idOrPrefix: key, now: Date()) }) else {
                throw CLIError("No key matches '\(key)'.")
            }
            print("Revoked \(key).")
        }
    }
}
