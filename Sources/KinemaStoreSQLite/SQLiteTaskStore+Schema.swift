import Foundation
import GRDB
import KinemaStore

/// One step of the schema's history.
struct SchemaMigration: Sendable {
    /// Position in the history; applied in increasing order, never reused.
    let version: Int
    let name: String
    let apply: @Sendable (Database) throws -> Void
}

extension SQLiteTaskStore {
    /// The schema's history. Forward-only: never edit a shipped migration, append a new one.
    static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, name: "tasks, task_attempts, api_keys") { db in
            // The CHECKs mirror TaskLifecycle's invariants (KinemaCore/TaskStateMachine.swift).
            try db.execute(
                sql: """
                    CREATE TABLE tasks (
                        id               TEXT    NOT NULL PRIMARY KEY,
                        tenant           TEXT    NOT NULL,
                        status           TEXT    NOT NULL
                            CHECK (status IN ('queued', 'processing', 'succeeded', 'failed', 'canceled')),
                        request_json     TEXT    NOT NULL,
                        image_key        TEXT    NOT NULL,
                        end_image_key    TEXT,
                        result_key       TEXT,
                        reason           TEXT    NOT NULL DEFAULT '',
                        progress_percent INTEGER NOT NULL DEFAULT 0 CHECK (progress_percent BETWEEN 0 AND 100),
                        eta_seconds      INTEGER NOT NULL DEFAULT 0 CHECK (eta_seconds >= 0),
                        attempt          INTEGER NOT NULL DEFAULT 0,
                        max_attempts     INTEGER NOT NULL CHECK (max_attempts >= 1),
                        engine           TEXT,
                        created_at       INTEGER NOT NULL,
                        started_at       INTEGER,
                        finished_at      INTEGER,
                        updated_at       INTEGER NOT NULL,
                        lease_id         TEXT,
                        lease_owner      TEXT,
                        lease_expires_at INTEGER,
                        CHECK (attempt BETWEEN 0 AND max_attempts),
                        -- a queued task can still be claimed
                        CHECK (status <> 'queued' OR attempt < max_attempts),
                        -- processing <=> holds a lease (and has started an attempt)
                        CHECK (
                            (status = 'processing' AND lease_id IS NOT NULL AND lease_owner IS NOT NULL
                                AND lease_expires_at IS NOT NULL AND attempt >= 1 AND started_at IS NOT NULL)
                            OR (status <> 'processing' AND lease_id IS NULL AND lease_owner IS NULL
                                AND lease_expires_at IS NULL)
                        ),
                        -- terminal <=> finished
                        CHECK ((status IN ('succeeded', 'failed', 'canceled')) = (finished_at IS NOT NULL)),
                        CHECK (status <> 'succeeded' OR (result_key IS NOT NULL AND progress_percent = 100)),
                        CHECK (status IN ('failed', 'canceled') OR reason = '')
                    ) STRICT
                    """)
            // Claiming walks this index in FIFO order.
            try db.execute(sql: "CREATE INDEX tasks_by_status_created ON tasks (status, created_at)")
            // Lease sweeps look only at running tasks.
            try db.execute(
                sql: """
                    CREATE INDEX tasks_running_by_expiry ON tasks (lease_expires_at) WHERE status = 'processing'
                    """)
            try db.execute(
                sql: """
                    CREATE INDEX tasks_running_by_owner ON tasks (lease_owner) WHERE status = 'processing'
                    """)
            try db.execute(sql: "CREATE INDEX tasks_by_tenant_created ON tasks (tenant, created_at)")

            try db.execute(
                sql: """
                    CREATE TABLE task_attempts (
                        lease_id   TEXT    NOT NULL PRIMARY KEY,
                        task_id    TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                        attempt    INTEGER NOT NULL CHECK (attempt >= 1),
                        worker_id  TEXT    NOT NULL,
                        started_at INTEGER NOT NULL,
                        ended_at   INTEGER,
                        outcome    TEXT    NOT NULL
                            CHECK (outcome IN ('running', 'succeeded', 'failed', 'expired', 'released')),
                        error      TEXT,
                        CHECK ((outcome = 'running') = (ended_at IS NULL)),
                        CHECK (ended_at IS NULL OR ended_at >= started_at)
                    ) STRICT
                    """)
            try db.execute(sql: "CREATE INDEX task_attempts_by_task ON task_attempts (task_id, started_at)")
            // At most one attempt of a task runs at a time.
            try db.execute(
                sql: """
                    CREATE UNIQUE INDEX task_attempts_one_running ON task_attempts (task_id) WHERE outcome = 'running'
                    """)

            try db.execute(
                sql: """
                    CREATE TABLE api_keys (
                        id         TEXT    NOT NULL PRIMARY KEY,
                        tenant     TEXT    NOT NULL,
                        key_hash   TEXT    NOT NULL UNIQUE,
                        prefix     TEXT    NOT NULL,
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    ) STRICT
                    """)
            try db.execute(sql: "CREATE INDEX api_keys_by_prefix ON api_keys (prefix)")
        },
        SchemaMigration(version: 2, name: "worker_tokens") { db in
            // Remote workers' credentials, kept apart from api_keys so neither can stand in for the other.
            try db.execute(
                sql: """
                    CREATE TABLE worker_tokens (
                        id         TEXT    NOT NULL PRIMARY KEY,
                        name       TEXT    NOT NULL,
                        token_hash TEXT    NOT NULL UNIQUE,
                        prefix     TEXT    NOT NULL,
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    ) STRICT
                    """)
            try db.execute(sql: "CREATE INDEX worker_tokens_by_prefix ON worker_tokens (prefix)")
        },
        SchemaMigration(version: 3, name: "active tasks by tenant") { db in
            // The per-tenant cap on queued + running tasks counts these rows at every submit.
            try db.execute(sql: "CREATE INDEX tasks_active_by_tenant ON tasks (tenant) WHERE status IN ('queued', 'processing')")
        },
        SchemaMigration(version: 4, name: "engine routing") { db in
            // Each task is routed to an engine at submit and needs some request features (RequestFeatures bits:
            // 1 end_image, 2 multi_prompt, 4 sound); a claim takes only tasks of its engines whose features it has.
            // Before routing every task was a motion task: queued and running ones are routed there, finished ones
            // keep the engine that ran them. Features come from the stored request (the same keys in every version).
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN features INTEGER NOT NULL DEFAULT 0")
            try db.execute(sql: "UPDATE tasks SET engine = 'motion' WHERE engine IS NULL OR status IN ('queued', 'processing')")
            try db.execute(
                sql: """
                    UPDATE tasks SET features =
                        (CASE WHEN end_image_key IS NOT NULL THEN 1 ELSE 0 END)
                        | (CASE WHEN json_type(request_json, '$.shots') = 'array' THEN 2 ELSE 0 END)
                        | (CASE WHEN json_extract(request_json, '$.sound') = 1 THEN 4 ELSE 0 END)
                    """)
            try db.execute(sql: "CREATE INDEX tasks_queued_by_engine ON tasks (engine, created_at) WHERE status = 'queued'")
        },
        SchemaMigration(version: 5, name: "default engine per API key") { db in
            try db.execute(sql: "ALTER TABLE api_keys ADD COLUMN default_engine TEXT")
        },
        SchemaMigration(version: 6, name: "worker presence") { db in
            // Who is looking for which work: engines as ",a,b," (so one LIKE finds an engine), capabilities as
            // RequestFeatures bits. Lets a queued task's ETA say when no live worker can run it.
            try db.execute(
                sql: """
                    CREATE TABLE worker_presence (
                        worker_id    TEXT    NOT NULL PRIMARY KEY,
                        engines      TEXT    NOT NULL,
                        capabilities INTEGER NOT NULL,
                        last_seen    INTEGER NOT NULL
                    ) STRICT
                    """)
        },
        SchemaMigration(version: 7, name: "one credentials table") { db in
            // API keys and worker tokens are one concept (a hashed secret of a kind, with an owner): one table, one set
            // of store methods. The kind is part of every lookup, so neither can stand in for the other.
            try db.execute(
                sql: """
                    CREATE TABLE credentials (
                        kind           TEXT    NOT NULL CHECK (kind IN ('api_key', 'worker_token')),
                        id             TEXT    NOT NULL PRIMARY KEY,
                        owner          TEXT    NOT NULL,
                        hash           TEXT    NOT NULL UNIQUE,
                        prefix         TEXT    NOT NULL,
                        created_at     INTEGER NOT NULL,
                        revoked_at     INTEGER,
                        default_engine TEXT
                    ) STRICT
                    """)
            try db.execute(sql: "CREATE INDEX credentials_by_prefix ON credentials (kind, prefix)")
            try db.execute(
                sql: """
                    INSERT INTO credentials (kind, id, owner, hash, prefix, created_at, revoked_at, default_engine)
                    SELECT 'api_key', id, tenant, key_hash, prefix, created_at, revoked_at, default_engine FROM api_keys ORDER BY rowid
                    """)
            try db.execute(
                sql: """
                    INSERT INTO credentials (kind, id, owner, hash, prefix, created_at, revoked_at)
                    SELECT 'worker_token', id, name, token_hash, prefix, created_at, revoked_at FROM worker_tokens ORDER BY rowid
                    """)
            try db.execute(sql: "DROP TABLE api_keys")
            try db.execute(sql: "DROP TABLE worker_tokens")
        },
        SchemaMigration(version: 8, name: "upstream handles") { db in
            // Where a task stands at a hosted provider (UpstreamHandle as JSON), and the provider's task id on its own
            // so the lease rules can tell an accepted task (followed, never submitted again) in plain SQL.
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN upstream TEXT")
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN upstream_id TEXT")
        },
        SchemaMigration(version: 9, name: "idempotency keys") { db in
            // One row per tenant and Idempotency-Key: the primary key makes concurrent submits with one key create one task.
            try db.execute(
                sql: """
                    CREATE TABLE idempotency_keys (
                        tenant       TEXT    NOT NULL,
                        key          TEXT    NOT NULL,
                        request_hash TEXT    NOT NULL,
                        task_id      TEXT    NOT NULL,
                        created_at   INTEGER NOT NULL,
                        PRIMARY KEY (tenant, key)
                    ) STRICT
                    """)
            try db.execute(sql: "CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at)")
        },
        SchemaMigration(version: 10, name: "recent successes by engine") { db in
            // A queued task's eta reads its engine's last successes; this keeps that read short in a long history.
            try db.execute(sql: "CREATE INDEX tasks_succeeded_by_engine ON tasks (engine, finished_at) WHERE status = 'succeeded'")
        },
        SchemaMigration(version: 11, name: "webhook outbox and secrets") { db in
            // The outbox: one row per task event. A trigger writes it in the transaction that makes a task with a
            // webhook URL terminal, so every path to a terminal status (complete, fail, cancel, rescue) records its
            // event, and a crash can lose none. Tasks made terminal before this migration never get one.
            try db.execute(
                sql: """
                    CREATE TABLE webhook_deliveries (
                        webhook_id       TEXT    NOT NULL PRIMARY KEY,
                        task_id          TEXT    NOT NULL,
                        tenant           TEXT    NOT NULL,
                        url              TEXT    NOT NULL,
                        event_type       TEXT    NOT NULL,
                        status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
                        attempts         INTEGER NOT NULL DEFAULT 0,
                        last_status_code INTEGER,
                        last_error       TEXT,
                        next_attempt_at  INTEGER,
                        claimed_by       TEXT,
                        claimed_until    INTEGER,
                        created_at       INTEGER NOT NULL,
                        CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
                    ) STRICT
                    """)
            try db.execute(sql: "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'")
            try db.execute(sql: "CREATE INDEX webhook_deliveries_by_task ON webhook_deliveries (task_id)")
            // The URL as the submit stored it (`webhook_url` in the versioned request JSON, `webhookURL` in the first).
            try db.execute(
                sql: """
                    CREATE TRIGGER tasks_webhook_outbox AFTER UPDATE OF status ON tasks
                    WHEN NEW.status IN ('succeeded', 'failed', 'canceled') AND OLD.status NOT IN ('succeeded', 'failed', 'canceled')
                        AND COALESCE(json_extract(NEW.request_json, '$.webhook_url'), json_extract(NEW.request_json, '$.webhookURL')) IS NOT NULL
                    BEGIN
                        INSERT OR IGNORE INTO webhook_deliveries (webhook_id, task_id, tenant, url, event_type, status, next_attempt_at, created_at)
                        VALUES ('msg_' || lower(replace(NEW.id, '-', '')), NEW.id, NEW.tenant,
                                COALESCE(json_extract(NEW.request_json, '$.webhook_url'), json_extract(NEW.request_json, '$.webhookURL')),
                                'ASYNC_TASK_RESULT', 'pending', NEW.finished_at, NEW.finished_at);
                    END
                    """)
            // Signing secrets, readable (HMAC needs them): whoever reads this database can sign as Kinema.
            try db.execute(
                sql: """
                    CREATE TABLE webhook_secrets (
                        tenant         TEXT    NOT NULL PRIMARY KEY,
                        secret         TEXT    NOT NULL,
                        previous       TEXT,
                        previous_until INTEGER,
                        created_at     INTEGER NOT NULL
                    ) STRICT
                    """)
        },
        SchemaMigration(version: 12, name: "retention") { db in
            // When retention deleted a task's inputs and its result (the row stays; a deleted result reads as none).
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN inputs_deleted_at INTEGER")
            try db.execute(sql: "ALTER TABLE tasks ADD COLUMN result_deleted_at INTEGER")
            try db.execute(
                sql: """
                    CREATE INDEX tasks_inputs_due ON tasks (finished_at)
                    WHERE status IN ('succeeded', 'failed', 'canceled') AND inputs_deleted_at IS NULL
                    """)
            try db.execute(sql: "CREATE INDEX tasks_results_due ON tasks (finished_at) WHERE status = 'succeeded' AND result_deleted_at IS NULL")
            // One node at a time runs each maintenance job (the retention sweep).
            try db.execute(
                sql: """
                    CREATE TABLE maintenance_claims (
                        name          TEXT    NOT NULL PRIMARY KEY,
                        holder        TEXT    NOT NULL,
                        claimed_until INTEGER NOT NULL
                    ) STRICT
                    """)
        },
    ]

    /// Applies pending migrations in one IMMEDIATE transaction, so processes opening a fresh file at
    /// the same time cannot both apply a step (the check and the change are atomic under SQLite's write
    /// lock). Refuses a file whose schema is newer than this build knows.
    static func migrate(_ pool: DatabasePool, path: String) throws {
        do {
            try pool.barrierWriteWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try db.execute(
                        sql: """
                            CREATE TABLE IF NOT EXISTS schema_migrations (
                                version    INTEGER NOT NULL PRIMARY KEY,
                                name       TEXT    NOT NULL,
                                applied_at INTEGER NOT NULL
                            ) STRICT
                            """)
                    let applied = Set(try Int.fetchAll(db, sql: "SELECT version FROM schema_migrations"))
                    if let newest = applied.max(), newest > migrations.last?.version ?? 0 {
                        throw StoreError(
                            .migrationFailed,
                            "the task database at \(path) has schema version \(newest), newer than this build's "
                                + "\(migrations.last?.version ?? 0); upgrade this binary"
                        )
                    }
                    for migration in migrations where !applied.contains(migration.version) {
                        try migration.apply(db)
                        try db.execute(
                            sql: "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                            arguments: [migration.version, migration.name, TaskRow.millis(Date())]
                        )
                    }
                    return .commit
                }
            }
        } catch let error as StoreError {
            throw error
        } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
            throw StoreError(.corrupt, "\(path) is not a readable SQLite database: \(error.message ?? "")")
        } catch let error as DatabaseError where [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) {
            throw StoreError(.unavailable, "the task database at \(path) stayed locked: \(error.message ?? "")")
        } catch {
            throw StoreError(.migrationFailed, "cannot migrate the task database at \(path): \(error)")
        }
    }
}
