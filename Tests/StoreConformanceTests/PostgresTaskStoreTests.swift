import Foundation
import KinemaCore
import KinemaStore
import KinemaStorePostgres
import Testing

/// What only the PostgreSQL backend promises: migrations shared by many nodes, LISTEN/NOTIFY wake-ups,
/// connection failures as `.unavailable`, and the schema's own guards.
@Suite struct PostgresTaskStoreTests {
    /// Runs `body` with the name of a fresh database that has no schema yet, dropped afterwards.
    static func withEmptyDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        let database = PostgresTestServer.newDatabaseName()
        try await PostgresTestServer.createDatabase(database, migrate: false)
        do {
            let result = try await body(database)
            try await PostgresTestServer.dropDatabase(database)
            return result
        } catch {
            try? await PostgresTestServer.dropDatabase(database)
            throw error
        }
    }

    /// Runs `body` with a migrated database and a running store on it.
    static func withStore<T>(_ body: (PostgresTaskStore, String) async throws -> T) async throws -> T {
        try await withEmptyDatabase { database in
            try await PostgresTestServer.withStore(database: database) { store in
                try await store.migrate()
                return try await body(store, database)
            }
        }
    }

    /// Runs SQL on `database` with psql.
    @discardableResult
    static func sql(_ database: String, _ statement: String) async throws -> String {
        try await PostgresTestServer.psql(PostgresTestServer.url(database: database), statement)
    }

    /// A database at schema 6 (API keys with a default engine and a revocation in `api_keys`, worker tokens in
    /// `worker_tokens`, as migrations 1, 2 and 5 made them) moves its credentials into one table on upgrade: each keeps
    /// its kind, id, owner, hash, prefix, times and default engine, and the old tables are gone.
    @Test func aVersionSixDatabaseKeepsEveryCredential() async throws {
        try await Self.withEmptyDatabase { database in
            try await Self.sql(
                database,
                """
                CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);
                INSERT INTO schema_migrations SELECT v, 'before credentials', 0 FROM generate_series(1, 6) AS v;
                -- Stands for the rest of schema 6: later migrations add columns and an index to tasks.
                CREATE TABLE tasks (id UUID PRIMARY KEY, engine TEXT NOT NULL, status TEXT NOT NULL, finished_at BIGINT);
                CREATE TABLE api_keys (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, id TEXT NOT NULL PRIMARY KEY, tenant TEXT NOT NULL,
                    key_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT,
                    default_engine TEXT);
                CREATE TABLE worker_tokens (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, id TEXT NOT NULL PRIMARY KEY, name TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT);
                INSERT INTO api_keys (id, tenant, key_hash, prefix, created_at, revoked_at, default_engine) VALUES
                    ('k1', 'acme', '\(String(repeating: "a", count: 64))', 'kin_aaaaaa', 1000, NULL, 'motion'),
                    ('k2', 'globex', '\(String(repeating: "b", count: 64))', 'kin_bbbbbb', 2000, 3000, NULL);
                INSERT INTO worker_tokens (id, name, token_hash, prefix, created_at, revoked_at) VALUES
                    ('t1', 'gpu-box', '\(String(repeating: "c", count: 64))', 'kwt_cccccc', 4000, NULL);
                """)
            try await PostgresTestServer.withStore(database: database) { store in
                try await store.migrate()
                #expect(try await store.schemaVersion() == PostgresTaskStore.currentSchemaVersion)
                let acme = try #require(try await store.credential(.apiKey, hash: String(repeating: "a", count: 64)))
                #expect(
                    acme
                        == CredentialRecord(
                            kind: .apiKey, id: "k1", owner: "acme", hash: String(repeating: "a", count: 64), prefix: "kin_aaaaaa",
                            createdAt: Date(timeIntervalSince1970: 1), defaultEngine: "motion"))
                let globex = try #require(try await store.credential(.apiKey, hash: String(repeating: "b", count: 64)))
                #expect(globex.revokedAt == Date(timeIntervalSince1970: 3))
                let token = try #require(try await store.credential(.workerToken, hash: String(repeating: "c", count: 64)))
                #expect(token.owner == "gpu-box" && token.id == "t1" && token.revokedAt == nil)
                // Still only what each was.
                #expect(try await store.credential(.workerToken, hash: acme.hash) == nil)
                #expect(try await store.credentials(.apiKey).map(\.id) == ["k1", "k2"])
            }
            #expect(try await Self.sql(database, "SELECT to_regclass('api_keys') IS NULL AND to_regclass('worker_tokens') IS NULL") == "t")
        }
    }

    @Test func manyNodesMayMigrateAFreshDatabaseAtOnce() async throws {
        try await Self.withEmptyDatabase { database in
            let stores = try (0..<6).map { _ in try PostgresTestServer.open(database: database) }
            defer { for store in stores { PostgresTestServer.close(store) } }
            #expect(try await stores[0].schemaVersion() == 0)

            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            for store in stores {
                #expect(try await store.schemaVersion() == PostgresTaskStore.currentSchemaVersion)
            }
            let recorded = try await Self.sql(database, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")
            #expect(recorded == (1...PostgresTaskStore.currentSchemaVersion).map(String.init).joined(separator: ","))

            // Migrating an up-to-date database changes nothing, and every node sees the same data.
            try await stores[1].migrate()
            try await Fixtures.enqueue(stores[2])
            #expect(try await stores[5].countByStatus()[.queued] == 1)
        }
    }

    @Test func aSchemaFromANewerBuildIsRefused() async throws {
        try await Self.withStore { store, database in
            try await Self.sql(database, "INSERT INTO schema_migrations VALUES (999, 'future', 0)")
            let error = await #expect(throws: StoreError.self) { try await store.migrate() }
            #expect(error?.code == .migrationFailed)
            #expect(error?.message.contains("999") == true)
        }
    }

    @Test func anUnmigratedDatabaseAsksForAMigration() async throws {
        try await Self.withEmptyDatabase { database in
            try await PostgresTestServer.withStore(database: database) { store in
                try await store.ping()
                let error = await #expect(throws: StoreError.self) { try await store.task(id: UUID()) }
                #expect(error?.code == .migrationFailed)
                #expect(error?.message.contains("migrate") == true)
            }
        }
    }

    @Test func anUnreachableServerIsUnavailable() async throws {
        // Port 1 on loopback: nothing listens there, so every connection attempt is refused.
        let store = try PostgresTaskStore(url: "postgres://postgres@127.0.0.1:1/kinema", timeout: 0.5)
        let running = Task { try? await store.run() }
        defer { running.cancel() }
        let error = await #expect(throws: StoreError.self) { try await store.ping() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("127.0.0.1:1/kinema") == true)
        let claimError = await #expect(throws: StoreError.self) {
            try await store.claim(workerID: "w", engine: "motion", leaseDuration: 30, now: Fixtures.t0)
        }
        #expect(claimError?.code == .unavailable)
    }

    @Test func aMissingDatabaseIsUnavailableAndSaysWhy() async throws {
        _ = try await PostgresTestServer.serverURL()
        let database = PostgresTestServer.newDatabaseName()
        let store = try PostgresTaskStore(url: PostgresTestServer.url(database: database), timeout: 0.5)
        let running = Task { try? await store.run() }
        defer { running.cancel() }
        let error = await #expect(throws: StoreError.self) { try await store.ping() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("\"\(database)\" does not exist") == true, "\(error?.message ?? "")")
    }

    @Test func aStoreThatIsNotRunningAnswersUnavailable() async throws {
        _ = try await PostgresTestServer.serverURL()
        let store = try PostgresTaskStore(url: PostgresTestServer.url(database: "postgres"), timeout: 0.5)
        let error = await #expect(throws: StoreError.self) { try await store.ping() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("run()") == true)
    }

    @Test func aClosedStoreAnswersUnavailable() async throws {
        try await Self.withEmptyDatabase { database in
            let store = try PostgresTestServer.open(database: database)
            try await store.ping()
            await PostgresTestServer.closeAndWait(store)
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.code == .unavailable)
            #expect(await store.waitForWork(timeout: .seconds(30)) == false)
        }
    }

    @Test func withRunningServesItsBodyAndClosesAfterwards() async throws {
        try await Self.withEmptyDatabase { database in
            let store = try PostgresTaskStore(url: PostgresTestServer.url(database: database), timeout: 30)
            let version = try await store.withRunning {
                try await store.migrate()
                try await Fixtures.enqueue(store)
                return try await store.schemaVersion()
            }
            #expect(version == PostgresTaskStore.currentSchemaVersion)
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.code == .unavailable)
        }
    }

    @Test(arguments: [
        "mysql://root@db/kinema",
        "postgres:///kinema",
        "postgres://user@db:70000/kinema",
        "postgres://user@db/kinema?sslmode=verify-full",
        "postgres://user@db/kinema?application_name=x",
        "db:5432",
    ])
    func aMalformedURLIsRefused(url: String) throws {
        let error = #expect(throws: StoreError.self) { try PostgresTaskStore(url: url) }
        #expect(error?.code == .unavailable)
    }

    @Test func enqueuesAndRequeuesWakeAnIdleWorker() async throws {
        try await Self.withStore { api, database in
            let worker = try PostgresTestServer.open(database: database)
            defer { PostgresTestServer.close(worker) }
            // The first wait opens the worker's LISTEN connection; wait (bounded) until the server shows it.
            #expect(await worker.waitForWork(timeout: .milliseconds(1)) == false)
            try await Self.waitUntilListening(database)

            async let wokenByEnqueue = worker.waitForWork(timeout: .seconds(60))
            let id = try await Fixtures.enqueue(api, at: 0)
            #expect(await wokenByEnqueue)

            // A claim notifies nobody; giving the task back (release, retryable failure, rescue) does.
            let first = try await Fixtures.claim(worker, by: "w", at: 1)
            #expect(try await api.release(first.lease, now: Fixtures.at(2)))
            #expect(await worker.waitForWork(timeout: .seconds(60)))

            let second = try await Fixtures.claim(worker, by: "w", at: 3)
            #expect(try await api.fail(second.lease, reason: "busy", retryable: true, now: Fixtures.at(4)))
            #expect(await worker.waitForWork(timeout: .seconds(60)))

            _ = try await Fixtures.claim(worker, by: "w", at: 5)
            #expect(try await api.rescueExpiredLeases(now: Fixtures.at(100)) == RescueReport(requeued: [id]))
            #expect(await worker.waitForWork(timeout: .seconds(60)))
        }
    }

    /// Polls (with a deadline) until a session on `database` has run LISTEN.
    static func waitUntilListening(_ database: String) async throws {
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            let listeners = try await Self.sql(
                database,
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()
                """)
            if listeners == "1" { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw FixtureError(message: "no LISTEN session appeared on \(database) within 90 s")
    }

    @Test func timesAreIntegerMillisecondsAndRequestsSortedJSON() async throws {
        try await Self.withStore { store, database in
            try await Fixtures.enqueue(store, at: 1.5)
            let row = try await Self.sql(database, "SELECT pg_typeof(created_at), created_at, request_json FROM tasks")
            let fields = row.split(separator: "|", maxSplits: 2)
            #expect(fields.count == 3)
            #expect(fields.first == "bigint")
            #expect(fields.dropFirst().first == "1700000001500")
            let json = String(fields.last ?? "")
            // The versioned stored schema (StoredRequest v1): explicit keys, all present, sorted.
            let keys = ["cfg_scale", "duration", "has_end_image", "negative_prompt", "prompt", "seed", "shots", "sound", "v", "webhook_url"]
            let positions = keys.compactMap { json.range(of: "\"\($0)\"")?.lowerBound }
            #expect(positions.count == keys.count)
            #expect(positions == positions.sorted())
        }
    }

    @Test func claimingWalksTheQueuedIndexInOrder() async throws {
        try await Self.withStore { _, database in
            // With seq scans off the planner shows whether the index can serve the claim's order without a sort.
            let plan = try await Self.sql(
                database,
                """
                SET enable_seqscan = off;
                EXPLAIN SELECT id FROM tasks WHERE status = 'queued' AND attempt < max_attempts
                ORDER BY created_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED
                """)
            #expect(plan.contains("Index Scan using tasks_queued_fifo"), "\(plan)")
            #expect(!plan.contains("Sort"), "\(plan)")
        }
    }

    /// Rows that break the lifecycle's invariants are refused by the database itself.
    @Test(arguments: [
        ("unknown status", "status = 'paused'"),
        ("progress above 100", "progress_percent = 101"),
        ("negative eta", "eta_seconds = -1"),
        ("attempt above max", "attempt = 4"),
        ("queued without attempts left", "attempt = 3"),
        ("processing without lease", "status = 'processing', attempt = 1, started_at = 0"),
        ("lease while queued", "lease_id = gen_random_uuid(), lease_owner = 'w', lease_expires_at = 0"),
        ("finished while queued", "finished_at = 0"),
        ("succeeded without result", "status = 'succeeded', finished_at = 0, progress_percent = 100"),
        ("reason while queued", "reason = 'oops'"),
        ("text where an integer time belongs", "created_at = 'soon'"),
    ])
    func theSchemaRefusesRowsThatBreakTheInvariants(name: String, assignment: String) async throws {
        try await Self.withStore { store, database in
            let id = try await Fixtures.enqueue(store, maxAttempts: 3)
            let update = try await PostgresTestServer.psqlStatus(
                PostgresTestServer.url(database: database), "UPDATE tasks SET \(assignment) WHERE id = '\(id.uuidString)'"
            )
            #expect(update.status != 0, "\(name) was accepted")
            #expect(update.error.contains("violates check constraint") || update.error.contains("invalid input syntax"), "\(update.error)")
            #expect(try await store.task(id: id)?.status == .queued)
        }
    }

    @Test func twoAttemptsOfATaskCannotRunAtOnce() async throws {
        try await Self.withStore { store, database in
            let id = try await Fixtures.enqueue(store)
            _ = try await Fixtures.claim(store, at: 1)
            let insert = try await PostgresTestServer.psqlStatus(
                PostgresTestServer.url(database: database),
                """
                INSERT INTO task_attempts (lease_id, task_id, attempt, worker_id, started_at, outcome)
                VALUES (gen_random_uuid(), '\(id.uuidString)', 2, 'w2', 0, 'running')
                """)
            #expect(insert.status != 0)
            #expect(insert.error.contains("task_attempts_one_running"), "\(insert.error)")
        }
    }
}
