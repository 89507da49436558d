-- Revocation: users an admin disabled, targets taken out of service, and the audit head's
-- seal.

-- When an admin disabled the user; NULL while enabled. A disabled user's tokens are refused.
ALTER TABLE users ADD COLUMN disabled_ms INTEGER;

-- When the target was removed; NULL while in service. A removed target has no credential
-- and no enrollment tokens; its rows stay for history, and enrolling its name again brings
-- it back.
ALTER TABLE targets ADD COLUMN removed_ms INTEGER;

-- A removed target leaves status, and one enrolled again comes back to it.
CREATE TRIGGER targets_removed_status AFTER UPDATE OF removed_ms ON targets
    WHEN OLD.removed_ms IS NOT NEW.removed_ms
    BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- The head's seal: a MAC of (seq, hash) under a key derived from the audit key, which is
-- kept outside the database, so a trail cut short cannot be given an older event as its
-- head. The head of an existing trail is sealed when ferry first opens it after this
-- migration.
ALTER TABLE audit_head ADD COLUMN seal TEXT;
