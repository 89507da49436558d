//! The store's conformance story on PostgreSQL, each part in a fresh database.

use ferry_store::prelude::*;
use ferry_store_postgres::test_database;

use crate::PostgresStore;

/// A store on a fresh database, or `None` where PostgreSQL is not available (said on
/// stderr): the database lives as long as the returned guard.
async fn store(test: &str, key: [u8; 32]) -> Option<(PostgresStore, test_database::TestDatabase)> {
    let database = test_database::fresh(test).await?;
    let store = PostgresStore::open(&database.url, key).await.unwrap();
    Some((store, database))
}

#[tokio::test]
async fn conformance_story() {
    let key = [42; 32];
    let Some((store, _db)) = store("conformance_story", key).await else {
        return;
    };
    ferry_store::conformance::story(&store, &key).await;
    store.close().await;
}

#[tokio::test]
async fn conformance_revocation_story() {
    let key = [5; 32];
    let Some((store, _db)) = store("conformance_revocation_story", key).await else {
        return;
    };
    ferry_store::conformance::revocation::revocation_story(&store, &key).await;
    store.close().await;
}

#[tokio::test]
async fn conformance_support_story() {
    let Some((store, _db)) = store("conformance_support_story", [7; 32]).await else {
        return;
    };
    ferry_store::conformance::support::support_story(&store).await;
    store.close().await;
}

#[tokio::test]
async fn conformance_race_story_through_two_stores() {
    let Some((first, db)) = store("conformance_race_story", [9; 32]).await else {
        return;
    };
    // Two pools on one database: as two servers sharing it.
    let second = PostgresStore::open(&db.url, [9; 32]).await.unwrap();
    ferry_store::conformance::races::race_story(&first, &second).await;
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn conformance_reads_story() {
    let Some((store, _db)) = store("conformance_reads_story", [9; 32]).await else {
        return;
    };
    ferry_store::conformance::reads::reads_story(&store).await;
    store.close().await;
}

#[tokio::test]
async fn reopening_keeps_everything_and_migrates_once() {
    let key = [42; 32];
    let Some((store, db)) = store("reopening", key).await else {
        return;
    };
    ferry_store::conformance::story(&store, &key).await;
    store.close().await;
    let store = PostgresStore::open(&db.url, key).await.unwrap();
    assert_eq!(store.list_apps().await.unwrap().len(), 1);
    // The story's 32 events, the notification part's 4, the backups part's 5 and the
    // configuration part's 9.
    assert_eq!(store.audit_chain().await.unwrap().events.len(), 50);
    store.close().await;
}

#[tokio::test]
async fn every_table_of_the_schema_is_moved_from_sqlite() {
    use sqlx::Connection;
    let Some((store, db)) = store("every_table_is_moved", [1; 32]).await else {
        return;
    };
    store.close().await;
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let unlisted = crate::from_sqlite::unlisted_tables(&mut conn)
        .await
        .unwrap();
    assert!(
        unlisted.is_empty(),
        "tables a move would leave behind: {unlisted:?}"
    );
}

#[tokio::test]
async fn a_sqlite_installation_moves_whole_with_its_audit_chain() {
    use ferry_store_sqlite::SqliteStore;
    let Some(db) = test_database::fresh("a_sqlite_installation_moves_whole").await else {
        return;
    };
    let key = [42; 32];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.db");
    let sqlite = SqliteStore::open(&path, key).await.unwrap();
    ferry_store::conformance::story(&sqlite, &key).await;
    sqlite.close().await;

    let moved = crate::from_sqlite::copy(&path, &db.url, key).await.unwrap();
    assert_eq!(moved["audit_events"], 50, "{moved:?}");
    assert_eq!(moved["config_revisions"], 3, "{moved:?}");
    let sqlite = SqliteStore::open(&path, key).await.unwrap();
    let postgres = PostgresStore::open(&db.url, key).await.unwrap();
    // The same answers from both, to the letter.
    let same = |what: &str, a: String, b: String| assert_eq!(a, b, "{what} differ after the move");
    same(
        "users",
        format!("{:?}", sqlite.list_users().await.unwrap()),
        format!("{:?}", postgres.list_users().await.unwrap()),
    );
    same(
        "application backups",
        format!("{:?}", sqlite.list_app_backups(None).await.unwrap()),
        format!("{:?}", postgres.list_app_backups(None).await.unwrap()),
    );
    for env in ["dev", "prd"] {
        same(
            "configuration",
            format!(
                "{:?}",
                sqlite.config_history("shop-web", env).await.unwrap()
            ),
            format!(
                "{:?}",
                postgres.config_history("shop-web", env).await.unwrap()
            ),
        );
    }
    same(
        "applications",
        format!("{:?}", sqlite.list_apps().await.unwrap()),
        format!("{:?}", postgres.list_apps().await.unwrap()),
    );
    same(
        "targets",
        format!("{:?}", sqlite.target_apps(None).await.unwrap()),
        format!("{:?}", postgres.target_apps(None).await.unwrap()),
    );
    same(
        "deployments",
        format!("{:?}", sqlite.list_deployments(None, 1000).await.unwrap()),
        format!("{:?}", postgres.list_deployments(None, 1000).await.unwrap()),
    );
    same(
        "environments",
        format!("{:?}", sqlite.list_environments().await.unwrap()),
        format!("{:?}", postgres.list_environments().await.unwrap()),
    );
    same(
        "status revision",
        format!("{:?}", sqlite.status_revision().await.unwrap()),
        format!("{:?}", postgres.status_revision().await.unwrap()),
    );
    let chain = postgres.audit_chain().await.unwrap();
    same(
        "audit chains",
        format!("{:?}", sqlite.audit_chain().await.unwrap()),
        format!("{chain:?}"),
    );
    assert_eq!(
        ferry_domain::audit::verify_chain(&key, &chain.events, chain.head.as_ref()),
        Ok(50)
    );

    // New rows get new ids, and the chain goes on.
    let team = postgres
        .create_team(
            "after-the-move",
            ferry_domain::audit::AuditRecord {
                at_ms: 1,
                actor: "admin".into(),
                action: "team.create".into(),
                subject: "team/after-the-move".into(),
                app: None,
                details: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert!(
        sqlite
            .list_teams()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != team.name),
        "the move left SQLite as it was"
    );
    let chain = postgres.audit_chain().await.unwrap();
    assert_eq!(
        ferry_domain::audit::verify_chain(&key, &chain.events, chain.head.as_ref()),
        Ok(51)
    );
    postgres.close().await;

    // A database in use is never written over.
    let again = crate::from_sqlite::copy(&path, &db.url, key).await;
    assert!(
        matches!(&again, Err(ferry_store::StoreError::Refused(m)) if m.contains("holds a ferry installation already")),
        "{again:?}"
    );
    sqlite.close().await;
}

#[tokio::test]
async fn content_holds_exclude_each_other_across_servers() {
    use ferry_store::ContentHold;
    use std::time::Duration;
    let Some((first, db)) = store("content_holds_across_servers", [3; 32]).await else {
        return;
    };
    let second = PostgresStore::open(&db.url, [3; 32]).await.unwrap();
    let creating = first.hold_content(ContentHold::Shared).await.unwrap();
    let collecting = tokio::time::timeout(
        Duration::from_millis(300),
        second.hold_content(ContentHold::Exclusive),
    )
    .await;
    assert!(
        collecting.is_err(),
        "another server collected during a creation"
    );
    drop(creating);
    let collecting = tokio::time::timeout(
        Duration::from_secs(10),
        second.hold_content(ContentHold::Exclusive),
    )
    .await
    .expect("the hold was released when dropped")
    .unwrap();
    let creating = tokio::time::timeout(
        Duration::from_millis(300),
        first.hold_content(ContentHold::Shared),
    )
    .await;
    assert!(
        creating.is_err(),
        "another server created a release during collection"
    );
    drop(collecting);
    first.close().await;
    second.close().await;
}
