import Foundation
#if canImport(Glibc)
import Glibc
#endif
import KinemaCore
import KinemaStore
import KinemaStoreSQLite
import KinemaTestSupport
import Testing

/// A database written by the release before engine routing (Fixtures/sqlite-schema-v3.sql) upgrades in place when
/// this build opens it: every task still reads, queued work is routed to `motion` with the features it needs, and
/// the keys and tokens still authenticate.
@Suite struct SQLiteUpgrade {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func sqlite3(_ db: String, _ args: [String], input: URL? = nil) async throws -> String {
        let result = try await ChildProcess.run("sqlite3", [db] + args, stdin: input, mergeErrors: true, timeout: .seconds(120))
        guard result.status == 0 else { throw FixtureError(message: "sqlite3 failed: \(result.output)") }
        return result.output
    }

    /// A fresh directory holding `kinema.sqlite` as the dump `fixture` (in Fixtures/) describes it; the caller removes it.
    static func restore(_ fixture: String) async throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kinema-upgrade-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        _ = try await sqlite3(dir.appendingPathComponent("kinema.sqlite").path, [], input: fixtures.appendingPathComponent(fixture))
        return dir
    }

    @Test func aVersionThreeDatabaseUpgradesAndItsTasksStillRead() async throws {
        let dir = try await Self.restore("sqlite-schema-v3.sql")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("kinema.sqlite").path
        #expect(try await Self.sqlite3(db, ["SELECT max(version) FROM schema_migrations"]).trimmingCharacters(in: .whitespacesAndNewlines) == "3")

        let store = try SQLiteTaskStore(path: db)
        let failed = try #require(try await store.task(id: UUID(uuidString: "14f7ecc5-fe71-4739-92da-76a09dd3f944")!))
        #expect(failed.status == .failed)
        #expect(failed.reason == "bad input")
        #expect(failed.engine == "gpu") // a finished task keeps the engine that ran it
        #expect(failed.request == GenerationRequest(prompt: "slow push in", seed: 7))
        let running = try #require(try await store.task(id: UUID(uuidString: "4bb00816-bbbc-4f7b-baf3-208f69f884e0")!))
        #expect(running.status == .processing)
        #expect(running.engine == "motion")
        #expect(running.request.shots?.map(\.prompt) == ["wide shot", "close up, rain"])
        #expect(running.request.negativePrompt == "shake")
        let status = try #require(try await store.taskStatus(id: running.id, tenant: "default"))
        #expect(status.seed == 8)
        #expect(status.engine == "motion")

        // Queued work went to motion with the features it needs: the end-image task and the sound task.
        let now = Date()
        #expect(try await store.claim(workerID: "t", route: ClaimRoute(engines: ["motion"], capabilities: []), leaseDuration: 30, now: now) == nil)
        let sound = try #require(
            try await store.claim(workerID: "t", route: ClaimRoute(engines: ["motion"], capabilities: [.sound]), leaseDuration: 30, now: now))
        #expect(sound.task.id == UUID(uuidString: "4ab1dc24-40e1-41c2-9e35-8870d694604b"))
        let end = try #require(try await store.claim(workerID: "t", route: .engine("motion"), leaseDuration: 30, now: now))
        #expect(end.task.id == UUID(uuidString: "c5344e54-f3c2-42f9-89af-b85861e5a41c"))
        #expect(end.task.request.webhookURL == "https://hooks.example/x")
        #expect(end.task.request.cfgScale == 0.25)

        // Credentials made by the old release still work.
        #expect(try await store.credential(.apiKey, hash: Credential.hash("kin_u1JuT3SrDSJFSNYKE2IH3RKoHIXxefeoUOxmM1X6BiI"))?.owner == "default")
        #expect(try await store.credential(.workerToken, hash: Credential.hash("kwt_eAGdrh4i6V_3j1A-FQiVju09qWnX0rI8eTGo6nAmxgs"))?.owner == "legacy")

        // New rows are written in the versioned schema.
        try await store.enqueue(
            NewTask(id: UUID(), tenant: "default", request: GenerationRequest(prompt: "new", seed: 1), imageKey: "i.png", endImageKey: nil), now: now)
        let newest = try await Self.sqlite3(db, ["SELECT request_json FROM tasks ORDER BY rowid DESC LIMIT 1"])
        #expect(newest.contains(#""v":1"#), "\(newest)")
        #expect(
            try await Self.sqlite3(db, ["SELECT max(version) FROM schema_migrations"]).trimmingCharacters(in: .whitespacesAndNewlines)
                == String(SQLiteTaskStore.currentSchemaVersion))
    }

    /// The release before one credentials table (schema 6: api_keys with default engines, worker_tokens, a revoked
    /// key) upgrades: every key and token still authenticates as what it was, with its owner, engine and revocation.
    @Test func aVersionSixDatabaseKeepsEveryCredential() async throws {
        let dir = try await Self.restore("sqlite-schema-v6.sql")
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("kinema.sqlite").path
        #expect(try await Self.sqlite3(db, ["SELECT max(version) FROM schema_migrations"]).trimmingCharacters(in: .whitespacesAndNewlines) == "6")

        let store = try SQLiteTaskStore(path: db)
        let acme = try #require(try await store.credential(.apiKey, hash: Credential.hash("kin_oUIqT0Q-I3oRpMum1PeCZuCPQu_yQga4Wriu_8b3Q18")))
        #expect(acme.owner == "acme")
        #expect(acme.defaultEngine == "motion")
        #expect(acme.revokedAt == nil)
        #expect(acme.id == "67c93418-3062-4823-9345-6871f93314a7")
        let globex = try #require(try await store.credential(.apiKey, hash: Credential.hash("kin_8mzSjHSXiZ2Ill8tl47a_d2J6uhDe963h88RS0Wymm4")))
        #expect(globex.owner == "globex")
        #expect(globex.revokedAt != nil)
        let token = try #require(try await store.credential(.workerToken, hash: Credential.hash("kwt_KRLbvxSS9a072ZGKirLB9Ll70IkaNEseV_3aVubvfmg")))
        #expect(token.owner == "gpu-box")
        #expect(token.prefix == "kwt_KRLbvx")
        // A key never reads as a token, nor the other way round.
        #expect(try await store.credential(.workerToken, hash: acme.hash) == nil)
        #expect(try await store.credentials(.apiKey).map(\.owner) == ["acme", "globex"])
        #expect(try await store.credentials(.workerToken).count == 1)
        #expect(
            try await Self.sqlite3(db, ["SELECT max(version) FROM schema_migrations"]).trimmingCharacters(in: .whitespacesAndNewlines)
                == String(SQLiteTaskStore.currentSchemaVersion))
    }
}
