//! The audit chain: appending in the caller's transaction, listing, reading it whole.

use ferry_domain::audit::{link, AuditEvent, AuditRecord, ChainHead};
use ferry_store::{AuditChain, AuditFilter, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::backend;

async fn head(conn: &mut SqliteConnection) -> StoreResult<Option<ChainHead>> {
    let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(row.map(|row| ChainHead {
        seq: row.get("seq"),
        hash: row.get("hash"),
    }))
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

fn event_from_row(row: SqliteRow) -> AuditEvent {
    AuditEvent {
        seq: row.get("seq"),
        record: AuditRecord {
            at_ms: row.get("at_ms"),
            actor: row.get("actor"),
            action: row.get("action"),
            subject: row.get("subject"),
            app: row.get("app"),
            details: row.get("details"),
        },
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}

const SELECT_EVENTS: &str =
    "SELECT seq, at_ms, actor, action, subject, app, details, prev_hash, hash FROM audit_events";

pub(crate) async fn events(
    conn: &mut SqliteConnection,
    filter: &AuditFilter,
) -> StoreResult<Vec<AuditEvent>> {
    // Newest first with the limit, then turned around: the last N events, oldest first.
    let limit = filter.limit.map_or(-1, i64::from);
    let rows = sqlx::query(&format!(
        "{SELECT_EVENTS} WHERE (?1 IS NULL OR app = ?1) ORDER BY seq DESC LIMIT ?2"
    ))
    .bind(&filter.app)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let mut events: Vec<AuditEvent> = rows.into_iter().map(event_from_row).collect();
    events.reverse();
    Ok(events)
}

pub(crate) async fn chain(conn: &mut SqliteConnection) -> StoreResult<AuditChain> {
    let rows = sqlx::query(&format!("{SELECT_EVENTS} ORDER BY seq"))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(AuditChain {
        events: rows.into_iter().map(event_from_row).collect(),
        head: head(conn).await?,
    })
}
