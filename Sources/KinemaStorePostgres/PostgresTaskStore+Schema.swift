import Foundation
import KinemaStore
import PostgresNIO

/// One step of the schema's history.
struct PostgresMigration: Sendable {
    /// Position in the history; applied in increasing order, never reused.
    let version: Int
    let name: String
    /// Run in order inside the migrating transaction (PostgreSQL DDL is transactional).
    let statements: [String]
}

extension PostgresTaskStore {
    /// Key of the transaction-scoped advisory lock that serializes migrations (the bytes of "kinema").
    static let migrationLockKey: Int64 = 118_100_567_879_009

    /// The schema's history. Forward-only: never edit a shipped migration, append a new one.
    static let migrations: [PostgresMigration] = [
        PostgresMigration(
            version: 1, name: "tasks, task_attempts, api_keys",
            statements: [
                // The CHECKs mirror TaskLifecycle's invariants (KinemaCore/TaskStateMachine.swift) and the SQLite schema.
                // `seq` keeps insertion order, which breaks ties between equal millisecond times (SQLite's rowid).
                """
                CREATE TABLE tasks (
                    seq              BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE,
                    id               UUID    NOT NULL PRIMARY KEY,
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
                    created_at       BIGINT  NOT NULL,
                    started_at       BIGINT,
                    finished_at      BIGINT,
                    updated_at       BIGINT  NOT NULL,
                    lease_id         UUID,
                    lease_owner      TEXT,
                    lease_expires_at BIGINT,
                    CONSTRAINT tasks_attempt_in_range CHECK (attempt BETWEEN 0 AND max_attempts),
                    -- a queued task can still be claimed
                    CONSTRAINT tasks_queued_claimable CHECK (status <> 'queued' OR attempt < max_attempts),
                    -- processing <=> holds a lease (and has started an attempt)
                    CONSTRAINT tasks_processing_has_lease CHECK (
                        (status = 'processing' AND lease_id IS NOT NULL AND lease_owner IS NOT NULL
                            AND lease_expires_at IS NOT NULL AND attempt >= 1 AND started_at IS NOT NULL)
                        OR (status <> 'processing' AND lease_id IS NULL AND lease_owner IS NULL
                            AND lease_expires_at IS NULL)
                    ),
                    -- terminal <=> finished
                    CONSTRAINT tasks_terminal_finished
                        CHECK ((status IN ('succeeded', 'failed', 'canceled')) = (finished_at IS NOT NULL)),
                    CONSTRAINT tasks_succeeded_has_result
                        CHECK (status <> 'succeeded' OR (result_key IS NOT NULL AND progress_percent = 100)),
                    CONSTRAINT tasks_reason_only_when_failed CHECK (status IN ('failed', 'canceled') OR reason = '')
                )
                """,
                // Claims walk this index in FIFO order; it holds only queued tasks, so it stays small.
                "CREATE INDEX tasks_queued_fifo ON tasks (created_at, seq) WHERE status = 'queued'",
                // Lease sweeps look only at running tasks.
                "CREATE INDEX tasks_running_by_expiry ON tasks (lease_expires_at) WHERE status = 'processing'",
                "CREATE INDEX tasks_running_by_owner ON tasks (lease_owner) WHERE status = 'processing'",
                "CREATE INDEX tasks_by_tenant_created ON tasks (tenant, created_at)",
                """
                CREATE TABLE task_attempts (
                    seq        BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE,
                    lease_id   UUID    NOT NULL PRIMARY KEY,
                    task_id    UUID    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
                    attempt    INTEGER NOT NULL CHECK (attempt >= 1),
                    worker_id  TEXT    NOT NULL,
                    started_at BIGINT  NOT NULL,
                    ended_at   BIGINT,
                    outcome    TEXT    NOT NULL
                        CHECK (outcome IN ('running', 'succeeded', 'failed', 'expired', 'released')),
                    error      TEXT,
                    CONSTRAINT task_attempts_running_not_ended CHECK ((outcome = 'running') = (ended_at IS NULL)),
                    CONSTRAINT task_attempts_end_after_start CHECK (ended_at IS NULL OR ended_at >= started_at)
                )
                """,
                "CREATE INDEX task_attempts_by_task ON task_attempts (task_id, started_at, seq)",
                // At most one attempt of a task runs at a time.
                "CREATE UNIQUE INDEX task_attempts_one_running ON task_attempts (task_id) WHERE outcome = 'running'",
                """
                CREATE TABLE api_keys (
                    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                    id         TEXT   NOT NULL PRIMARY KEY,
                    tenant     TEXT   NOT NULL,
                    key_hash   TEXT   NOT NULL UNIQUE,
                    prefix     TEXT   NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX api_keys_by_prefix ON api_keys (prefix)",
            ]),
        PostgresMigration(
            version: 2, name: "worker_tokens",
            statements: [
                // Remote workers' credentials, kept apart from api_keys so neither can stand in for the other.
                """
                CREATE TABLE worker_tokens (
                    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                    id         TEXT   NOT NULL PRIMARY KEY,
                    name       TEXT   NOT NULL,
                    token_hash TEXT   NOT NULL UNIQUE,
                    prefix     TEXT   NOT NULL,
                    created_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX worker_tokens_by_prefix ON worker_tokens (prefix)",
            ]),
        PostgresMigration(
            version: 3, name: "active tasks by tenant, rate buckets",
            statements: [
                // The per-tenant cap on queued + running tasks counts these rows at every submit.
                "CREATE INDEX tasks_active_by_tenant ON tasks (tenant) WHERE status IN ('queued', 'processing')",
                // One token bucket per rate-limited key, shared by every API node.
                """
                CREATE TABLE rate_buckets (
                    key        TEXT             NOT NULL PRIMARY KEY,
                    tokens     DOUBLE PRECISION NOT NULL,
                    updated_at BIGINT           NOT NULL
                )
                """,
            ]),
        PostgresMigration(
            version: 4, name: "engine routing",
            statements: [
                // Each task is routed to an engine at submit and needs some request features (RequestFeatures bits:
                // 1 end_image, 2 multi_prompt, 4 sound); a claim takes only tasks of its engines whose features it has.
                // Before routing every task was a motion task: queued and running ones are routed there, finished ones
                // keep the engine that ran them. Features come from the stored request (the same keys in every version).
                "ALTER TABLE tasks ADD COLUMN features INTEGER NOT NULL DEFAULT 0",
                "UPDATE tasks SET engine = 'motion' WHERE engine IS NULL OR status IN ('queued', 'processing')",
                """
                UPDATE tasks SET features =
                    (CASE WHEN end_image_key IS NOT NULL THEN 1 ELSE 0 END)
                    | (CASE WHEN jsonb_typeof(request_json::jsonb -> 'shots') = 'array' THEN 2 ELSE 0 END)
                    | (CASE WHEN (request_json::jsonb ->> 'sound') = 'true' THEN 4 ELSE 0 END)
                """,
                "ALTER TABLE tasks ALTER COLUMN engine SET NOT NULL",
                "CREATE INDEX tasks_queued_by_engine ON tasks (engine, created_at, seq) WHERE status = 'queued'",
            ]),
        PostgresMigration(
            version: 5, name: "default engine per API key",
            statements: [
                "ALTER TABLE api_keys ADD COLUMN default_engine TEXT"
            ]),
        PostgresMigration(
            version: 6, name: "worker presence",
            statements: [
                // Who is looking for which work: lets a queued task's ETA say when no live worker can run it.
                """
                CREATE TABLE worker_presence (
                    worker_id    TEXT    NOT NULL PRIMARY KEY,
                    engines      TEXT[]  NOT NULL,
                    capabilities INTEGER NOT NULL,
                    last_seen    BIGINT  NOT NULL
                )
                """
            ]),
        PostgresMigration(
            version: 7, name: "one credentials table",
            statements: [
                // API keys and worker tokens are one concept (a hashed secret of a kind, with an owner): one table, one set
                // of store methods. The kind is part of every lookup, so neither can stand in for the other.
                """
                CREATE TABLE credentials (
                    seq            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                    kind           TEXT   NOT NULL CHECK (kind IN ('api_key', 'worker_token')),
                    id             TEXT   NOT NULL PRIMARY KEY,
                    owner          TEXT   NOT NULL,
                    hash           TEXT   NOT NULL UNIQUE,
                    prefix         TEXT   NOT NULL,
                    created_at     BIGINT NOT NULL,
                    revoked_at     BIGINT,
                    default_engine TEXT
                )
                """,
                "CREATE INDEX credentials_by_prefix ON credentials (kind, prefix)",
                """
                INSERT INTO credentials (kind, id, owner, hash, prefix, created_at, revoked_at, default_engine)
                SELECT 'api_key', id, tenant, key_hash, prefix, created_at, revoked_at, default_engine FROM api_keys ORDER BY seq
                """,
                """
                INSERT INTO credentials (kind, id, owner, hash, prefix, created_at, revoked_at)
                SELECT 'worker_token', id, name, token_hash, prefix, created_at, revoked_at FROM worker_tokens ORDER BY seq
                """,
                "DROP TABLE api_keys",
                "DROP TABLE worker_tokens",
            ]),
        PostgresMigration(
            version: 8, name: "upstream handles",
            statements: [
                // Where a task stands at a hosted provider (UpstreamHandle as JSON), and the provider's task id on its
                // own so the lease rules can tell an accepted task (followed, never submitted again) in plain SQL.
                "ALTER TABLE tasks ADD COLUMN upstream TEXT",
                "ALTER TABLE tasks ADD COLUMN upstream_id TEXT",
            ]),
        PostgresMigration(
            version: 9, name: "idempotency keys",
            statements: [
                // One row per tenant and Idempotency-Key: the primary key makes concurrent submits with one key, on
                // any node, create one task.
                """
                CREATE TABLE idempotency_keys (
                    tenant       TEXT   NOT NULL,
                    key          TEXT   NOT NULL,
                    request_hash TEXT   NOT NULL,
                    task_id      UUID   NOT NULL,
                    created_at   BIGINT NOT NULL,
                    PRIMARY KEY (tenant, key)
                )
                """,
                "CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at)",
            ]),
        PostgresMigration(
            version: 10, name: "recent successes by engine",
            statements: [
                // A queued task's eta reads its engine's last successes; this keeps that read short in a long history.
                "CREATE INDEX tasks_succeeded_by_engine ON tasks (engine, finished_at) WHERE status = 'succeeded'"
            ]),
        PostgresMigration(
            version: 11, name: "webhook outbox and secrets",
            statements: [
                // The outbox: one row per task event, written by a trigger in the transaction that makes a task with a
                // webhook URL terminal, so every path to a terminal status records its event and a crash loses none.
                """
                CREATE TABLE webhook_deliveries (
                    webhook_id       TEXT    NOT NULL PRIMARY KEY,
                    task_id          UUID    NOT NULL,
                    tenant           TEXT    NOT NULL,
                    url              TEXT    NOT NULL,
                    event_type       TEXT    NOT NULL,
                    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
                    attempts         INTEGER NOT NULL DEFAULT 0,
                    last_status_code INTEGER,
                    last_error       TEXT,
                    next_attempt_at  BIGINT,
                    claimed_by       TEXT,
                    claimed_until    BIGINT,
                    created_at       BIGINT  NOT NULL,
                    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL))
                )
                """,
                "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
                "CREATE INDEX webhook_deliveries_by_task ON webhook_deliveries (task_id)",
                // The URL as the submit stored it (`webhook_url` in the versioned request JSON, `webhookURL` in the first).
                """
                CREATE FUNCTION kinema_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE
                    target TEXT := COALESCE(NEW.request_json::jsonb ->> 'webhook_url', NEW.request_json::jsonb ->> 'webhookURL');
                BEGIN
                    IF target IS NOT NULL THEN
                        INSERT INTO webhook_deliveries (webhook_id, task_id, tenant, url, event_type, status, next_attempt_at, created_at)
                        VALUES ('msg_' || replace(NEW.id::text, '-', ''), NEW.id, NEW.tenant, target, 'ASYNC_TASK_RESULT', 'pending',
                                NEW.finished_at, NEW.finished_at)
                        ON CONFLICT (webhook_id) DO NOTHING;
                    END IF;
                    RETURN NEW;
                END
                $$
                """,
                """
                CREATE TRIGGER tasks_webhook_outbox AFTER UPDATE OF status ON tasks FOR EACH ROW
                WHEN (NEW.status IN ('succeeded', 'failed', 'canceled') AND OLD.status NOT IN ('succeeded', 'failed', 'canceled'))
                EXECUTE FUNCTION kinema_webhook_outbox()
                """,
                // Signing secrets, readable (HMAC needs them): whoever reads this database can sign as Kinema.
                """
                CREATE TABLE webhook_secrets (
                    tenant         TEXT   NOT NULL PRIMARY KEY,
                    secret         TEXT   NOT NULL,
                    previous       TEXT,
                    previous_until BIGINT,
                    created_at     BIGINT NOT NULL
                )
                """,
            ]),
        PostgresMigration(
            version: 12, name: "retention",
            statements: [
                // When retention deleted a task's inputs and its result (the row stays; a deleted result reads as none).
                "ALTER TABLE tasks ADD COLUMN inputs_deleted_at BIGINT",
                "ALTER TABLE tasks ADD COLUMN result_deleted_at BIGINT",
                """
                CREATE INDEX tasks_inputs_due ON tasks (finished_at)
                WHERE status IN ('succeeded', 'failed', 'canceled') AND inputs_deleted_at IS NULL
                """,
                "CREATE INDEX tasks_results_due ON tasks (finished_at) WHERE status = 'succeeded' AND result_deleted_at IS NULL",
                // One node at a time runs each maintenance job (the retention sweep).
                """
                CREATE TABLE maintenance_claims (
                    name          TEXT   NOT NULL PRIMARY KEY,
                    holder        TEXT   NOT NULL,
                    claimed_until BIGINT NOT NULL
                )
                """,
            ]),
    ]

    /// The schema version this build migrates databases to.
    public static var currentSchemaVersion: Int { migrations.last?.version ?? 0 }

    /// Brings the schema up to date: applies every pending migration and records it in `schema_migrations`.
    ///
    /// Safe when several nodes start at the same moment: the check and the changes run in one
    /// transaction under a transaction-scoped advisory lock, so one node migrates and the others then
    /// find nothing to do. Refuses a database whose schema is newer than this build knows. Needs
    /// `run()` to be running. Throws `StoreError(.migrationFailed)` (or `.unavailable` when unreachable).
    public func migrate() async throws {
        let target = self.target
        let logger = self.logger
        let applied: [Int] = try await transaction { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: logger).collect()
            _ = try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    INTEGER NOT NULL PRIMARY KEY,
                    name       TEXT    NOT NULL,
                    applied_at BIGINT  NOT NULL
                )
                """, logger: logger
            ).collect()
            var done = Set<Int>()
            for row in try await connection.query("SELECT version FROM schema_migrations", logger: logger).collect() {
                done.insert(try row.decode(Int.self))
            }
            if let newest = done.max(), newest > Self.currentSchemaVersion {
                throw StoreError(
                    .migrationFailed,
                    "the database at \(target) has schema version \(newest), newer than this build's "
                        + "\(Self.currentSchemaVersion); upgrade this binary"
                )
            }
            var applied: [Int] = []
            for migration in Self.migrations where !done.contains(migration.version) {
                do {
                    for statement in migration.statements {
                        _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                    }
                    let nowMs = PostgresTaskRow.millis(Date())
                    _ = try await connection.query(
                        """
                        INSERT INTO schema_migrations (version, name, applied_at)
                        VALUES (\(migration.version), \(migration.name), \(nowMs))
                        """, logger: logger
                    ).collect()
                } catch {
                    let cause = Self.storeError(error, target: target)
                    throw StoreError(
                        .migrationFailed,
                        "migration \(migration.version) (\(migration.name)) failed: \((cause as? StoreError)?.message ?? "\(cause)")"
                    )
                }
                applied.append(migration.version)
            }
            return applied
        }
        if !applied.isEmpty {
            logger.notice("migrated the task database", metadata: ["database": "\(target)", "versions": "\(applied)"])
        }
    }

    /// The schema version of the database (the newest applied migration; 0 before the first `migrate()`).
    public func schemaVersion() async throws -> Int {
        let logger = self.logger
        return try await withConnection { connection in
            let exists = try await connection.query(
                "SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger
            ).collect()
            guard try exists.first?.decode(Bool.self) == true else { return 0 }
            let rows = try await connection.query(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", logger: logger
            ).collect()
            return try rows.first?.decode(Int.self) ?? 0
        }
    }
}
