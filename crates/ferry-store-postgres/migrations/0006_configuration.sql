-- Applications' configuration per environment (`ferry config`): one row per revision,
-- holding the whole configuration. `entries` is a JSON array of {key, value} (in clear) or
-- {key, sealed} (a secret, encrypted by the server under its secret key, whose id is
-- `sealed_with`); `changes` a JSON array of what the revision changed, by key. The
-- environment is a name (an environment's rename updates it; its removal removes its
-- configuration).
CREATE TABLE config_revisions (
    app_id       BIGINT NOT NULL REFERENCES apps (id),
    env          TEXT NOT NULL,
    revision     BIGINT NOT NULL CHECK (revision > 0),
    created_ms   BIGINT NOT NULL,
    author       TEXT NOT NULL,
    entries      TEXT NOT NULL,
    changes      TEXT NOT NULL,
    sealed_with  TEXT,
    PRIMARY KEY (app_id, env, revision)
);
