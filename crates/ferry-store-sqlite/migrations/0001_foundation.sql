-- Teams, users, roles, the environment pipeline, applications and the audit chain.
-- Times are milliseconds since the Unix epoch.

CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE roles (
    name          TEXT PRIMARY KEY,
    -- comma-separated capability names
    capabilities  TEXT NOT NULL
);

CREATE TABLE environments (
    name                TEXT PRIMARY KEY,
    position            INTEGER NOT NULL,
    approvals_required  INTEGER NOT NULL CHECK (approvals_required >= 0),
    self_approval       INTEGER NOT NULL CHECK (self_approval IN (0, 1)),
    protected           INTEGER NOT NULL CHECK (protected IN (0, 1))
);

CREATE TABLE role_levels (
    role   TEXT NOT NULL REFERENCES roles (name),
    env    TEXT NOT NULL REFERENCES environments (name),
    level  TEXT NOT NULL CHECK (level IN ('none', 'view', 'deploy', 'approve', 'admin')),
    PRIMARY KEY (role, env)
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    default_role   TEXT NOT NULL REFERENCES roles (name),
    -- argon2 PHC string once the user sets a dashboard password
    password_hash  TEXT,
    created_ms     INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    team_id  INTEGER NOT NULL REFERENCES teams (id),
    -- NULL: the user's default role applies inside the team
    role     TEXT REFERENCES roles (name),
    PRIMARY KEY (user_id, team_id)
);

CREATE TABLE api_tokens (
    hash        TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    created_ms  INTEGER NOT NULL
);

CREATE TABLE apps (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    team_id        INTEGER NOT NULL REFERENCES teams (id),
    keep_releases  INTEGER NOT NULL CHECK (keep_releases > 0),
    created_ms     INTEGER NOT NULL
);

CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    app        TEXT,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE INDEX audit_events_by_app ON audit_events (app, seq);

-- The last link of the chain, so events removed from the end are detected.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
