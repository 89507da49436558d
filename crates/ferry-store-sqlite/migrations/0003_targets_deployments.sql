-- Targets (servers running `ferry agent`), where applications are placed, what each target
-- should run and runs, and deployments.

CREATE TABLE targets (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    env              TEXT NOT NULL REFERENCES environments (name),
    -- hash of the agent's long-lived credential, once enrolled
    credential_hash  TEXT UNIQUE,
    enrolled_ms      INTEGER,
    last_seen_ms     INTEGER,
    created_ms       INTEGER NOT NULL
);

-- One-time enrollment tokens, stored only as hashes.
CREATE TABLE enrollment_tokens (
    hash        TEXT PRIMARY KEY,
    target_id   INTEGER NOT NULL REFERENCES targets (id),
    expires_ms  INTEGER NOT NULL
);

-- Explicit placements; an application with none in an environment runs on all its targets.
CREATE TABLE placements (
    app_id     INTEGER NOT NULL REFERENCES apps (id),
    target_id  INTEGER NOT NULL REFERENCES targets (id),
    PRIMARY KEY (app_id, target_id)
);

-- Per target and application: what it should run (set by deployments) and what it reported.
CREATE TABLE target_apps (
    target_id        INTEGER NOT NULL REFERENCES targets (id),
    app_id           INTEGER NOT NULL REFERENCES apps (id),
    desired_version  TEXT,
    -- the deployment that set the desired version, so the agent can report against it
    deployment_id    INTEGER,
    current_version  TEXT,
    state            TEXT NOT NULL DEFAULT 'unknown',
    detail           TEXT,
    updated_ms       INTEGER NOT NULL,
    PRIMARY KEY (target_id, app_id)
);

CREATE TABLE deployments (
    id            INTEGER PRIMARY KEY,
    app_id        INTEGER NOT NULL REFERENCES apps (id),
    env           TEXT NOT NULL REFERENCES environments (name),
    version       TEXT NOT NULL,
    -- deploy or rollback
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    -- the domain's deployment state machine, as JSON
    state         TEXT NOT NULL,
    reason        TEXT,
    requested_by  TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

-- One running deployment per application and environment.
CREATE UNIQUE INDEX deployments_one_running ON deployments (app_id, env) WHERE status = 'running';
CREATE INDEX deployments_by_app ON deployments (app_id, id);

-- Releases rolled back in an environment: nothing redeploys them automatically.
CREATE TABLE bad_releases (
    app_id   INTEGER NOT NULL REFERENCES apps (id),
    env      TEXT NOT NULL REFERENCES environments (name),
    version  TEXT NOT NULL,
    PRIMARY KEY (app_id, env, version)
);
