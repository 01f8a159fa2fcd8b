import Foundation
import KinemaCore
import KinemaStore
import KinemaStoreSQLite
import KinemaTestSupport
import Testing

/// What only the SQLite backend promises: file handling, migrations, and the schema's own guards.
@Suite struct SQLiteTaskStoreTests {
    static let sqliteCLI = "/usr/bin/sqlite3"
    static let hasCLI = FileManager.default.isExecutableFile(atPath: sqliteCLI)

    /// Runs one SQL script with the sqlite3 command-line shell, as an operator (or another program) would.
    /// Fails (rather than skipping) when the shell is missing: scripts/install-deps installs it, so its absence is a bug.
    static func sqlite(_ path: String, _ sql: String) async throws -> (status: Int32, output: String) {
        guard hasCLI else {
            throw StoreError(.unavailable, "\(sqliteCLI) is missing; run scripts/install-deps (Debian package sqlite3)")
        }
        let result = try await ChildProcess.run(sqliteCLI, ["-bail", path, sql], mergeErrors: true, timeout: .seconds(120))
        return (result.status, result.output)
    }

    static func withFile<T>(_ body: (String) async throws -> T) async throws -> T {
        let location = try StoreBackend.sqlite.makeLocation()
        defer { location.destroy() }
        return try await body(location.directory.appendingPathComponent("kinema.sqlite").path)
    }

    @Test func openingCreatesMissingDirectoriesAndMigrates() async throws {
        try await Self.withFile { path in
            let nested = URL(fileURLWithPath: path).deletingLastPathComponent()
                .appendingPathComponent("a/b/tasks.sqlite").path
            let store = try SQLiteTaskStore(path: nested)
            defer { try? store.close() }
            #expect(FileManager.default.fileExists(atPath: nested))
            #expect(try await store.schemaVersion() == SQLiteTaskStore.currentSchemaVersion)
            #expect(SQLiteTaskStore.currentSchemaVersion >= 1)
        }
    }

    @Test func manyProcessesMayOpenAFreshFileAtOnce() async throws {
        try await Self.withFile { path in
            let stores = try await withThrowingTaskGroup(of: SQLiteTaskStore.self) { group in
                for _ in 0..<6 { group.addTask { try SQLiteTaskStore(path: path) } }
                var opened: [SQLiteTaskStore] = []
                for try await store in group { opened.append(store) }
                return opened
            }
            defer { for store in stores { try? store.close() } }
            #expect(stores.count == 6)
            try await Fixtures.enqueue(stores[0])
            #expect(try await stores[5].countByStatus()[.queued] == 1)
        }
    }

    @Test func aFileThatIsNotADatabaseIsReportedCorrupt() async throws {
        try await Self.withFile { path in
            try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: StoreError.self) { try SQLiteTaskStore(path: path) }
            #expect(error?.code == .corrupt)
        }
    }

    @Test func anUnopenablePathIsReportedUnavailable() async throws {
        try await Self.withFile { path in
            // A regular file where a parent directory should be.
            try Data("x".utf8).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: StoreError.self) { try SQLiteTaskStore(path: path + "/inner/kinema.sqlite") }
            #expect(error?.code == .unavailable)
        }
    }

    @Test func aStoreThatWasClosedAnswersUnavailable() async throws {
        try await Self.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            try store.close()
            let error = await #expect(throws: StoreError.self) { try await store.ping() }
            #expect(error?.code == .unavailable)
        }
    }

    @Test
    func aSchemaFromANewerBuildIsRefused() async throws {
        try await Self.withFile { path in
            try SQLiteTaskStore(path: path).close()
            let insert = try await Self.sqlite(path, "INSERT INTO schema_migrations VALUES (999, 'future', 0);")
            #expect(insert.status == 0, "\(insert.output)")
            let error = #expect(throws: StoreError.self) { try SQLiteTaskStore(path: path) }
            #expect(error?.code == .migrationFailed)
        }
    }

    @Test
    func commitsAreFullySyncedInWALMode() async throws {
        try await Self.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            defer { try? store.close() }
            let settings = try await store.durabilitySettings()
            #expect(settings.journalMode == "wal")
            // GRDB's default for WAL is NORMAL (1), which may lose the last commits on power loss.
            #expect(settings.synchronous == 2)
        }
    }

    @Test
    func timesAreIntegerMillisecondsAndRequestsSortedJSON() async throws {
        try await Self.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            defer { try? store.close() }
            try await Fixtures.enqueue(store, at: 1.5)
            let row = try await Self.sqlite(path, "SELECT typeof(created_at), created_at, request_json FROM tasks;")
            #expect(row.status == 0)
            let fields = row.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|", maxSplits: 2)
            #expect(fields.count == 3)
            #expect(fields.first == "integer")
            #expect(fields.dropFirst().first == "1700000001500")
            let json = String(fields.last ?? "")
            // The versioned stored schema (StoredRequest v1): explicit keys, all present, sorted.
            let keys = ["cfg_scale", "duration", "has_end_image", "negative_prompt", "prompt", "seed", "shots", "sound", "v", "webhook_url"]
            let positions = keys.compactMap { json.range(of: "\"\($0)\"")?.lowerBound }
            #expect(positions.count == keys.count)
            #expect(positions == positions.sorted())
        }
    }

    @Test
    func claimingWalksTheStatusIndexInOrder() async throws {
        try await Self.withFile { path in
            try SQLiteTaskStore(path: path).close()
            let plan = try await Self.sqlite(
                path,
                """
                EXPLAIN QUERY PLAN SELECT rowid FROM tasks WHERE status = 'queued' AND attempt < max_attempts
                ORDER BY created_at, rowid LIMIT 1;
                """)
            #expect(plan.output.contains("USING INDEX tasks_by_status_created (status=?)"), "\(plan.output)")
            #expect(!plan.output.contains("TEMP B-TREE"), "\(plan.output)")
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
        ("lease while queued", "lease_id = 'x', lease_owner = 'w', lease_expires_at = 0"),
        ("finished while queued", "finished_at = 0"),
        ("succeeded without result", "status = 'succeeded', finished_at = 0, progress_percent = 100"),
        ("reason while queued", "reason = 'oops'"),
        ("text where an integer time belongs", "created_at = 'soon'"),
    ])
    func theSchemaRefusesRowsThatBreakTheInvariants(name: String, assignment: String) async throws {
        try await Self.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            defer { try? store.close() }
            let id = try await Fixtures.enqueue(store, maxAttempts: 3)
            let update = try await Self.sqlite(path, "UPDATE tasks SET \(assignment) WHERE id = '\(id.uuidString)';")
            #expect(update.status != 0, "\(name) was accepted")
            #expect(update.output.contains("constraint failed") || update.output.contains("cannot store"), "\(update.output)")
            #expect(try await store.task(id: id)?.status == .queued)
        }
    }

    @Test
    func twoAttemptsOfATaskCannotRunAtOnce() async throws {
        try await Self.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            defer { try? store.close() }
            let id = try await Fixtures.enqueue(store)
            _ = try await Fixtures.claim(store, at: 1)
            let insert = try await Self.sqlite(
                path,
                """
                INSERT INTO task_attempts (lease_id, task_id, attempt, worker_id, started_at, outcome)
                VALUES ('other-lease', '\(id.uuidString)', 2, 'w2', 0, 'running');
                """)
            #expect(insert.status != 0)
            #expect(insert.output.contains("UNIQUE constraint failed"), "\(insert.output)")
        }
    }

    /// Group commit: 40 concurrent writes share transactions, yet each fails alone (a duplicate id, an idempotency key
    /// already taken) and each that succeeded is on disk when its caller resumes (read back by a second store).
    @Test func concurrentWritesShareCommitsButFailAlone() async throws {
        try await Self.withFile { path in
            let store = try SQLiteTaskStore(path: path)
            let taken = Fixtures.newTask()
            try await store.enqueue(taken, now: Fixtures.at(0))
            var keyed = Fixtures.newTask()
            keyed.idempotency = IdempotencyClaim(key: "k", requestHash: "h1")
            try await store.enqueue(keyed, now: Fixtures.at(0))
            let outcomes = try await withThrowingTaskGroup(of: (UUID, String).self) { group in
                for i in 0..<40 {
                    group.addTask {
                        var task = Fixtures.newTask()
                        if i % 10 == 3 { task.id = taken.id }
                        if i % 10 == 7 { task.idempotency = IdempotencyClaim(key: "k", requestHash: "h2") }
                        do {
                            try await store.enqueue(task, now: Fixtures.at(1))
                            return (task.id, "ok")
                        } catch let error as StoreError where error.code == .duplicateTask {
                            return (task.id, "duplicate")
                        } catch is IdempotencyConflict {
                            return (task.id, "conflict")
                        }
                    }
                }
                return try await group.reduce(into: [(UUID, String)]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0.1 == "duplicate" }.count == 4)
            #expect(outcomes.filter { $0.1 == "conflict" }.count == 4)
            let stored = outcomes.filter { $0.1 == "ok" }.map(\.0)
            #expect(stored.count == 32)
            let other = try SQLiteTaskStore(path: path)
            for id in stored { #expect(try await other.task(id: id)?.status == .queued) }
            #expect(try await other.countByStatus()[.queued] == 34)
        }
    }
}
