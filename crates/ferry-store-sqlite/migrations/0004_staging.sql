-- A release a target is asked to stage ahead of switching to it, and the deployment asking.
ALTER TABLE target_apps ADD COLUMN stage_version TEXT;
ALTER TABLE target_apps ADD COLUMN stage_deployment INTEGER;
