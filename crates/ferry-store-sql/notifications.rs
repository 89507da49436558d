//! Notifications: channels per team, the deliveries derived from the audit trail, and the
//! cursor over the trail.

use crate::Connection;
use ferry_domain::audit::AuditEvent;
use ferry_store::{
    Attempt, ChannelRecord, DeliveryRecord, DeliveryStatus, DueDeliveries, NewChannel, NewDelivery,
    StoreError, StoreResult,
};

use crate::audit::{EventRow, SELECT_EVENTS};
use crate::dialect::SKIP_LOCKED_ROWS;
use crate::{backend, narrow, not_found, unreadable};

async fn team_id(conn: &mut Connection, team: &str) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT id FROM teams WHERE name = $1")
        .bind(team)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("team", team))
}

const SELECT_CHANNELS: &str = "SELECT c.id, t.name AS team, c.config, c.description, c.created_by,
        c.created_ms, c.removed_ms
    FROM notification_channels c JOIN teams t ON t.id = c.team_id";

/// A row of `SELECT_CHANNELS`. The configuration stays JSON text, as the record carries
/// it: the server's notifier reads it when it sends.
#[derive(sqlx::FromRow)]
struct ChannelRow {
    id: i64,
    team: String,
    config: String,
    description: String,
    created_by: String,
    created_ms: i64,
    removed_ms: Option<i64>,
}

impl From<ChannelRow> for ChannelRecord {
    fn from(row: ChannelRow) -> ChannelRecord {
        ChannelRecord {
            id: row.id,
            team: row.team,
            config: row.config,
            description: row.description,
            created_by: row.created_by,
            created_ms: row.created_ms,
            removed_ms: row.removed_ms,
        }
    }
}

pub(crate) async fn insert_channel(
    conn: &mut Connection,
    channel: &NewChannel,
) -> StoreResult<ChannelRecord> {
    let team_id = team_id(conn, &channel.team).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO notification_channels (team_id, config, description, created_by, created_ms)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(team_id)
    .bind(&channel.config)
    .bind(&channel.description)
    .bind(&channel.created_by)
    .bind(channel.created_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(ChannelRecord {
        id,
        team: channel.team.clone(),
        config: channel.config.clone(),
        description: channel.description.clone(),
        created_by: channel.created_by.clone(),
        created_ms: channel.created_ms,
        removed_ms: None,
    })
}

pub(crate) async fn channels(
    conn: &mut Connection,
    team: Option<&str>,
    include_removed: bool,
) -> StoreResult<Vec<ChannelRecord>> {
    let rows: Vec<ChannelRow> = sqlx::query_as(&format!(
        "{SELECT_CHANNELS} WHERE ($1 IS NULL OR t.name = $1) AND ($2 OR c.removed_ms IS NULL)
         ORDER BY c.id"
    ))
    .bind(team)
    .bind(include_removed)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(ChannelRecord::from).collect())
}

/// The channel `id` of `team`, if it is in use.
async fn channel_in_use(conn: &mut Connection, team: &str, id: i64) -> StoreResult<ChannelRecord> {
    let row: Option<ChannelRow> = sqlx::query_as(&format!(
        "{SELECT_CHANNELS} WHERE c.id = $1 AND t.name = $2 AND c.removed_ms IS NULL"
    ))
    .bind(id)
    .bind(team)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    row.map(ChannelRecord::from)
        .ok_or_else(|| not_found("channel", &id.to_string()))
}

pub(crate) async fn remove_channel(
    conn: &mut Connection,
    team: &str,
    id: i64,
    now_ms: i64,
) -> StoreResult<()> {
    channel_in_use(conn, team, id).await?;
    sqlx::query("UPDATE notification_channels SET removed_ms = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(
        "UPDATE notification_deliveries
         SET status = $1, finished_ms = $2, claimed_until_ms = NULL,
             last_error = coalesce(last_error || '; ', '') || 'the channel was removed before the message was delivered'
         WHERE channel_id = $3 AND status = $4",
    )
    .bind(DeliveryStatus::Failed.as_str())
    .bind(now_ms)
    .bind(id)
    .bind(DeliveryStatus::Pending.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

const SELECT_DELIVERIES: &str = "SELECT d.id, d.channel_id, c.description AS channel,
        t.name AS team, d.event, d.audit_seq, d.message, d.status, d.attempts,
        d.next_attempt_ms, d.last_attempt_ms, d.last_error, d.detail, d.created_ms,
        d.finished_ms
    FROM notification_deliveries d
    JOIN notification_channels c ON c.id = d.channel_id
    JOIN teams t ON t.id = d.team_id";

/// A row of `SELECT_DELIVERIES`. The message stays JSON text, as the record carries it: the
/// server's notifier reads it when it sends.
#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    channel_id: i64,
    channel: String,
    team: String,
    event: String,
    audit_seq: Option<i64>,
    message: String,
    status: String,
    attempts: i64,
    next_attempt_ms: i64,
    last_attempt_ms: Option<i64>,
    last_error: Option<String>,
    detail: Option<String>,
    created_ms: i64,
    finished_ms: Option<i64>,
}

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StoreError;

    fn try_from(row: DeliveryRow) -> StoreResult<DeliveryRecord> {
        let unreadable = |why: String| unreadable(format_args!("delivery {}", row.id), why);
        let status = DeliveryStatus::parse(&row.status).map_err(|e| unreadable(e.to_string()))?;
        Ok(DeliveryRecord {
            attempts: narrow("attempts", row.attempts).map_err(unreadable)?,
            id: row.id,
            channel_id: row.channel_id,
            channel: row.channel,
            team: row.team,
            event: row.event,
            audit_seq: row.audit_seq,
            message: row.message,
            status,
            next_attempt_ms: row.next_attempt_ms,
            last_attempt_ms: row.last_attempt_ms,
            last_error: row.last_error,
            detail: row.detail,
            created_ms: row.created_ms,
            finished_ms: row.finished_ms,
        })
    }
}

pub(crate) async fn delivery(
    conn: &mut Connection,
    id: i64,
) -> StoreResult<Option<DeliveryRecord>> {
    let row: Option<DeliveryRow> = sqlx::query_as(&format!("{SELECT_DELIVERIES} WHERE d.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    row.map(DeliveryRecord::try_from).transpose()
}

pub(crate) async fn deliveries(
    conn: &mut Connection,
    team: &str,
    limit: u32,
) -> StoreResult<Vec<DeliveryRecord>> {
    let team_id = team_id(conn, team).await?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "{SELECT_DELIVERIES} WHERE d.team_id = $1 ORDER BY d.id DESC LIMIT $2"
    ))
    .bind(team_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(DeliveryRecord::try_from).collect()
}

/// Inserts a pending delivery, due at once; the channel must be the team's and in use.
pub(crate) async fn insert_delivery(
    conn: &mut Connection,
    delivery: &NewDelivery,
) -> StoreResult<i64> {
    let channel = channel_in_use(conn, &delivery.team, delivery.channel_id)
        .await
        .map_err(|_| {
            StoreError::Refused(format!(
                "channel {} is not a channel of team {:?} in use; `ferry channel list {}` shows them",
                delivery.channel_id, delivery.team, delivery.team
            ))
        })?;
    let team_id = team_id(conn, &channel.team).await?;
    sqlx::query_scalar(
        "INSERT INTO notification_deliveries
            (channel_id, team_id, event, audit_seq, message, status, attempts, next_attempt_ms,
             created_ms)
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) RETURNING id",
    )
    .bind(delivery.channel_id)
    .bind(team_id)
    .bind(&delivery.event)
    .bind(delivery.audit_seq)
    .bind(&delivery.message)
    .bind(DeliveryStatus::Pending.as_str())
    .bind(delivery.created_ms)
    .bind(delivery.created_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists {
            kind: "delivery of audit event",
            name: format!(
                "{:?} to channel {}",
                delivery.audit_seq, delivery.channel_id
            ),
        },
        _ => backend(e),
    })
}

/// The cursor, set to the end of the audit trail if it was never set.
pub(crate) async fn cursor(conn: &mut Connection) -> StoreResult<i64> {
    sqlx::query(
        "INSERT INTO notification_cursor (id, seq)
         SELECT 1, coalesce((SELECT max(seq) FROM audit_events), 0)
         WHERE NOT EXISTS (SELECT 1 FROM notification_cursor)",
    )
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query_scalar("SELECT seq FROM notification_cursor WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

/// Moves the cursor from `from` to `to`; refused if it is not at `from`.
pub(crate) async fn move_cursor(conn: &mut Connection, from: i64, to: i64) -> StoreResult<()> {
    let moved = sqlx::query("UPDATE notification_cursor SET seq = $1 WHERE id = 1 AND seq = $2")
        .bind(to)
        .bind(from)
        .execute(&mut *conn)
        .await
        .map_err(backend)?
        .rows_affected();
    if moved != 1 {
        return Err(StoreError::Refused(format!(
            "the notification cursor is no longer at audit event {from}: another notifier moved it"
        )));
    }
    Ok(())
}

pub(crate) async fn audit_events_after(
    conn: &mut Connection,
    seq: i64,
    limit: u32,
) -> StoreResult<Vec<AuditEvent>> {
    let rows: Vec<EventRow> = sqlx::query_as(&format!(
        "{SELECT_EVENTS} WHERE seq > $1 ORDER BY seq LIMIT $2"
    ))
    .bind(seq)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(AuditEvent::from).collect())
}

/// Whether any delivery is due and unclaimed (claimed ones whose claim ran out included).
pub(crate) async fn any_due(conn: &mut Connection, due: DueDeliveries) -> StoreResult<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notification_deliveries
             WHERE status = $1 AND (next_attempt_ms <= $2 OR next_attempt_ms > $3)
               AND (claimed_until_ms IS NULL OR claimed_until_ms <= $2))",
    )
    .bind(DeliveryStatus::Pending.as_str())
    .bind(due.now_ms)
    .bind(due.latest_schedule_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)
}

/// Claims up to `limit` due deliveries until `due.claimed_until_ms`, in one statement (on
/// PostgreSQL skipping rows another server is claiming at this moment).
pub(crate) async fn claim_due(
    conn: &mut Connection,
    due: DueDeliveries,
    limit: u32,
) -> StoreResult<Vec<DeliveryRecord>> {
    let mut ids: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "UPDATE notification_deliveries SET claimed_until_ms = $4
         WHERE id IN (
             SELECT d.id FROM notification_deliveries d
             JOIN notification_channels c ON c.id = d.channel_id
             WHERE d.status = $1 AND c.removed_ms IS NULL
               AND (d.next_attempt_ms <= $2 OR d.next_attempt_ms > $5)
               AND (d.claimed_until_ms IS NULL OR d.claimed_until_ms <= $2)
             ORDER BY d.next_attempt_ms, d.id LIMIT $3
             {SKIP_LOCKED_ROWS})
         RETURNING id, next_attempt_ms"
    ))
    .bind(DeliveryStatus::Pending.as_str())
    .bind(due.now_ms)
    .bind(i64::from(limit))
    .bind(due.claimed_until_ms)
    .bind(due.latest_schedule_ms)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    ids.sort_by_key(|&(id, due_ms)| (due_ms, id));
    let mut claimed = Vec::with_capacity(ids.len());
    for (id, _) in ids {
        if let Some(delivery) = delivery(conn, id).await? {
            claimed.push(delivery);
        }
    }
    Ok(claimed)
}

pub(crate) async fn record_attempt(
    conn: &mut Connection,
    id: i64,
    at_ms: i64,
    attempt: &Attempt,
) -> StoreResult<DeliveryRecord> {
    let current = delivery(conn, id)
        .await?
        .ok_or_else(|| not_found("delivery", &id.to_string()))?;
    let channel_removed: Option<i64> =
        sqlx::query_scalar("SELECT removed_ms FROM notification_channels WHERE id = $1")
            .bind(current.channel_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
    let (status, next_attempt_ms, error, detail, finished) = match attempt {
        // The error of an earlier attempt stays: the log shows why it took several.
        Attempt::Delivered { detail } => (
            DeliveryStatus::Delivered,
            current.next_attempt_ms,
            current.last_error.clone(),
            Some(detail.clone()),
            Some(at_ms),
        ),
        Attempt::Retry {
            error,
            next_attempt_ms,
        } if channel_removed.is_none() => (
            DeliveryStatus::Pending,
            *next_attempt_ms,
            Some(error.clone()),
            None,
            None,
        ),
        Attempt::Retry { error, .. } => (
            DeliveryStatus::Failed,
            current.next_attempt_ms,
            Some(format!(
                "{error}; the channel was removed, so ferry does not try again"
            )),
            None,
            Some(at_ms),
        ),
        Attempt::Failed { error } => (
            DeliveryStatus::Failed,
            current.next_attempt_ms,
            Some(error.clone()),
            None,
            Some(at_ms),
        ),
    };
    sqlx::query(
        "UPDATE notification_deliveries
         SET status = $1, attempts = attempts + 1, next_attempt_ms = $2, claimed_until_ms = NULL,
             last_attempt_ms = $3, last_error = $4, detail = $5, finished_ms = $6
         WHERE id = $7",
    )
    .bind(status.as_str())
    .bind(next_attempt_ms)
    .bind(at_ms)
    .bind(error)
    .bind(detail)
    .bind(finished)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    delivery(conn, id)
        .await?
        .ok_or_else(|| not_found("delivery", &id.to_string()))
}
