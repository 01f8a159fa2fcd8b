-- A SQLite task database written by the release before engine routing (schema version 3, requests stored with
-- Swift property names): made by that build's `kinema serve` with four submits and a remote worker (one task failed,
-- one left running). Its dev API key was kin_u1JuT3SrDSJFSNYKE2IH3RKoHIXxefeoUOxmM1X6BiI and its worker token
-- kwt_eAGdrh4i6V_3j1A-FQiVju09qWnX0rI8eTGo6nAmxgs (throwaway secrets of this fixture). SQLiteUpgradeTests loads it.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_migrations (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT;
INSERT INTO schema_migrations VALUES(1,'tasks, task_attempts, api_keys',1796556271642);
INSERT INTO schema_migrations VALUES(2,'worker_tokens',1796556271642);
INSERT INTO schema_migrations VALUES(3,'active tasks by tenant',1796556271642);
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
) STRICT;
INSERT INTO tasks VALUES('14F7ECC5-FE71-4739-92DA-76A09DD3F944','default','failed','{"cfgScale":0.5,"duration":5,"hasEndImage":false,"prompt":"slow push in","seed":7,"sound":false}','inputs/14f7ecc5-fe71-4739-92da-76a09dd3f944/image.png',NULL,NULL,'bad input',0,3,1,3,'gpu',1796556280575,1796556280729,1796556280804,1796556280804,NULL,NULL,NULL);
INSERT INTO tasks VALUES('4BB00816-BBBC-4F7B-BAF3-208F69F884E0','default','processing','{"cfgScale":0.5,"duration":8,"hasEndImage":false,"negativePrompt":"shake","seed":8,"shots":[{"duration":3,"prompt":"wide shot"},{"duration":5,"prompt":"close up, rain"}],"sound":true}','inputs/4bb00816-bbbc-4f7b-baf3-208f69f884e0/image.png',NULL,NULL,'',0,5,1,3,'gpu',1796556280589,1796556280817,NULL,1796556280817,'E6312819-AD61-4A05-8D4C-B0733A4C1710','remote/f00b1a3d-ba6e-476a-9039-465355c607ae/box',1796556310817);
INSERT INTO tasks VALUES('C5344E54-F3C2-42F9-89AF-B85861E5A41C','default','queued','{"cfgScale":0.25,"duration":4,"hasEndImage":true,"prompt":"dissolve","seed":9,"sound":false,"webhookURL":"https:\/\/hooks.example\/x"}','inputs/c5344e54-f3c2-42f9-89af-b85861e5a41c/image.png','inputs/c5344e54-f3c2-42f9-89af-b85861e5a41c/end_image.png',NULL,'',0,3,0,3,NULL,1796556280608,NULL,NULL,1796556280608,NULL,NULL,NULL);
INSERT INTO tasks VALUES('4AB1DC24-40E1-41C2-9E35-8870D694604B','default','queued','{"cfgScale":0.5,"duration":5,"hasEndImage":false,"prompt":"pan left with sound","seed":10,"sound":true}','inputs/4ab1dc24-40e1-41c2-9e35-8870d694604b/image.png',NULL,NULL,'',0,3,0,3,NULL,1796556280625,NULL,NULL,1796556280625,NULL,NULL,NULL);
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
INSERT INTO task_attempts VALUES('55C48A7C-D433-454A-82B7-8CFC84D8E400','14F7ECC5-FE71-4739-92DA-76A09DD3F944',1,'remote/f00b1a3d-ba6e-476a-9039-465355c607ae/box',1796556280729,1796556280804,'failed','bad input');
INSERT INTO task_attempts VALUES('E6312819-AD61-4A05-8D4C-B0733A4C1710','4BB00816-BBBC-4F7B-BAF3-208F69F884E0',1,'remote/f00b1a3d-ba6e-476a-9039-465355c607ae/box',1796556280817,NULL,'running',NULL);
CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    key_hash   TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
INSERT INTO api_keys VALUES('429e817e-03c4-4943-8260-ecdac86c6e06','default','408d7d714df3c3ab47f9dbc80b52507c2f15920725f774990d2bc14e293037b4','kin_u1JuT3',1796556271648,NULL);
CREATE TABLE worker_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
INSERT INTO worker_tokens VALUES('f00b1a3d-ba6e-476a-9039-465355c607ae','legacy','3824af61f4e84e158eedc7cd7f6b5ae3f17e68d592fb706cc801439f4b56fe4f','kwt_eAGdrh',1796556280698,NULL);
CREATE INDEX tasks_by_status_created ON tasks (status, created_at);
CREATE INDEX tasks_running_by_expiry ON tasks (lease_expires_at) WHERE status = 'processing';
CREATE INDEX tasks_running_by_owner ON tasks (lease_owner) WHERE status = 'processing';
CREATE INDEX tasks_by_tenant_created ON tasks (tenant, created_at);
CREATE INDEX task_attempts_by_task ON task_attempts (task_id, started_at);
CREATE UNIQUE INDEX task_attempts_one_running ON task_attempts (task_id) WHERE outcome = 'running';
CREATE INDEX api_keys_by_prefix ON api_keys (prefix);
CREATE INDEX worker_tokens_by_prefix ON worker_tokens (prefix);
CREATE INDEX tasks_active_by_tenant ON tasks (tenant) WHERE status IN ('queued', 'processing');
COMMIT;
