//! ferry's storage on one embedded SQLite file (WAL, `synchronous = FULL`): the default
//! backend, enough for a department on one server.
//!
//! All writes go through a pool of one connection, so write transactions are serialised and
//! the audit chain gets one head at a time; reads use their own pool and never wait for them.

// The queries both stores run, written once in `crates/ferry-store-sql` (see its README):
// each store compiles them against its own `Connection`, with its own `dialect`.
#[path = "../../ferry-store-sql/access.rs"]
mod access;
#[path = "../../ferry-store-sql/app_backups.rs"]
mod app_backups;
#[path = "../../ferry-store-sql/apps.rs"]
mod apps;
#[path = "../../ferry-store-sql/audit.rs"]
mod audit;
#[path = "../../ferry-store-sql/configuration.rs"]
mod configuration;
#[path = "../../ferry-store-sql/deployments.rs"]
mod deployments;
mod dialect;
#[path = "../../ferry-store-sql/drift.rs"]
mod drift;
#[cfg(test)]
mod migration_tests;
#[path = "../../ferry-store-sql/notifications.rs"]
mod notifications;
#[path = "../../ferry-store-sql/pipeline.rs"]
mod pipeline;
#[path = "../../ferry-store-sql/policy.rs"]
mod policy;
#[path = "../../ferry-store-sql/reads.rs"]
mod reads;
#[path = "../../ferry-store-sql/releases.rs"]
mod releases;
#[path = "../../ferry-store-sql/schema.rs"]
mod schema;
mod sealing;
#[path = "../../ferry-store-sql/step_logs.rs"]
mod step_logs;
#[path = "../../ferry-store-sql/support.rs"]
mod support;
#[path = "../../ferry-store-sql/targets.rs"]
mod targets;
#[path = "../../ferry-store-sql/tasks.rs"]
mod tasks;
#[cfg(test)]
mod unreadable_tests;

use ferry_store::{SchemaChange, SchemaPlan};
use schema::known_changes;
use std::path::Path;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};

/// The connection the shared queries run on.
pub(crate) type Connection = sqlx::SqliteConnection;

/// A store in one SQLite file.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    audit_key: [u8; 32],
    /// Release content held against garbage collection: one server uses a SQLite file,
    /// so a lock in this process is enough (`Catalog::hold_content`).
    content: std::sync::Arc<tokio::sync::RwLock<()>>,
    /// The schema changes opening it applied to an older database.
    upgraded: Vec<SchemaChange>,
}

/// Each connection's page cache, in KiB (SQLite's default is 2,000). In WAL mode a
/// connection drops its cache whenever another one wrote, which a server's writes do all the
/// time, so a large cache buys little; pages come from the operating system's cache. Each
/// of the five connections' caches filling up, and being refilled, was half of the server's
/// memory growth in the soak test (BENCHMARKS.md), with no change in its throughput.
const CACHE_KIB_PER_CONNECTION: u32 = 256;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// `audit_key` keys the audit chain's hashes.
    pub async fn open(path: &Path, audit_key: [u8; 32]) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("cache_size", format!("-{CACHE_KIB_PER_CONNECTION}"));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend)?;
        let applied = applied_changes(&writer).await?;
        let plan = SchemaPlan::of(known_changes(), &applied);
        if let Some(refusal) = plan.refusal(&path.display().to_string()) {
            return Err(StoreError::Backend(refusal));
        }
        let heads_were_sealed = applied.contains(&SEALED_HEADS_MIGRATION);
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", path.display())))?;
        if !heads_were_sealed {
            let mut tx = writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(backend)?;
            sealing::seal_unsealed_head(&mut tx, &audit_key).await?;
            tx.commit().await.map_err(backend)?;
        }
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(backend)?;
        Ok(SqliteStore {
            writer,
            reader,
            audit_key,
            content: Default::default(),
            upgraded: plan.upgrade(),
        })
    }

    /// Writes the whole database at `from`, what its write-ahead log holds included, into
    /// the new file `to` (`VACUUM INTO`): one self-contained file, synced to disk, that a
    /// server can open as it is. `from` is only read, so a connection to it still open
    /// elsewhere in this process does not stand in the way.
    pub async fn copy_into_one_file(from: &Path, to: &Path) -> StoreResult<()> {
        use sqlx::{ConnectOptions, Connection};
        let destination = to
            .to_str()
            .ok_or_else(|| StoreError::Backend(format!("{} is not a UTF-8 path", to.display())))?;
        let mut connection = SqliteConnectOptions::new()
            .filename(from)
            .read_only(true)
            .connect()
            .await
            .map_err(backend)?;
        sqlx::query("VACUUM INTO $1")
            .bind(destination)
            .execute(&mut connection)
            .await
            .map_err(backend)?;
        connection.close().await.map_err(backend)?;
        std::fs::File::open(to)
            .and_then(|file| file.sync_all())
            .map_err(|e| StoreError::Backend(format!("syncing {}: {e}", to.display())))
    }

    /// A write transaction, begun `IMMEDIATE`: it takes the database's write lock at once,
    /// so it waits (up to the busy timeout) for another writer, also in another process,
    /// instead of failing when it first reads and then writes over a newer snapshot.
    async fn write(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)
    }

    /// A connection for reading.
    async fn read(&self) -> StoreResult<PoolConnection<Sqlite>> {
        self.reader.acquire().await.map_err(backend)
    }

    /// The writer's connection for a write of one statement, outside a transaction.
    async fn unlocked(&self) -> StoreResult<PoolConnection<Sqlite>> {
        self.writer.acquire().await.map_err(backend)
    }

    /// A read transaction: in WAL mode it sees one moment throughout.
    async fn snapshot(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        self.reader.begin().await.map_err(backend)
    }

    /// Holds release content with a lock in this process: one server uses a SQLite file.
    async fn hold(&self, hold: ContentHold) -> StoreResult<HeldContent> {
        let lock = self.content.clone();
        Ok(match hold {
            ContentHold::Shared => HeldContent::new(lock.read_owned().await),
            ContentHold::Exclusive => HeldContent::new(lock.write_owned().await),
        })
    }

    /// Closes both pools, waiting for running queries.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// The migration that added the audit head's seal.
const SEALED_HEADS_MIGRATION: i64 = 11;

/// The schema changes this build applies, in order.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema changes applied to the database.
async fn applied_changes(pool: &SqlitePool) -> StoreResult<Vec<i64>> {
    let table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(backend)
}

impl SqliteStore {
    /// The schema changes opening the database applied to what an older version left.
    pub fn upgraded(&self) -> &[SchemaChange] {
        &self.upgraded
    }

    /// What opening the database at `path` would do to its schema, read without changing
    /// anything (a database that does not exist yet would get every change).
    pub async fn schema_plan(path: &Path) -> StoreResult<SchemaPlan> {
        if !path.exists() {
            return Ok(SchemaPlan::of(known_changes(), &[]));
        }
        let options = SqliteConnectOptions::new().filename(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(backend)?;
        let applied = applied_changes(&pool).await;
        pool.close().await;
        Ok(SchemaPlan::of(known_changes(), &applied?))
    }
}

/// The store the shared trait implementations (`crates/ferry-store-sql/store.rs`) are for.
type Backend = SqliteStore;

include!("../../ferry-store-sql/store.rs");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_connection_has_the_small_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ferry.db"), [1; 32])
            .await
            .unwrap();
        for pool in [&store.writer, &store.reader] {
            let kib: i64 = sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(kib, -i64::from(CACHE_KIB_PER_CONNECTION));
        }
    }

    #[tokio::test]
    async fn conformance_story() {
        let dir = tempfile::tempdir().unwrap();
        let key = [42; 32];
        let store = SqliteStore::open(&dir.path().join("ferry.db"), key)
            .await
            .unwrap();
        ferry_store::conformance::story(&store, &key).await;
    }

    #[tokio::test]
    async fn conformance_revocation_story() {
        let dir = tempfile::tempdir().unwrap();
        let key = [5; 32];
        let store = SqliteStore::open(&dir.path().join("ferry.db"), key)
            .await
            .unwrap();
        ferry_store::conformance::revocation::revocation_story(&store, &key).await;
    }

    #[tokio::test]
    async fn conformance_support_story() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ferry.db"), [7; 32])
            .await
            .unwrap();
        ferry_store::conformance::support::support_story(&store).await;
    }

    #[tokio::test]
    async fn conformance_race_story_through_two_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let first = SqliteStore::open(&path, [9; 32]).await.unwrap();
        let second = SqliteStore::open(&path, [9; 32]).await.unwrap();
        ferry_store::conformance::races::race_story(&first, &second).await;
    }

    #[tokio::test]
    async fn conformance_reads_story() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("ferry.db"), [9; 32])
            .await
            .unwrap();
        ferry_store::conformance::reads::reads_story(&store).await;
    }

    #[tokio::test]
    async fn reopening_keeps_everything_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let key = [42; 32];
        let store = SqliteStore::open(&path, key).await.unwrap();
        ferry_store::conformance::story(&store, &key).await;
        store.close().await;
        let store = SqliteStore::open(&path, key).await.unwrap();
        assert_eq!(store.list_apps().await.unwrap().len(), 1);
        // The story's 32 events, the notification part's 4, the backups part's 5 and the
        // configuration part's 9.
        assert_eq!(store.audit_chain().await.unwrap().events.len(), 50);
    }
}
