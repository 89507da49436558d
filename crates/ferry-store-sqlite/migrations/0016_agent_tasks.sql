-- Agent tasks: work a person asked of one target's agent for one application (check for
-- drift now, capture, back up, restore). `work` is the request as the API's JSON; the agent
-- reports `state` (succeeded or failed), its `message` and a JSON `detail`. A pending task
-- past its time is shown expired; nothing rewrites it.
CREATE TABLE agent_tasks (
    id            INTEGER PRIMARY KEY,
    target_id     INTEGER NOT NULL REFERENCES targets (id),
    app_id        INTEGER NOT NULL REFERENCES apps (id),
    work          TEXT NOT NULL,
    state         TEXT NOT NULL,
    message       TEXT,
    detail        TEXT,
    requested_by  TEXT NOT NULL,
    requested_ms  INTEGER NOT NULL,
    finished_ms   INTEGER
);
CREATE INDEX agent_tasks_pending ON agent_tasks (target_id, requested_ms) WHERE state = 'pending';
