-- What each target's hooks and health check printed in a deployment: a row per step, in the
-- order the target ran them. A deploy of the same release run again replaces its rows.
CREATE TABLE step_logs (
    deployment_id  INTEGER NOT NULL REFERENCES deployments (id),
    target         TEXT NOT NULL,
    position       INTEGER NOT NULL CHECK (position >= 0),
    version        TEXT NOT NULL,
    step           TEXT NOT NULL,
    command        TEXT NOT NULL,
    ended          TEXT NOT NULL,
    succeeded      INTEGER NOT NULL CHECK (succeeded IN (0, 1)),
    output         TEXT NOT NULL,
    at_ms          INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, target, position)
);
