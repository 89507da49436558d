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
    // The story's 32 events and the notification part's 4.
    assert_eq!(store.audit_chain().await.unwrap().events.len(), 36);
    store.close().await;
}
