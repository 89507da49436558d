//! Freeze windows and one-off freezes of environments, and approvals of deployments.

use crate::Connection;
use ferry_domain::deployment::Status;
use ferry_domain::freeze::OneOffFreeze;
use ferry_store::{
    ApprovalRecord, FreezeWindowRecord, OneOffFreezeRecord, StoreError, StoreResult,
};

use crate::{backend, not_found, unique};

pub(crate) async fn freeze_windows(
    conn: &mut Connection,
    env: Option<&str>,
) -> StoreResult<Vec<FreezeWindowRecord>> {
    // The expression stays text: the server parses it where it judges policy.
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT env, expression, created_ms FROM freeze_windows
         WHERE $1 IS NULL OR env = $1 ORDER BY env, created_ms, expression",
    )
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(env, expression, created_ms)| FreezeWindowRecord {
            env,
            expression,
            created_ms,
        })
        .collect())
}

pub(crate) async fn add_freeze_window(
    conn: &mut Connection,
    window: &FreezeWindowRecord,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO freeze_windows (env, expression, created_ms) VALUES ($1, $2, $3)")
        .bind(&window.env)
        .bind(&window.expression)
        .bind(window.created_ms)
        .execute(&mut *conn)
        .await
        .map_err(unique("freeze window", &window.expression))?;
    Ok(())
}

pub(crate) async fn remove_freeze_window(
    conn: &mut Connection,
    env: &str,
    expression: &str,
) -> StoreResult<()> {
    let removed = sqlx::query("DELETE FROM freeze_windows WHERE env = $1 AND expression = $2")
        .bind(env)
        .bind(expression)
        .execute(&mut *conn)
        .await
        .map_err(backend)?
        .rows_affected();
    if removed == 0 {
        return Err(not_found("freeze window", expression));
    }
    Ok(())
}

/// A row of [`one_off_freezes`]' query.
#[derive(sqlx::FromRow)]
struct OneOffFreezeRow {
    env: String,
    from_ms: i64,
    until_ms: i64,
    reason: String,
    by_user: String,
}

impl From<OneOffFreezeRow> for OneOffFreezeRecord {
    fn from(row: OneOffFreezeRow) -> OneOffFreezeRecord {
        OneOffFreezeRecord {
            env: row.env,
            freeze: OneOffFreeze {
                from_ms: row.from_ms,
                until_ms: row.until_ms,
                reason: row.reason,
                by: row.by_user,
            },
        }
    }
}

pub(crate) async fn one_off_freezes(
    conn: &mut Connection,
    env: Option<&str>,
) -> StoreResult<Vec<OneOffFreezeRecord>> {
    let rows: Vec<OneOffFreezeRow> = sqlx::query_as(
        "SELECT env, from_ms, until_ms, reason, by_user FROM one_off_freezes
         WHERE $1 IS NULL OR env = $1 ORDER BY env",
    )
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(OneOffFreezeRecord::from).collect())
}

/// The end of the one-off freeze stored for `env`, if one is.
async fn stored_end(conn: &mut Connection, env: &str) -> StoreResult<Option<i64>> {
    sqlx::query_scalar("SELECT until_ms FROM one_off_freezes WHERE env = $1")
        .bind(env)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// A refusal because the stored freeze is no longer the one the caller judged.
fn changed_meanwhile(env: &str) -> StoreError {
    StoreError::Conflict(format!(
        "the freeze of {env} changed meanwhile: see `ferry env list`, then try again"
    ))
}

/// Stores `record` in place of the freeze ending at `replacing` (none: `None`).
pub(crate) async fn put_one_off_freeze(
    conn: &mut Connection,
    record: &OneOffFreezeRecord,
    replacing: Option<i64>,
) -> StoreResult<()> {
    let env = &record.env;
    crate::pipeline::environment(&mut *conn, env).await?;
    if stored_end(&mut *conn, env).await? != replacing {
        return Err(changed_meanwhile(env));
    }
    let freeze = &record.freeze;
    sqlx::query(
        "INSERT INTO one_off_freezes (env, from_ms, until_ms, reason, by_user)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (env) DO UPDATE SET from_ms = $2, until_ms = $3, reason = $4, by_user = $5",
    )
    .bind(env)
    .bind(freeze.from_ms)
    .bind(freeze.until_ms)
    .bind(&freeze.reason)
    .bind(&freeze.by)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Removes the freeze of `env` ending at `until_ms`.
pub(crate) async fn end_one_off_freeze(
    conn: &mut Connection,
    env: &str,
    until_ms: i64,
) -> StoreResult<()> {
    let removed = sqlx::query("DELETE FROM one_off_freezes WHERE env = $1 AND until_ms = $2")
        .bind(env)
        .bind(until_ms)
        .execute(&mut *conn)
        .await
        .map_err(backend)?
        .rows_affected();
    if removed == 0 {
        return Err(changed_meanwhile(env));
    }
    Ok(())
}

/// A row of [`approvals`]' query.
#[derive(sqlx::FromRow)]
struct ApprovalRow {
    deployment_id: i64,
    approver: String,
    version: String,
    reason: Option<String>,
    at_ms: i64,
}

impl From<ApprovalRow> for ApprovalRecord {
    fn from(row: ApprovalRow) -> ApprovalRecord {
        ApprovalRecord {
            deployment_id: row.deployment_id,
            approver: row.approver,
            version: row.version,
            reason: row.reason,
            at_ms: row.at_ms,
        }
    }
}

pub(crate) async fn approvals(
    conn: &mut Connection,
    deployment_id: i64,
) -> StoreResult<Vec<ApprovalRecord>> {
    let rows: Vec<ApprovalRow> = sqlx::query_as(
        "SELECT deployment_id, approver, version, reason, at_ms FROM approvals
         WHERE deployment_id = $1 ORDER BY at_ms, approver",
    )
    .bind(deployment_id)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(ApprovalRecord::from).collect())
}

/// Records an approval, refused when the deployment no longer awaits approval or the
/// approver approved it already (both checked again here, inside the transaction).
pub(crate) async fn add_approval(
    conn: &mut Connection,
    approval: &ApprovalRecord,
) -> StoreResult<()> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM deployments WHERE id = $1")
        .bind(approval.deployment_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    if status.as_deref() != Some(Status::AwaitingApproval.as_str()) {
        return Err(StoreError::Refused(format!(
            "deployment {} does not await approval",
            approval.deployment_id
        )));
    }
    sqlx::query(
        "INSERT INTO approvals (deployment_id, approver, version, reason, at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(approval.deployment_id)
    .bind(&approval.approver)
    .bind(&approval.version)
    .bind(&approval.reason)
    .bind(approval.at_ms)
    .execute(&mut *conn)
    .await
    .map_err(unique("approval by", &approval.approver))?;
    Ok(())
}
