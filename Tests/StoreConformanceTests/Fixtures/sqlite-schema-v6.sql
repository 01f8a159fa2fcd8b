PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT;
INSERT INTO schema_migrations VALUES(1,'tasks, task_attempts, api_keys',1796565990821);
INSERT INTO schema_migrations VALUES(2,'worker_tokens',1796565990821);
INSERT INTO schema_migrations VALUES(3,'active tasks by tenant',1796565990821);
INSERT INTO schema_migrations VALUES(4,'engine routing',1796565990821);
INSERT INTO schema_migrations VALUES(5,'default engine per API key',1796565990821);
INSERT INTO schema_migrations VALUES(6,'worker presence',1796565990821);
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
    lease_expires_at INTEGER, features INTEGER NOT NULL DEFAULT 0,
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
) STRICT;
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
) STRICT;
CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    key_hash   TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
, default_engine TEXT) STRICT;
INSERT INTO api_keys VALUES('67c93418-3062-4823-9345-6871f93314a7','acme','11321e6574b86ff00631dcbee29c8cbd7445e108804706283d6a1e7d32defa49','kin_oUIqT0',1796565990816,NULL,'motion');
INSERT INTO api_keys VALUES('271b3ef6-06e3-426b-aeb5-bcba48c4ec36','globex','26db77cfac152ed89b933dfb585182dad09dbec7cb8182978496e84a00f9137c','kin_8mzSjH',1796565990884,1796565991015,NULL);
CREATE TABLE worker_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
INSERT INTO worker_tokens VALUES('fdae1781-f006-48d9-ae59-2d060b853a1b','gpu-box','9d6ab9b919944c1e04ede46aeeec677196103c09f21fc96281fbe965173a2177','kwt_KRLbvx',1796565990948,NULL);
CREATE TABLE worker_presence (
    worker_id    TEXT    NOT NULL PRIMARY KEY,
    engines      TEXT    NOT NULL,
    capabilities INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
) STRICT;
CREATE INDEX tasks_by_status_created ON tasks (status, created_at);
CREATE INDEX tasks_running_by_expiry ON tasks (lease_expires_at) WHERE status = 'processing';
CREATE INDEX tasks_running_by_owner ON tasks (lease_owner) WHERE status = 'processing';
CREATE INDEX tasks_by_tenant_created ON tasks (tenant, created_at);
CREATE INDEX task_attempts_by_task ON task_attempts (task_id, started_at);
CREATE UNIQUE INDEX task_attempts_one_running ON task_attempts (task_id) WHERE outcome = 'running';
CREATE INDEX api_keys_by_prefix ON api_keys (prefix);
CREATE INDEX worker_tokens_by_prefix ON worker_tokens (prefix);
CREATE INDEX tasks_active_by_tenant ON tasks (tenant) WHERE status IN ('queued', 'processing');
CREATE INDEX tasks_queued_by_engine ON tasks (engine, created_at) WHERE status = 'queued';
COMMIT;
