-- Applications' configuration per environment (`ferry config`): one row per revision,
-- holding the whole configuration. `entries` is a JSON array of {key, value} (in clear) or
-- {key, sealed} (a secret, encrypted by the server under its secret key, whose id is
-- `sealed_with`); `changes` a JSON array of what the revision changed, by key. The
-- environment is a name (an environment's rename updates it; its removal removes its
-- configuration).
CREATE TABLE config_revisions (
    app_id       INTEGER NOT NULL REFERENCES apps (id),
    env          TEXT NOT NULL,
    revision     INTEGER NOT NULL CHECK (revision > 0),
    created_ms   INTEGER NOT NULL,
    author       TEXT NOT NULL,
    entries      TEXT NOT NULL,
    changes      TEXT NOT NULL,
    sealed_with  TEXT,
    PRIMARY KEY (app_id, env, revision)
);

-- A deployment delivers a release with a configuration revision (0: none); targets are
-- asked to run one (`desired_config`, with `desired_version`) and report the one they serve.
ALTER TABLE deployments ADD COLUMN config_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE target_apps ADD COLUMN desired_config INTEGER NOT NULL DEFAULT 0;
ALTER TABLE target_apps ADD COLUMN current_config INTEGER NOT NULL DEFAULT 0;

-- The configuration a target serves shows in status, as its version does.
DROP TRIGGER target_apps_update_status;
CREATE TRIGGER target_apps_update_status AFTER UPDATE ON target_apps
    WHEN OLD.current_version IS NOT NEW.current_version OR OLD.state IS NOT NEW.state
        OR OLD.current_config IS NOT NEW.current_config
        OR OLD.target_id IS NOT NEW.target_id OR OLD.app_id IS NOT NEW.app_id
    BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- The id of the secret key the installation's secrets are sealed with (a hash of the key,
-- never the key), claimed by the first server that starts: every server sharing the
-- database checks its key against it, before any secret exists. One row.
CREATE TABLE secret_key (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    key_id  TEXT NOT NULL
);
