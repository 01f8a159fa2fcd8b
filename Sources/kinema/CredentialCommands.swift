import ArgumentParser
import Foundation
import KinemaCore
import KinemaStore

/// What `kinema keys` and `kinema worker-token` share: both manage credentials (`CredentialKind`), whose secrets
/// are shown once and stored only as hashes; the commands differ only in words and in the owner's name.
enum CredentialCommands {
    /// Makes a credential of `kind` for `owner` and prints its secret alone on the last line.
    static func create(_ kind: CredentialKind, owner: String, defaultEngine: String? = nil, store: StoreOptions) async throws {
        let secret = Credential.generate(kind)
        let record = CredentialRecord.new(kind, secret: secret, owner: owner, defaultEngine: defaultEngine)
        try await store.withStore { try await $0.insertCredential(record) }
        switch kind {
        case .apiKey: print("Created key \(record.id) for tenant '\(owner)'. The secret is shown only now:")
        case .workerToken: print("Created worker token \(record.id) ('\(owner)'). The secret is shown only now:")
        }
        print(secret)
    }

    /// Prints every credential of `kind`, one tab-separated line each, under a header naming the owner column.
    static func list(_ kind: CredentialKind, store: StoreOptions) async throws {
        let records = try await store.withStore { try await $0.credentials(kind) }
        let iso = ISO8601DateFormatter()
        print(kind == .apiKey ? "id\ttenant\tprefix\tcreated\trevoked\tengine" : "id\tname\tprefix\tcreated\trevoked")
        for r in records {
            var line = "\(r.id)\t\(r.owner)\t\(r.prefix)…\t\(iso.string(from: r.createdAt))\t\(r.revokedAt.map { iso.string(from: $0) } ?? "-")"
            if kind == .apiKey { line += "\t\(r.defaultEngine ?? "-")" }
            print(line)
        }
    }

    /// Revokes the credential of `kind` with this id or shown prefix; an error when none (or several) match.
    static func revoke(_ kind: CredentialKind, idOrPrefix: String, store: StoreOptions) async throws {
        guard try await store.withStore({ try await $0.revokeCredential(kind, idOrPrefix: idOrPrefix, now: Date()) }) else {
            throw CLIError(kind == .apiKey ? "No key matches '\(idOrPrefix)'." : "No worker token matches '\(idOrPrefix)'.")
        }
        print("Revoked \(idOrPrefix).")
    }
}

/// Which credentials a generic subcommand manages, and the words its help uses.
protocol CredentialCommandKind {
    static var kind: CredentialKind { get }
}

/// `kinema keys …`
enum APIKeyCommands: CredentialCommandKind {
    static var kind: CredentialKind { .apiKey }
}

/// `kinema worker-token …`
enum WorkerTokenCommands: CredentialCommandKind {
    static var kind: CredentialKind { .workerToken }
}

/// `list`: every credential of one kind (id, owner, prefix, created, revoked; API keys also their default engine).
struct ListCredentials<K: CredentialCommandKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "list",
            abstract: K.kind == .apiKey
                ? "List keys (id, tenant, prefix, created, revoked, default engine)."
                : "List worker tokens (id, name, prefix, created, revoked)."
        )
    }

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await CredentialCommands.list(K.kind, store: store)
    }
}

/// `revoke ID-OR-PREFIX`: revokes one credential of one kind.
struct RevokeCredential<K: CredentialCommandKind>: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "revoke", abstract: "Revoke \(K.kind == .apiKey ? "an" : "a") \(K.kind.noun) by id or by its shown prefix.")
    }

    @Argument(help: "The id or the shown prefix.")
    var idOrPrefix: String

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await CredentialCommands.revoke(K.kind, idOrPrefix: idOrPrefix, store: store)
    }
}
