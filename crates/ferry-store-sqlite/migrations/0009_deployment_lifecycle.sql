-- A deployment's state machine (`state`) is the one source of its status and reason; the
-- `status` and `reason` columns copy it for queries and indexes. Before, a deployment
-- awaiting approval kept `running` inside its state, and a rejected or withdrawn one was
-- `failed` in its column while its state still said `running`.
UPDATE deployments SET status = CASE WHEN reason LIKE 'rejected by %' THEN 'rejected' ELSE 'withdrawn' END
    WHERE status = 'failed' AND json_extract(state, '$.status') = 'running'
      AND (reason LIKE 'rejected by %' OR reason LIKE 'withdrawn by %');
UPDATE deployments SET state = json_set(state, '$.steps',
        (SELECT json_group_array(json_set(value, '$.state', 'skipped'))
         FROM json_each(deployments.state, '$.steps')))
    WHERE status IN ('rejected', 'withdrawn');
UPDATE deployments SET state = json_set(state, '$.status', status, '$.reason', reason)
    WHERE json_extract(state, '$.status') IS NOT status
       OR json_extract(state, '$.reason') IS NOT reason;

-- Every stored change of a deployment grows its revision by one, and is saved only over the
-- revision it was made from: two servers (or two requests) changing one deployment at once
-- cannot both win.
ALTER TABLE deployments ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
