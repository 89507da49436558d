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

-- A deployment delivers a release with a configuration revision (0: none); targets are
-- asked to run one (`desired_config`, with `desired_version`) and report the one they serve.
ALTER TABLE deployments ADD COLUMN config_revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE target_apps ADD COLUMN desired_config BIGINT NOT NULL DEFAULT 0;
ALTER TABLE target_apps ADD COLUMN current_config BIGINT NOT NULL DEFAULT 0;

-- The configuration a target serves shows in status, as its version does.
DROP TRIGGER target_apps_update_status ON target_apps;
CREATE TRIGGER target_apps_update_status AFTER UPDATE ON target_apps FOR EACH ROW
    WHEN (OLD.current_version IS DISTINCT FROM NEW.current_version
        OR OLD.state IS DISTINCT FROM NEW.state
        OR OLD.current_config IS DISTINCT FROM NEW.current_config
        OR OLD.target_id IS DISTINCT FROM NEW.target_id OR OLD.app_id IS DISTINCT FROM NEW.app_id)
    EXECUTE FUNCTION bump_status_revision();

-- The id of the secret key the installation's secrets are sealed with (a hash of the key,
-- never the key), claimed by the first server that starts: every server sharing the
-- database checks its key against it, before any secret exists. One row.
CREATE TABLE secret_key (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    key_id  TEXT NOT NULL
);
