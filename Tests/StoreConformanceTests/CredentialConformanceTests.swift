import Foundation
import KinemaCore
import KinemaStore
import Testing

/// Credential records (API keys and worker tokens), on every backend, for every kind.
@Suite struct CredentialConformanceTests {
    static let cases: [(StoreBackend, CredentialKind)] = StoreBackend.allCases.flatMap { backend in CredentialKind.allCases.map { (backend, $0) } }

    static func record(
        _ kind: CredentialKind, _ id: String, owner: String = "acme", prefix: String, at seconds: TimeInterval
    ) -> CredentialRecord {
        CredentialRecord(
            kind: kind, id: id, owner: owner, hash: String(repeating: id.first.map(String.init) ?? "0", count: 64),
            prefix: prefix, createdAt: Fixtures.at(seconds)
        )
    }

    @Test(arguments: cases)
    func credentialsAreFoundByHashAndListedOldestFirst(backend: StoreBackend, kind: CredentialKind) async throws {
        try await backend.withStore { store in
            var newer = Self.record(kind, "b-cred", owner: "globex", prefix: "k_bbbb", at: 20)
            newer.defaultEngine = "diffusers" // read back with the record
            let older = Self.record(kind, "a-cred", prefix: "k_aaaa", at: 10)
            try await store.insertCredential(newer)
            try await store.insertCredential(older)

            #expect(try await store.credential(kind, hash: older.hash) == older)
            #expect(try await store.credential(kind, hash: newer.hash) == newer)
            #expect(try await store.credential(kind, hash: String(repeating: "f", count: 64)) == nil)
            #expect(try await store.credentials(kind) == [older, newer])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func oneKindNeverStandsInForAnother(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let token = Self.record(.workerToken, "a-token", owner: "gpu-box", prefix: "kwt_aaaa", at: 1)
            let key = Self.record(.apiKey, "b-key", prefix: "kin_bbbb", at: 2)
            try await store.insertCredential(token)
            try await store.insertCredential(key)
            #expect(try await store.credentials(.apiKey) == [key])
            #expect(try await store.credentials(.workerToken) == [token])
            // Found only under its own kind, revoked only under its own kind.
            #expect(try await store.credential(.apiKey, hash: token.hash) == nil)
            #expect(try await store.credential(.workerToken, hash: key.hash) == nil)
            #expect(try await store.revokeCredential(.workerToken, idOrPrefix: "b-key", now: Fixtures.at(3)) == false)
            #expect(try await store.revokeCredential(.apiKey, idOrPrefix: "kwt_aaaa", now: Fixtures.at(3)) == false)
            #expect(try await store.credential(.apiKey, hash: key.hash)?.revokedAt == nil)
            #expect(try await store.credential(.workerToken, hash: token.hash)?.revokedAt == nil)
        }
    }

    @Test(arguments: cases)
    func aDuplicateIsRejected(backend: StoreBackend, kind: CredentialKind) async throws {
        try await backend.withStore { store in
            let record = Self.record(kind, "a-cred", prefix: "k_aaaa", at: 10)
            try await store.insertCredential(record)
            var sameID = Self.record(kind, "a-cred", prefix: "k_other", at: 11)
            sameID.hash = String(repeating: "9", count: 64)
            var sameHash = Self.record(kind, "z-cred", prefix: "k_zzzz", at: 12)
            sameHash.hash = record.hash
            var sameHashOtherKind = Self.record(kind == .apiKey ? .workerToken : .apiKey, "y-cred", prefix: "k_yyyy", at: 13)
            sameHashOtherKind.hash = record.hash
            for duplicate in [sameID, sameHash, sameHashOtherKind] {
                let error = await #expect(throws: StoreError.self) { try await store.insertCredential(duplicate) }
                #expect(error?.code == .duplicateCredential)
            }
            #expect(try await store.credentials(kind) == [record])
        }
    }

    @Test(arguments: cases)
    func credentialsAreRevokedByIDOrPrefix(backend: StoreBackend, kind: CredentialKind) async throws {
        try await backend.withStore { store in
            let a = Self.record(kind, "a-cred", prefix: "k_aaaa", at: 1)
            let b = Self.record(kind, "b-cred", prefix: "k_bbbb", at: 2)
            let c = Self.record(kind, "c-cred", prefix: "k_cccc", at: 3)
            for record in [a, b, c] { try await store.insertCredential(record) }

            #expect(try await store.revokeCredential(kind, idOrPrefix: "a-cred", now: Fixtures.at(100)))
            #expect(try await store.revokeCredential(kind, idOrPrefix: "k_bbbb", now: Fixtures.at(101)))
            #expect(try await store.revokeCredential(kind, idOrPrefix: "k_nope", now: Fixtures.at(102)) == false)
            // Revoking twice keeps the first revocation time.
            #expect(try await store.revokeCredential(kind, idOrPrefix: "a-cred", now: Fixtures.at(200)))

            #expect(try await store.credential(kind, hash: a.hash)?.revokedAt == Fixtures.at(100))
            #expect(try await store.credential(kind, hash: b.hash)?.revokedAt == Fixtures.at(101))
            #expect(try await store.credential(kind, hash: c.hash)?.revokedAt == nil)
        }
    }

    @Test(arguments: cases)
    func aSharedPrefixRevokesNothing(backend: StoreBackend, kind: CredentialKind) async throws {
        try await backend.withStore { store in
            let a = Self.record(kind, "a-cred", prefix: "k_same", at: 1)
            let b = Self.record(kind, "b-cred", owner: "globex", prefix: "k_same", at: 2)
            try await store.insertCredential(a)
            try await store.insertCredential(b)
            #expect(try await store.revokeCredential(kind, idOrPrefix: "k_same", now: Fixtures.at(10)) == false)
            #expect(try await store.credentials(kind).allSatisfy { $0.revokedAt == nil })
            #expect(try await store.revokeCredential(kind, idOrPrefix: "b-cred", now: Fixtures.at(11)))
            #expect(try await store.credential(kind, hash: a.hash)?.revokedAt == nil)
        }
    }

    @Test(arguments: cases)
    func credentialsSurviveReopening(backend: StoreBackend, kind: CredentialKind) async throws {
        try await backend.withLocation { location in
            let record = Self.record(kind, "a-cred", prefix: "k_aaaa", at: 1)
            let first = try location.open()
            try await first.insertCredential(record)
            try location.close(first)
            let second = try location.open()
            defer { try? location.close(second) }
            #expect(try await second.credential(kind, hash: record.hash) == record)
        }
    }
}
