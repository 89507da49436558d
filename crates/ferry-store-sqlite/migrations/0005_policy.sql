-- Pipeline policy: hotfix releases, freeze windows, approvals.

-- A hotfix names the release it fixes; it enters the pipeline at pp, not dev.
ALTER TABLE releases ADD COLUMN hotfix_of TEXT;

-- Freeze windows per environment: "CRON DURATION", in UTC.
CREATE TABLE freeze_windows (
    env         TEXT NOT NULL REFERENCES environments (name),
    expression  TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (env, expression)
);

-- Approvals of deployments, each naming the exact release approved.
CREATE TABLE approvals (
    deployment_id  INTEGER NOT NULL REFERENCES deployments (id),
    approver       TEXT NOT NULL,
    version        TEXT NOT NULL,
    reason         TEXT,
    at_ms          INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, approver)
);

-- One active deployment (running or awaiting approval) per application and environment.
DROP INDEX deployments_one_running;
CREATE UNIQUE INDEX deployments_one_active ON deployments (app_id, env)
    WHERE status IN ('running', 'awaiting_approval');

-- A level granted to one user on one application in one environment, beside team roles.
CREATE TABLE app_grants (
    app_id   INTEGER NOT NULL REFERENCES apps (id),
    user_id  INTEGER NOT NULL REFERENCES users (id),
    env      TEXT NOT NULL REFERENCES environments (name),
    level    TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id, env)
);
