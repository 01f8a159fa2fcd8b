import Foundation
import KinemaStore
import Testing

/// API key records, on every backend.
@Suite struct APIKeyConformanceTests {
    static func key(_ id: String, tenant: String = "acme", prefix: String, at seconds: TimeInterval) -> APIKeyRecord {
        APIKeyRecord(
            id: id, tenant: tenant, keyHash: String(repeating: id.first.map(String.init) ?? "0", count: 64),
            prefix: prefix, createdAt: Fixtures.at(seconds), revokedAt: nil
        )
    }

    @Test(arguments: StoreBackend.allCases)
    func keysAreFoundByHashAndListedOldestFirst(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var newer = Self.key("b-key", tenant: "globex", prefix: "kn_bbbb", at: 20)
            newer.defaultEngine = "diffusers" // read back with the key
            let older = Self.key("a-key", prefix: "kn_aaaa", at: 10)
            try await store.insertAPIKey(newer)
            try await store.insertAPIKey(older)

            #expect(try await store.apiKey(hash: older.keyHash) == older)
            #expect(try await store.apiKey(hash: newer.keyHash) == newer)
            #expect(try await store.apiKey(hash: String(repeating: "f", count: 64)) == nil)
            #expect(try await store.listAPIKeys() == [older, newer])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aDuplicateKeyIsRejected(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let key = Self.key("a-key", prefix: "kn_aaaa", at: 10)
            try await store.insertAPIKey(key)
            var sameID = Self.key("a-key", prefix: "kn_other", at: 11)
            sameID.keyHash = String(repeating: "9", count: 64)
            var sameHash = Self.key("z-key", prefix: "kn_zzzz", at: 12)
            sameHash.keyHash = key.keyHash
            for duplicate in [sameID, sameHash] {
                let error = await #expect(throws: StoreError.self) { try await store.insertAPIKey(duplicate) }
                #expect(error?.code == .duplicateAPIKey)
            }
            #expect(try await store.listAPIKeys() == [key])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func keysAreRevokedByIDOrPrefix(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let a = Self.key("a-key", prefix: "kn_aaaa", at: 1)
            let b = Self.key("b-key", prefix: "kn_bbbb", at: 2)
            let c = Self.key("c-key", prefix: "kn_cccc", at: 3)
            for key in [a, b, c] { try await store.insertAPIKey(key) }

            #expect(try await store.revokeAPIKey(idOrPrefix: "a-key", now: Fixtures.at(100)))
            #expect(try await store.revokeAPIKey(idOrPrefix: "kn_bbbb", now: Fixtures.at(101)))
            #expect(try await store.revokeAPIKey(idOrPrefix: "kn_nope", now: Fixtures.at(102)) == false)
            // Revoking twice keeps the first revocation time.
            #expect(try await store.revokeAPIKey(idOrPrefix: "a-key", now: Fixtures.at(200)))

            #expect(try await store.apiKey(hash: a.keyHash)?.revokedAt == Fixtures.at(100))
            #expect(try await store.apiKey(hash: b.keyHash)?.revokedAt == Fixtures.at(101))
            #expect(try await store.apiKey(hash: c.keyHash)?.revokedAt == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aSharedPrefixRevokesNothing(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let a = Self.key("a-key", prefix: "kn_same", at: 1)
            let b = Self.key("b-key", tenant: "globex", prefix: "kn_same", at: 2)
            try await store.insertAPIKey(a)
            try await store.insertAPIKey(b)
            #expect(try await store.revokeAPIKey(idOrPrefix: "kn_same", now: Fixtures.at(10)) == false)
            #expect(try await store.listAPIKeys().allSatisfy { $0.revokedAt == nil })
            #expect(try await store.revokeAPIKey(idOrPrefix: "b-key", now: Fixtures.at(11)))
            #expect(try await store.apiKey(hash: a.keyHash)?.revokedAt == nil)
        }
    }
}
