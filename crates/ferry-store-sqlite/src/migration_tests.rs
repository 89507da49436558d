//! Stored data survives migrations: rows an older ferry wrote read as they should after
//! `SqliteStore::open` migrates the file.

use std::path::Path;

use ferry_domain::deployment::Status;
use sqlx::sqlite::SqliteConnectOptions;

use crate::SqliteStore;
use ferry_store::prelude::*;

/// A database at `path` migrated up to and including `last`, as an older ferry left it.
async fn migrated_up_to(path: &Path, last: i64) -> sqlx::SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(&pool).await.unwrap();
    pool
}

/// A deployment's state as ferry before migration 0009 stored it: `running` inside the
/// state whatever the status column said.
const OLD_STATE: &str = r#"{"strategy":"rolling","steps":[{"target":"prd-1","previous":"1.0","state":"pending"}],"status":"running","reason":null,"stage_only":false}"#;

#[tokio::test]
async fn deployments_stored_before_the_lifecycle_was_typed_read_as_what_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.db");
    let old = migrated_up_to(&path, 8).await;
    for statement in [
        "INSERT INTO teams (name, created_ms) VALUES ('shop', 1)",
        "INSERT INTO environments (name, position, approvals_required, self_approval, protected)
         VALUES ('prd', 0, 1, 0, 1)",
        "INSERT INTO apps (name, team_id, keep_releases, created_ms) VALUES ('web', 1, 5, 1)",
    ] {
        sqlx::query(statement).execute(&old).await.unwrap();
    }
    // (id, status column, reason column): rejected, withdrawn, awaiting approval, and a
    // failed deployment whose reason only looks like a rejection's.
    let rows = [
        (1, "failed", Some("rejected by lee: not today")),
        (2, "failed", Some("withdrawn by dana: wrong build")),
        (3, "awaiting_approval", None),
        (4, "succeeded", None),
    ];
    for (id, status, reason) in rows {
        let state = if status == "succeeded" {
            OLD_STATE
                .replace(r#""status":"running""#, r#""status":"succeeded""#)
                .replace(r#""state":"pending""#, r#""state":"succeeded""#)
        } else {
            OLD_STATE.to_owned()
        };
        sqlx::query(
            "INSERT INTO deployments (id, app_id, env, version, kind, status, state, reason,
                 requested_by, created_ms, updated_ms)
             VALUES (?, 1, 'prd', '1.1', 'deploy', ?, ?, ?, 'dana', 2, 2)",
        )
        .bind(id)
        .bind(status)
        .bind(state)
        .bind(reason)
        .execute(&old)
        .await
        .unwrap();
    }
    old.close().await;

    let store = SqliteStore::open(&path, [1; 32]).await.unwrap();
    let expected = [
        (1, Status::Rejected, "skipped"),
        (2, Status::Withdrawn, "skipped"),
        (3, Status::AwaitingApproval, "pending"),
        (4, Status::Succeeded, "succeeded"),
    ];
    for (id, status, first_target) in expected {
        let deployment = store.deployment(id).await.unwrap().unwrap();
        assert_eq!(
            (
                deployment.status(),
                deployment.state.steps[0].state.name(),
                deployment.revision
            ),
            (status, first_target, 0),
            "deployment {id}"
        );
    }
    let rejected = store.deployment(1).await.unwrap().unwrap();
    assert_eq!(rejected.reason(), Some("rejected by lee: not today"));
}
