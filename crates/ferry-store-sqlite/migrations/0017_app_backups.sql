-- Backups of applications' data (`ferry backup`; not the server's own backup): one row per
-- backup a target took, its manifest in blob storage (`manifest_blob`), its blobs counted in
-- blob_refs like a release's so garbage collection keeps them until retention deletes the
-- backup. `paths` is a JSON array of the backup paths, relative to shared/. The environment
-- and target are names as they were (the target may be removed since; an environment's
-- rename updates them).
CREATE TABLE app_backups (
    id             INTEGER PRIMARY KEY,
    app_id         INTEGER NOT NULL REFERENCES apps (id),
    env            TEXT NOT NULL,
    target         TEXT NOT NULL,
    version        TEXT,
    reason         TEXT NOT NULL,
    paths          TEXT NOT NULL,
    requested_by   TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    digest         TEXT NOT NULL,
    manifest_blob  TEXT NOT NULL,
    files          INTEGER NOT NULL CHECK (files >= 0),
    bytes          INTEGER NOT NULL CHECK (bytes >= 0),
    new_bytes      INTEGER NOT NULL CHECK (new_bytes >= 0)
);
CREATE INDEX app_backups_by_app ON app_backups (app_id, created_ms);

-- How often an application's data is backed up (NULL: not on a schedule) and what
-- retention keeps of its backups (as `--backup-keep` writes it). An application without a
-- row keeps the default and has no schedule.
CREATE TABLE app_backup_schedules (
    app_id    INTEGER PRIMARY KEY REFERENCES apps (id),
    every_ms  INTEGER CHECK (every_ms > 0),
    keep      TEXT NOT NULL
);
