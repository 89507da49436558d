-- What each target's agent last said of itself: its ferry version, the agent protocol it
-- speaks, the space on its root's filesystem (bytes), and when (ms). NULL until it said so.
ALTER TABLE targets ADD COLUMN agent_version TEXT;
ALTER TABLE targets ADD COLUMN agent_protocol INTEGER;
ALTER TABLE targets ADD COLUMN agent_disk_free INTEGER;
ALTER TABLE targets ADD COLUMN agent_disk_total INTEGER;
ALTER TABLE targets ADD COLUMN agent_said_ms INTEGER;
