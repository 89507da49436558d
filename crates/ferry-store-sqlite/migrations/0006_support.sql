-- Production support: rotations and escalation per team, routing by category, incidents,
-- backlog items and backport obligations.

-- The team that maintains an application, when it is not the one that owns it.
ALTER TABLE apps ADD COLUMN maintainer_team_id INTEGER REFERENCES teams (id);

-- The incident a hotfix release fixes.
ALTER TABLE releases ADD COLUMN incident_id INTEGER;

-- A team's support rotation (JSON: members in order, shift_ms, start_ms) and how long a
-- critical incident may stay unacknowledged before it escalates.
CREATE TABLE team_support (
    team_id            INTEGER PRIMARY KEY REFERENCES teams (id),
    rotation           TEXT,
    escalate_after_ms  INTEGER NOT NULL CHECK (escalate_after_ms > 0)
);

-- Incidents of a category go to a team, whoever owns the application.
CREATE TABLE routing_rules (
    category  TEXT PRIMARY KEY,
    team_id   INTEGER NOT NULL REFERENCES teams (id)
);

CREATE TABLE incidents (
    id                 INTEGER PRIMARY KEY,
    app_id             INTEGER NOT NULL REFERENCES apps (id),
    env                TEXT NOT NULL REFERENCES environments (name),
    severity           TEXT NOT NULL,
    title              TEXT NOT NULL,
    category           TEXT,
    description        TEXT,
    -- open, acknowledged, resolved
    status             TEXT NOT NULL,
    -- backlog, hotfix-backport, hotfix-merge
    path               TEXT NOT NULL,
    -- the team it was routed to
    team_id            INTEGER NOT NULL REFERENCES teams (id),
    reporter           TEXT NOT NULL,
    -- NULL: the team's leads
    assignee           TEXT,
    escalation_level   INTEGER NOT NULL,
    base_version       TEXT,
    suggested_version  TEXT,
    -- where prd's release came from, as JSON
    source             TEXT,
    opened_ms          INTEGER NOT NULL,
    acknowledged_ms    INTEGER,
    acknowledged_by    TEXT,
    resolved_ms        INTEGER,
    resolved_by        TEXT,
    -- JSON array of {at_ms, actor, what}, oldest first
    history            TEXT NOT NULL
);
CREATE INDEX incidents_unresolved ON incidents (status) WHERE status != 'resolved';

-- Work for the maintaining team, fixed in the normal product path.
CREATE TABLE backlog_items (
    id           INTEGER PRIMARY KEY,
    app_id       INTEGER NOT NULL REFERENCES apps (id),
    team_id      INTEGER NOT NULL REFERENCES teams (id),
    incident_id  INTEGER REFERENCES incidents (id),
    title        TEXT NOT NULL,
    -- open, closed
    status       TEXT NOT NULL,
    -- the release that closed it
    closed_by    TEXT,
    created_ms   INTEGER NOT NULL,
    closed_ms    INTEGER
);

-- A hotfix that reached production must reach dev too.
CREATE TABLE backports (
    id              INTEGER PRIMARY KEY,
    app_id          INTEGER NOT NULL REFERENCES apps (id),
    hotfix_version  TEXT NOT NULL,
    base_version    TEXT NOT NULL,
    incident_id     INTEGER REFERENCES incidents (id),
    -- backport, merge
    mode            TEXT NOT NULL,
    -- open, done, waived
    status          TEXT NOT NULL,
    -- the release that includes the fix, or the user who waived it
    closed_by       TEXT,
    reason          TEXT,
    opened_ms       INTEGER NOT NULL,
    closed_ms       INTEGER,
    UNIQUE (app_id, hotfix_version)
);
