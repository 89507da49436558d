-- One-off freezes (`ferry env freeze ENV --for 2h --reason TEXT`): at most one per
-- environment, from when it was made until its end, why and by whom. `ferry env unfreeze`
-- removes it; the audit trail keeps every freeze and its end.
CREATE TABLE one_off_freezes (
    env       TEXT PRIMARY KEY REFERENCES environments (name),
    from_ms   INTEGER NOT NULL,
    until_ms  INTEGER NOT NULL CHECK (until_ms > from_ms),
    reason    TEXT NOT NULL,
    by_user   TEXT NOT NULL
);
