-- An optional environment may be skipped: a release that succeeded before it may go past it.
ALTER TABLE environments ADD COLUMN optional INTEGER NOT NULL DEFAULT 0 CHECK (optional IN (0, 1));
