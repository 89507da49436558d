-- Immutable releases and the reference counts of the content blobs they use.

CREATE TABLE releases (
    id          INTEGER PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps (id),
    version     TEXT NOT NULL,
    -- the manifest's digest: equal digests, equal trees
    digest         TEXT NOT NULL,
    -- the blob holding the manifest (compressed)
    manifest_blob  TEXT NOT NULL,
    files       INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    -- where the tree came from, as JSON
    source      TEXT NOT NULL,
    notes       TEXT,
    created_ms  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    UNIQUE (app_id, version)
);

-- How many releases reference each blob; a blob without a row may be garbage collected.
CREATE TABLE blob_refs (
    hash  TEXT PRIMARY KEY,
    size  INTEGER NOT NULL,
    refs  INTEGER NOT NULL CHECK (refs > 0)
);
