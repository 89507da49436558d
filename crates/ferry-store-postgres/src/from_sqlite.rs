//! Moving an installation from SQLite to PostgreSQL: every row of every table, ids,
//! history and the audit chain as they are (the chain's hashes cover the events' exact
//! text, and the audit key stays the same, so the chain verifies after the move).
//!
//! The copy runs in one transaction: it lands whole or not at all. It refuses a database
//! that holds anything: a ferry trail, or tables that are not ferry's.

use std::collections::BTreeMap;

use ferry_store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{Connection, PgConnection, Row, SqliteConnection};

use crate::{backend, redacted, PostgresStore};

/// Every table, parents before children (foreign keys hold at every insert).
const TABLES: &[&str] = &[
    "teams",
    "roles",
    "environments",
    "role_levels",
    "users",
    "memberships",
    "api_tokens",
    "sessions",
    "apps",
    "audit_events",
    "audit_head",
    "releases",
    "blob_refs",
    "targets",
    "enrollment_tokens",
    "placements",
    "target_apps",
    "deployments",
    "bad_releases",
    "freeze_windows",
    "approvals",
    "app_grants",
    "team_support",
    "routing_rules",
    "incidents",
    "backlog_items",
    "backports",
    "notification_channels",
    "notification_deliveries",
    "notification_cursor",
    "one_off_freezes",
    "step_logs",
    "target_drift",
    "agent_tasks",
    "app_backups",
    "app_backup_schedules",
    "config_revisions",
    "secret_key",
    "status_revision",
];

/// Rows per INSERT: well under PostgreSQL's 65,535 bound parameters for the widest table.
const ROWS_PER_INSERT: usize = 500;

/// How many rows of each table moved.
pub type Moved = BTreeMap<&'static str, u64>;

/// A column's PostgreSQL type, which says how to read the SQLite value.
#[derive(Clone, Copy)]
enum Column {
    Integer,
    Boolean,
    Text,
}

/// One value on its way.
enum Value {
    Integer(Option<i64>),
    Boolean(Option<bool>),
    Text(Option<String>),
}

/// Copies every row of the SQLite database at `sqlite_path` (at the latest migration: the
/// caller opens it with the SQLite store first) into the empty PostgreSQL database at `url`,
/// creating the schema there. Returns the rows moved per table.
pub async fn copy(
    sqlite_path: &std::path::Path,
    url: &str,
    audit_key: [u8; 32],
) -> StoreResult<Moved> {
    refuse_unless_empty(url).await?;
    // The schema, by the store's own migrations.
    PostgresStore::open(url, audit_key).await?.close().await;
    let mut source = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(sqlite_path)
            .read_only(true),
    )
    .await
    .map_err(|e| StoreError::Backend(format!("opening {}: {e}", sqlite_path.display())))?;
    let mut target = PgConnection::connect(url)
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redacted(url))))?;
    // One read transaction: every table from the same moment.
    let mut snapshot = source.begin().await.map_err(backend)?;
    let mut tx = target.begin().await.map_err(backend)?;
    let mut moved = Moved::new();
    for &table in TABLES {
        let columns = columns(&mut tx, table).await?;
        // Rows the migrations put in (the status revision) make way for the originals.
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        // A page at a time by rowid, so a table of any size is never all in memory.
        let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let select = format!(
            "SELECT rowid AS ferry_rowid, {} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT {ROWS_PER_INSERT}",
            names.join(", ")
        );
        let (mut after, mut count) = (0i64, 0u64);
        loop {
            let rows: Vec<SqliteRow> = sqlx::query(&select)
                .bind(after)
                .fetch_all(&mut *snapshot)
                .await
                .map_err(|e| StoreError::Backend(format!("reading {table} from SQLite: {e}")))?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("ferry_rowid").map_err(backend)?;
            insert(&mut tx, table, &columns, &rows).await?;
            count += rows.len() as u64;
        }
        moved.insert(table, count);
    }
    restart_identities(&mut tx).await?;
    tx.commit().await.map_err(backend)?;
    // Ended and closed here, not left to drop: the move folds and renames the SQLite file
    // next, which needs no connection left on it.
    snapshot.rollback().await.map_err(backend)?;
    source.close().await.map_err(backend)?;
    Ok(moved)
}

/// Refuses a database holding a ferry trail, or any table that is not ferry's (a schema
/// left by an earlier copy that failed is ferry's own and empty: the copy goes on).
async fn refuse_unless_empty(url: &str) -> StoreResult<()> {
    if PostgresStore::holds_state(url).await? {
        return Err(StoreError::Refused(format!(
            "{} holds a ferry installation already: move into a new, empty database (createdb), never over one in use",
            redacted(url)
        )));
    }
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redacted(url))))?;
    let foreign = unlisted_tables(&mut conn).await?;
    let _ = conn.close().await;
    if !foreign.is_empty() {
        return Err(StoreError::Refused(format!(
            "{} is not empty (it holds {}): move into a new, empty database (createdb)",
            redacted(url),
            foreign
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

/// The columns of `table` in PostgreSQL, in order, with how to read each.
async fn columns(conn: &mut PgConnection, table: &str) -> StoreResult<Vec<(String, Column)>> {
    let found: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    found
        .into_iter()
        .map(|(name, data_type)| {
            let column = match data_type.as_str() {
                "bigint" => Column::Integer,
                "boolean" => Column::Boolean,
                "text" => Column::Text,
                other => {
                    return Err(StoreError::Backend(format!(
                        "{table}.{name} has type {other}, which the move from SQLite does not know"
                    )))
                }
            };
            Ok((name, column))
        })
        .collect()
}

async fn insert(
    conn: &mut PgConnection,
    table: &str,
    columns: &[(String, Column)],
    rows: &[SqliteRow],
) -> StoreResult<()> {
    let width = columns.len();
    let placeholders: Vec<String> = (0..rows.len())
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        names.join(", "),
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for row in rows {
        for (name, column) in columns {
            query = match read(row, name, *column).map_err(|e| {
                StoreError::Backend(format!("reading {table}.{name} from SQLite: {e}"))
            })? {
                Value::Integer(value) => query.bind(value),
                Value::Boolean(value) => query.bind(value),
                Value::Text(value) => query.bind(value),
            };
        }
    }
    query
        .execute(&mut *conn)
        .await
        .map_err(|e| StoreError::Backend(format!("writing {table} to PostgreSQL: {e}")))?;
    Ok(())
}

fn read(row: &SqliteRow, name: &str, column: Column) -> Result<Value, sqlx::Error> {
    Ok(match column {
        Column::Integer => Value::Integer(row.try_get(name)?),
        // SQLite keeps booleans as 0 and 1.
        Column::Boolean => Value::Boolean(row.try_get::<Option<i64>, _>(name)?.map(|v| v != 0)),
        Column::Text => Value::Text(row.try_get(name)?),
    })
}

/// Moves every identity column past the highest id copied, so new rows get new ids.
async fn restart_identities(conn: &mut PgConnection) -> StoreResult<()> {
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    for (table, column) in identities {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                           coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

/// The tables of the database that are not in [`TABLES`], by name: another application's
/// (the move refuses them), or, after the migrations, one of ferry's a move would leave
/// behind (a test checks there is none).
pub(crate) async fn unlisted_tables(conn: &mut PgConnection) -> StoreResult<Vec<String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = current_schema() AND table_name != '_sqlx_migrations'
         ORDER BY table_name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(tables
        .into_iter()
        .filter(|t| !TABLES.contains(&t.as_str()))
        .collect())
}
