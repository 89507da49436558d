//! ferry's storage on PostgreSQL: for an installation that outgrows one machine, or that
//! runs several `ferry server` processes on one database.
//!
//! Concurrency is the database's. Every write that reads before it writes, or appends to
//! the audit chain, runs in a transaction that first takes one transaction-scoped advisory
//! lock ([`WRITE_LOCK`]): writes are serialised across every server sharing the database,
//! exactly as SQLite's single writer serialises them, so the audit chain has one head at a
//! time and every read-then-write sees the state it changes. The lock is released by the
//! commit or the rollback, also when a server dies mid-transaction (its connection closes).
//! Reads take no lock and never wait for writes. Heartbeats are single statements on their
//! own row and take no lock either.

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
pub mod broadcast;
#[path = "../../ferry-store-sql/configuration.rs"]
mod configuration;
mod content;
#[path = "../../ferry-store-sql/deployments.rs"]
mod deployments;
mod dialect;
#[path = "../../ferry-store-sql/drift.rs"]
mod drift;
pub mod from_sqlite;
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
#[path = "../../ferry-store-sql/step_logs.rs"]
mod step_logs;
#[path = "../../ferry-store-sql/support.rs"]
mod support;
#[path = "../../ferry-store-sql/targets.rs"]
mod targets;
#[path = "../../ferry-store-sql/tasks.rs"]
mod tasks;
#[cfg(feature = "test-database")]
pub mod test_database;
#[cfg(test)]
mod tests;

use ferry_store::{SchemaChange, SchemaPlan};
use schema::known_changes;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

/// The advisory lock every write transaction takes first (`pg_advisory_xact_lock`): the
/// bytes of "ferrywr" as a number, unlikely to clash with another application's locks in a
/// shared database.
const WRITE_LOCK: i64 = 0x0066_6572_7279_7772;

/// Connections per server: enough for reads while a write waits for the lock; a few
/// servers stay far under PostgreSQL's default of 100 connections.
const MAX_CONNECTIONS: u32 = 16;

/// How long a connection rests in the pool before it is pinged again when handed out. The
/// pool pings each connection as it comes back, so one handed out sooner was alive moments
/// ago; pinging it again would double the round trips of every query under load.
const RESTED: Duration = Duration::from_secs(1);

/// The connection the shared queries run on.
pub(crate) type Connection = sqlx::PgConnection;

/// A store in one PostgreSQL database.
pub struct PostgresStore {
    pool: PgPool,
    audit_key: [u8; 32],
    /// The schema changes opening it applied to an older database.
    upgraded: Vec<SchemaChange>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`)
    /// and applies pending migrations; several servers starting at once migrate once.
    /// `audit_key` keys the audit chain's hashes.
    pub async fn open(url: &str, audit_key: [u8; 32]) -> StoreResult<PostgresStore> {
        let options: PgConnectOptions = url.parse().map_err(|e| {
            StoreError::Backend(format!(
                "the database URL is not a PostgreSQL URL ({e}); give it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            // A connection the database closed (a restart, a failover) is found out and
            // replaced before it is handed out: the pool pings every connection as it comes
            // back, and again before handing out one that has rested since.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > RESTED {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(Duration::from_secs(600))
            .connect_with(options.application_name("ferry"))
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redacted(url))))?;
        let plan = SchemaPlan::of(known_changes(), &applied_changes(&pool).await?);
        if let Some(refusal) = plan.refusal(&redacted(url)) {
            return Err(StoreError::Backend(refusal));
        }
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating {}: {e}", redacted(url))))?;
        Ok(PostgresStore {
            pool,
            audit_key,
            upgraded: plan.upgrade(),
        })
    }

    /// The schema changes opening the database applied to what an older version left.
    pub fn upgraded(&self) -> &[SchemaChange] {
        &self.upgraded
    }

    /// What opening the database at `url` would do to its schema, read without changing
    /// anything.
    pub async fn schema_plan(url: &str) -> StoreResult<SchemaPlan> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redacted(url))))?;
        let applied = applied_changes(&pool).await;
        pool.close().await;
        Ok(SchemaPlan::of(known_changes(), &applied?))
    }

    /// Whether the database at `url` holds a ferry audit trail (the first server to start
    /// on it began one), without changing anything.
    pub async fn holds_state(url: &str) -> StoreResult<bool> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redacted(url))))?;
        let migrated: bool = sqlx::query_scalar("SELECT to_regclass('audit_head') IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .map_err(backend)?;
        let holds = migrated
            && sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM audit_head)")
                .fetch_one(&mut conn)
                .await
                .map_err(backend)?;
        let _ = conn.close().await;
        Ok(holds)
    }

    /// A write transaction holding [`WRITE_LOCK`]: it waits for the write under way on any
    /// server, then reads and writes the state no one else changes until it commits.
    async fn write(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(tx)
    }

    /// A connection for reading.
    async fn read(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(backend)
    }

    /// A connection for a write of one statement on its own rows, which needs no lock.
    async fn unlocked(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(backend)
    }

    /// A read transaction that sees one moment throughout.
    async fn snapshot(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(backend)
    }

    /// Holds release content on a connection of its own (`content.rs`).
    async fn hold(&self, hold: ContentHold) -> StoreResult<HeldContent> {
        let conn = self.pool.acquire().await.map_err(backend)?;
        Ok(HeldContent::new(content::hold(conn, hold).await?))
    }

    /// The channel the servers sharing this database wake each other's waiters on.
    pub fn broadcast(&self) -> broadcast::Broadcast {
        broadcast::Broadcast::new(self.pool.clone())
    }

    /// Closes the pool, waiting for running queries.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `url` without its password, to name in messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "the database URL".to_owned(),
    }
}

/// The schema changes this build applies, in order.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema changes applied to the database.
async fn applied_changes(pool: &PgPool) -> StoreResult<Vec<i64>> {
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    if !migrated {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(backend)
}

/// The store the shared trait implementations (`crates/ferry-store-sql/store.rs`) are for.
type Backend = PostgresStore;

include!("../../ferry-store-sql/store.rs");
