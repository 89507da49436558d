-- Dashboard sessions: a browser's login, kept by the hash of its cookie (the cookie itself is
-- never stored). A session ends when it expires, when its user logs out, and with the user's
-- tokens: rotating them, disabling the user or setting their password removes every session.
CREATE TABLE sessions (
    hash        TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
