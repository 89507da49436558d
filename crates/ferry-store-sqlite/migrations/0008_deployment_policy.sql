-- What a deployment was granted when requested, so the approval that starts it judges policy
-- again with the same overrides, and what the regression guard listed for review, so the
-- approver sees it.

-- The overrides given on the request, as JSON (written and read by the server).
ALTER TABLE deployments ADD COLUMN overrides TEXT NOT NULL DEFAULT '{}';

-- The paths to review, as a JSON array of "HOTFIX: PATH".
ALTER TABLE deployments ADD COLUMN review TEXT NOT NULL DEFAULT '[]';
