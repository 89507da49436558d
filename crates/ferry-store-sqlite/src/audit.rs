//! The audit chain: appending in the caller's transaction, listing, reading it whole.

use ferry_domain::audit::{link, AuditEvent, AuditRecord, ChainHead};
use ferry_store::{AuditChain, AuditFilter, StoreResult};
use sqlx::SqliteConnection;

use crate::backend;

async fn head(conn: &mut SqliteConnection) -> StoreResult<Option<ChainHead>> {
    let row: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    Ok(row.map(|(seq, hash)| ChainHead { seq, hash }))
}

/// Links `record` to the chain inside the caller's write transaction.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    key: &[u8; 32],
    record: AuditRecord,
) -> StoreResult<AuditEvent> {
    let event = link(key, head(conn).await?.as_ref(), record);
    let r = &event.record;
    sqlx::query(
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, app, details, prev_hash, hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.seq)
    .bind(r.at_ms)
    .bind(&r.actor)
    .bind(&r.action)
    .bind(&r.subject)
    .bind(&r.app)
    .bind(&r.details)
    .bind(&event.prev_hash)
    .bind(&event.hash)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .bind(event.seq)
    .bind(&event.hash)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(event)
}

pub(crate) const SELECT_EVENTS: &str =
    "SELECT seq, at_ms, actor, action, subject, app, details, prev_hash, hash FROM audit_events";

/// A row of `SELECT_EVENTS`. Nothing in it is parsed here: the details stay the JSON text
/// the chain's hashes cover, and `ferry_domain::audit` verifies the links.
#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    at_ms: i64,
    actor: String,
    action: String,
    subject: String,
    app: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<EventRow> for AuditEvent {
    fn from(row: EventRow) -> AuditEvent {
        AuditEvent {
            seq: row.seq,
            record: AuditRecord {
                at_ms: row.at_ms,
                actor: row.actor,
                action: row.action,
                subject: row.subject,
                app: row.app,
                details: row.details,
            },
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

pub(crate) async fn events(
    conn: &mut SqliteConnection,
    filter: &AuditFilter,
) -> StoreResult<Vec<AuditEvent>> {
    // Newest first with the limit, then turned around: the last N events, oldest first.
    let limit = filter.limit.map_or(-1, i64::from);
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "{SELECT_EVENTS} WHERE (?1 IS NULL OR app = ?1) ORDER BY seq DESC LIMIT ?2"
    ))
    .bind(&filter.app)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut events: Vec<AuditEvent> = rows.into_iter().map(AuditEvent::from).collect();
    events.reverse();
    Ok(events)
}

pub(crate) async fn chain(conn: &mut SqliteConnection) -> StoreResult<AuditChain> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!("{SELECT_EVENTS} ORDER BY seq"))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(AuditChain {
        events: rows.into_iter().map(AuditEvent::from).collect(),
        head: head(conn).await?,
    })
}
