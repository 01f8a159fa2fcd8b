import Foundation
import KinemaStore
import Testing

/// Worker token records, on every backend.
@Suite struct WorkerTokenConformanceTests {
    static func token(_ id: String, name: String = "gpu-box", prefix: String, at seconds: TimeInterval) -> WorkerTokenRecord {
        WorkerTokenRecord(
            id: id, name: name, hash: String(repeating: id.first.map(String.init) ?? "0", count: 64),
            prefix: prefix, createdAt: Fixtures.at(seconds), revokedAt: nil
        )
    }

    @Test(arguments: StoreBackend.allCases)
    func tokensAreFoundByHashAndListedOldestFirst(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let newer = Self.token("b-token", name: "second box", prefix: "kwt_bbbb", at: 20)
            let older = Self.token("a-token", prefix: "kwt_aaaa", at: 10)
            try await store.insertWorkerToken(newer)
            try await store.insertWorkerToken(older)

            #expect(try await store.workerToken(hash: older.hash) == older)
            #expect(try await store.workerToken(hash: newer.hash) == newer)
            #expect(try await store.workerToken(hash: String(repeating: "f", count: 64)) == nil)
            #expect(try await store.listWorkerTokens() == [older, newer])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func tokensAndAPIKeysAreSeparate(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // The same hash in both tables must not make one usable as the other.
            let token = Self.token("a-token", prefix: "kwt_aaaa", at: 1)
            let key = APIKeyRecord(id: "a-key", tenant: "acme", keyHash: token.hash, prefix: "kin_aaaa", createdAt: Fixtures.at(2), revokedAt: nil)
            try await store.insertWorkerToken(token)
            try await store.insertAPIKey(key)
            #expect(try await store.listAPIKeys() == [key])
            #expect(try await store.listWorkerTokens() == [token])
            #expect(try await store.revokeWorkerToken(idOrPrefix: "a-key", now: Fixtures.at(3)) == false)
            #expect(try await store.apiKey(hash: key.keyHash)?.revokedAt == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aDuplicateTokenIsRejected(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let token = Self.token("a-token", prefix: "kwt_aaaa", at: 10)
            try await store.insertWorkerToken(token)
            var sameID = Self.token("a-token", prefix: "kwt_other", at: 11)
            sameID.hash = String(repeating: "9", count: 64)
            var sameHash = Self.token("z-token", prefix: "kwt_zzzz", at: 12)
            sameHash.hash = token.hash
            for duplicate in [sameID, sameHash] {
                let error = await #expect(throws: StoreError.self) { try await store.insertWorkerToken(duplicate) }
                #expect(error?.code == .duplicateWorkerToken)
            }
            #expect(try await store.listWorkerTokens() == [token])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func tokensAreRevokedByIDOrPrefix(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let a = Self.token("a-token", prefix: "kwt_aaaa", at: 1)
            let b = Self.token("b-token", prefix: "kwt_bbbb", at: 2)
            let c = Self.token("c-token", prefix: "kwt_cccc", at: 3)
            for token in [a, b, c] { try await store.insertWorkerToken(token) }

            #expect(try await store.revokeWorkerToken(idOrPrefix: "a-token", now: Fixtures.at(100)))
            #expect(try await store.revokeWorkerToken(idOrPrefix: "kwt_bbbb", now: Fixtures.at(101)))
            #expect(try await store.revokeWorkerToken(idOrPrefix: "kwt_nope", now: Fixtures.at(102)) == false)
            // Revoking twice keeps the first revocation time.
            #expect(try await store.revokeWorkerToken(idOrPrefix: "a-token", now: Fixtures.at(200)))

            #expect(try await store.workerToken(hash: a.hash)?.revokedAt == Fixtures.at(100))
            #expect(try await store.workerToken(hash: b.hash)?.revokedAt == Fixtures.at(101))
            #expect(try await store.workerToken(hash: c.hash)?.revokedAt == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func aSharedPrefixRevokesNothing(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let a = Self.token("a-token", prefix: "kwt_same", at: 1)
            let b = Self.token("b-token", name: "other box", prefix: "kwt_same", at: 2)
            try await store.insertWorkerToken(a)
            try await store.insertWorkerToken(b)
            #expect(try await store.revokeWorkerToken(idOrPrefix: "kwt_same", now: Fixtures.at(10)) == false)
            #expect(try await store.listWorkerTokens().allSatisfy { $0.revokedAt == nil })
            #expect(try await store.revokeWorkerToken(idOrPrefix: "b-token", now: Fixtures.at(11)))
            #expect(try await store.workerToken(hash: a.hash)?.revokedAt == nil)
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func tokensSurviveReopening(backend: StoreBackend) async throws {
        try await backend.withLocation { location in
            let token = Self.token("a-token", prefix: "kwt_aaaa", at: 1)
            let first = try location.open()
            try await first.insertWorkerToken(token)
            try location.close(first)
            let second = try location.open()
            defer { try? location.close(second) }
            #expect(try await second.workerToken(hash: token.hash) == token)
        }
    }
}
