-- Notifications: each team's channels, the deliveries derived from the audit trail (the
-- outbox), and the cursor saying how far the trail has been turned into deliveries.

CREATE TABLE notification_channels (
    id           INTEGER PRIMARY KEY,
    team_id      INTEGER NOT NULL REFERENCES teams (id),
    -- the channel as JSON (ferry_notify::Channel), webhook secret and SMTP password included
    config       TEXT NOT NULL,
    -- one line without secrets (Channel::describe), kept for the delivery log after removal
    description  TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    -- NULL while the channel is in use; a removed channel keeps its delivery log
    removed_ms   INTEGER
);
CREATE INDEX notification_channels_in_use ON notification_channels (team_id)
    WHERE removed_ms IS NULL;

CREATE TABLE notification_deliveries (
    id               INTEGER PRIMARY KEY,
    channel_id       INTEGER NOT NULL REFERENCES notification_channels (id),
    team_id          INTEGER NOT NULL REFERENCES teams (id),
    event            TEXT NOT NULL,
    -- the audit event the delivery comes from
    audit_seq        INTEGER,
    -- the ferry_notify::Message as JSON
    message          TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    -- when a pending delivery is due
    next_attempt_ms  INTEGER NOT NULL,
    -- a notifier sending it holds it until then, so no other one sends it meanwhile
    claimed_until_ms INTEGER,
    last_attempt_ms  INTEGER,
    last_error       TEXT,
    -- what the receiver answered, e.g. "HTTP 200"
    detail           TEXT,
    created_ms       INTEGER NOT NULL,
    finished_ms      INTEGER,
    -- an audit event becomes at most one delivery per channel
    UNIQUE (audit_seq, channel_id)
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_ms)
    WHERE status = 'pending';
CREATE INDEX notification_deliveries_by_team ON notification_deliveries (team_id, id);

-- The last audit event turned into deliveries; set to the end of the trail the first time
-- the notifier runs, so enabling notifications does not replay history.
CREATE TABLE notification_cursor (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
);
