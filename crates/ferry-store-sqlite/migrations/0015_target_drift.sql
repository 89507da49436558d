-- What each target's agent last found comparing an application's files with the release it
-- runs (drift): the release, the paths that differ (a JSON array of {path, change,
-- first_seen_ms}, sorted by path; empty when none does; the first 10,000 when more do),
-- how many differ, and when the agent checked. One row per target and application,
-- replaced by every report; removing the target removes it.
CREATE TABLE target_drift (
    target_id   INTEGER NOT NULL REFERENCES targets (id),
    app_id      INTEGER NOT NULL REFERENCES apps (id),
    version     TEXT NOT NULL,
    paths       TEXT NOT NULL,
    path_count  INTEGER NOT NULL CHECK (path_count >= 0),
    checked_ms  INTEGER NOT NULL,
    PRIMARY KEY (target_id, app_id)
);

-- Drift shows in status: new findings count, a check that found the same does not.
CREATE TRIGGER target_drift_insert_status AFTER INSERT ON target_drift BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER target_drift_update_status AFTER UPDATE ON target_drift
    WHEN OLD.version IS NOT NEW.version OR OLD.paths IS NOT NEW.paths OR OLD.path_count IS NOT NEW.path_count
        OR OLD.target_id IS NOT NEW.target_id OR OLD.app_id IS NOT NEW.app_id
    BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER target_drift_delete_status AFTER DELETE ON target_drift BEGIN UPDATE status_revision SET revision = revision + 1; END;
