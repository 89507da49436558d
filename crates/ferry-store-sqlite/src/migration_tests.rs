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

/// Two events linked as ferry before migration 0011 wrote them: a head without a seal.
async fn write_unsealed_trail(pool: &sqlx::SqlitePool, key: &[u8; 32]) {
    use ferry_domain::audit::{link, AuditRecord, ChainHead};
    let mut head: Option<ChainHead> = None;
    for n in 1..=2 {
        let record = AuditRecord {
            at_ms: n,
            actor: "admin".into(),
            action: "team.create".into(),
            subject: format!("team/t{n}"),
            app: None,
            details: "{}".into(),
        };
        let event = link(key, head.as_ref(), record);
        let mut conn = pool.acquire().await.unwrap();
        crate::audit::insert_event(&mut conn, &event).await.unwrap();
        head = Some(ChainHead {
            seq: event.seq,
            hash: event.hash,
        });
    }
    let head = head.unwrap();
    sqlx::query("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)")
        .bind(head.seq)
        .bind(&head.hash)
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_trail_from_before_sealed_heads_is_sealed_once_and_a_head_stripped_later_stops_writes() {
    use ferry_domain::audit::verify_chain;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.db");
    let key = [3; 32];
    let old = migrated_up_to(&path, 10).await;
    write_unsealed_trail(&old, &key).await;
    old.close().await;

    // The first open after the upgrade seals the head as it is: the trail verifies.
    let store = SqliteStore::open(&path, key).await.unwrap();
    let chain = store.audit_chain().await.unwrap();
    assert!(chain.head.as_ref().unwrap().is_sealed_with(&key));
    assert_eq!(
        verify_chain(&key, &chain.events, chain.head.as_ref()),
        Ok(2)
    );
    store.create_team("shop", team_record()).await.unwrap();
    store.close().await;

    // A head whose seal someone removed is never sealed again, and no change is recorded
    // after it: verification and every write say so.
    let pool = sqlx::SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    sqlx::query("UPDATE audit_head SET seal = NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = SqliteStore::open(&path, key).await.unwrap();
    let chain = store.audit_chain().await.unwrap();
    let broken = verify_chain(&key, &chain.events, chain.head.as_ref()).unwrap_err();
    assert!(broken.reason.contains("not sealed"), "{broken}");
    match store.create_team("blog", team_record()).await {
        Err(ferry_store::StoreError::UnsealedTrail(why)) => {
            assert!(
                why.contains("not sealed with this server's audit key"),
                "{why}"
            )
        }
        other => panic!("a write after a stripped head: {other:?}"),
    }
    assert_eq!(store.list_teams().await.unwrap().len(), 1);
}

fn team_record() -> ferry_domain::audit::AuditRecord {
    ferry_domain::audit::AuditRecord {
        at_ms: 10,
        actor: "admin".into(),
        action: "team.create".into(),
        subject: "team/x".into(),
        app: None,
        details: "{}".into(),
    }
}
