-- What each target's agent last found comparing an application's files with the release it
-- runs (drift): the release, the paths that differ (a JSON array of {path, change,
-- first_seen_ms}, sorted by path; empty when none does; the first 10,000 when more do),
-- how many differ, and when the agent checked. One row per target and application,
-- replaced by every report; removing the target removes it.
CREATE TABLE target_drift (
    target_id   BIGINT NOT NULL REFERENCES targets (id),
    app_id      BIGINT NOT NULL REFERENCES apps (id),
    version     TEXT NOT NULL,
    paths       TEXT NOT NULL,
    path_count  BIGINT NOT NULL CHECK (path_count >= 0),
    checked_ms  BIGINT NOT NULL,
    PRIMARY KEY (target_id, app_id)
);

-- Drift shows in status: new findings count, a check that found the same does not.
CREATE TRIGGER target_drift_insert_status AFTER INSERT OR DELETE ON target_drift
    FOR EACH ROW EXECUTE FUNCTION bump_status_revision();
CREATE TRIGGER target_drift_update_status AFTER UPDATE ON target_drift FOR EACH ROW
    WHEN (OLD.version IS DISTINCT FROM NEW.version OR OLD.paths IS DISTINCT FROM NEW.paths
        OR OLD.path_count IS DISTINCT FROM NEW.path_count
        OR OLD.target_id IS DISTINCT FROM NEW.target_id OR OLD.app_id IS DISTINCT FROM NEW.app_id)
    EXECUTE FUNCTION bump_status_revision();
