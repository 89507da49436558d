-- The status revision: a number bumped in the same transaction as every write that can
-- change what `GET /api/v1/status` shows, so a server (or several sharing one database) can
-- keep the status document it built and serve it while the number stays the same. Writes
-- that status does not show leave it alone: heartbeats (`targets.last_seen_ms`), enrollment,
-- the progress a deploying target reports (`target_apps.detail`), desired and staged
-- versions, a running deployment saving its state machine, releases and placements.

CREATE TABLE status_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  INTEGER NOT NULL
);

INSERT INTO status_revision (id, revision) VALUES (1, 0);

-- Applications (name, and team: who may see them) and the pipeline.
CREATE TRIGGER apps_insert_status AFTER INSERT ON apps BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER apps_update_status AFTER UPDATE ON apps BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER apps_delete_status AFTER DELETE ON apps BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER environments_insert_status AFTER INSERT ON environments BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER environments_update_status AFTER UPDATE ON environments BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER environments_delete_status AFTER DELETE ON environments BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- Targets: their name and environment show; heartbeats and enrollment do not.
CREATE TRIGGER targets_insert_status AFTER INSERT ON targets BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER targets_update_status AFTER UPDATE OF name, env ON targets BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER targets_delete_status AFTER DELETE ON targets BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- What each target reports: its version and state show, the step it is at does not.
CREATE TRIGGER target_apps_insert_status AFTER INSERT ON target_apps BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER target_apps_update_status AFTER UPDATE ON target_apps
    WHEN OLD.current_version IS NOT NEW.current_version OR OLD.state IS NOT NEW.state
        OR OLD.target_id IS NOT NEW.target_id OR OLD.app_id IS NOT NEW.app_id
    BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER target_apps_delete_status AFTER DELETE ON target_apps BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- Deployments: what went live where. A running deployment saves its state machine at every
-- step; only a change of status (it finished, or it started after its approvals) counts.
CREATE TRIGGER deployments_insert_status AFTER INSERT ON deployments BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER deployments_update_status AFTER UPDATE ON deployments
    WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind OR OLD.version IS NOT NEW.version
        OR OLD.env IS NOT NEW.env OR OLD.app_id IS NOT NEW.app_id
    BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER deployments_delete_status AFTER DELETE ON deployments BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- Releases rolled back from an environment, and backport obligations.
CREATE TRIGGER bad_releases_insert_status AFTER INSERT ON bad_releases BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER bad_releases_update_status AFTER UPDATE ON bad_releases BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER bad_releases_delete_status AFTER DELETE ON bad_releases BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER backports_insert_status AFTER INSERT ON backports BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER backports_update_status AFTER UPDATE ON backports BEGIN UPDATE status_revision SET revision = revision + 1; END;
CREATE TRIGGER backports_delete_status AFTER DELETE ON backports BEGIN UPDATE status_revision SET revision = revision + 1; END;

-- The newest deployment that went live per application and environment, found without
-- reading every deployment.
CREATE INDEX deployments_live ON deployments (app_id, env, id)
    WHERE status = 'succeeded' AND kind != 'stage';
