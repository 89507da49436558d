//! The audit chain: appending in the caller's transaction, listing, reading it whole.

use crate::Connection;
use ferry_domain::audit::{link, AuditEvent, AuditRecord, ChainHead, RecordedHead};
use ferry_store::{AuditChain, AuditFilter, StoreError, StoreResult};

use crate::backend;

pub(crate) async fn head(conn: &mut Connection) -> StoreResult<Option<RecordedHead>> {
    let row: Option<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT seq, hash, seal FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    Ok(row.map(|(seq, hash, seal)| RecordedHead {
        head: ChainHead { seq, hash },
        seal,
    }))
}

pub(crate) async fn write_head(
    conn: &mut Connection,
    key: &[u8; 32],
    head: ChainHead,
) -> StoreResult<()> {
    let sealed = RecordedHead::sealed(key, head);
    sqlx::query(
        "INSERT INTO audit_head (id, seq, hash, seal) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, seal = excluded.seal",
    )
    .bind(sealed.head.seq)
    .bind(&sealed.head.hash)
    .bind(&sealed.seal)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Links `record` to the chain inside the caller's write transaction. Refused when the
/// recorded head does not carry its seal: linking after a head someone rewrote would seal
/// the cut trail anew and hide the cut.
pub(crate) async fn append(
    conn: &mut Connection,
    key: &[u8; 32],
    record: AuditRecord,
) -> StoreResult<AuditEvent> {
    let recorded = head(conn).await?;
    if let Some(recorded) = recorded.as_ref().filter(|r| !r.is_sealed_with(key)) {
        return Err(StoreError::UnsealedTrail(format!(
            "the audit trail's head (event {}) is not sealed with this server's audit key, so no change can be recorded: the trail was cut short and its head rewritten, or --audit-key names another trail's key. Run `ferry audit verify`, and restore the database (and its key) from a backup",
            recorded.head.seq
        )));
    }
    let event = link(key, recorded.as_ref().map(|r| &r.head), record);
    insert_event(conn, &event).await?;
    write_head(
        conn,
        key,
        ChainHead {
            seq: event.seq,
            hash: event.hash.clone(),
        },
    )
    .await?;
    Ok(event)
}

/// Stores one linked event (the head is the caller's business).
pub(crate) async fn insert_event(conn: &mut Connection, event: &AuditEvent) -> StoreResult<()> {
    let r = &event.record;
    sqlx::query(
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, app, details, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
    Ok(())
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
    conn: &mut Connection,
    filter: &AuditFilter,
) -> StoreResult<Vec<AuditEvent>> {
    // Newest first with the limit, then turned around: the last N events, oldest first.
    let limit = match filter.limit {
        Some(limit) => format!("LIMIT {limit}"),
        None => String::new(),
    };
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "{SELECT_EVENTS} WHERE ($1 IS NULL OR app = $1) AND ($2 IS NULL OR actor = $2)
             AND ($3 IS NULL OR action = $3) AND ($4 IS NULL OR at_ms >= $4)
             AND ($5 IS NULL OR at_ms < $5)
         ORDER BY seq DESC {limit}"
    ))
    .bind(&filter.app)
    .bind(&filter.actor)
    .bind(&filter.action)
    .bind(filter.since_ms)
    .bind(filter.until_ms)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut events: Vec<AuditEvent> = rows.into_iter().map(AuditEvent::from).collect();
    events.reverse();
    Ok(events)
}

pub(crate) async fn chain(conn: &mut Connection) -> StoreResult<AuditChain> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!("{SELECT_EVENTS} ORDER BY seq"))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(AuditChain {
        events: rows.into_iter().map(AuditEvent::from).collect(),
        head: head(conn).await?,
    })
}
