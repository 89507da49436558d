//! What targets' hooks and health checks printed, kept per deployment, target and step.

use crate::Connection;
use ferry_domain::step_log::StepLog;
use ferry_store::{StepLogRecord, StoreResult};

use crate::{backend, narrow, unreadable};

/// Replaces what `target` logged for `version` in the deployment with `logs`, placed after
/// the steps it logged for other releases of it.
pub(crate) async fn replace(
    conn: &mut Connection,
    deployment_id: i64,
    target: &str,
    version: &str,
    logs: &[StepLog],
    at_ms: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM step_logs WHERE deployment_id = $1 AND target = $2 AND version = $3")
        .bind(deployment_id)
        .bind(target)
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let next: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(position) + 1, 0) FROM step_logs WHERE deployment_id = $1 AND target = $2",
    )
    .bind(deployment_id)
    .bind(target)
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    for (i, log) in logs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO step_logs (deployment_id, target, position, version, step, command,
                ended, succeeded, output, at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(deployment_id)
        .bind(target)
        .bind(next + i as i64)
        .bind(version)
        .bind(&log.step)
        .bind(&log.command)
        .bind(&log.ended)
        .bind(log.succeeded)
        .bind(&log.output)
        .bind(at_ms)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

/// A row of `step_logs`.
#[derive(sqlx::FromRow)]
struct StepLogRow {
    deployment_id: i64,
    target: String,
    position: i64,
    version: String,
    step: String,
    command: String,
    ended: String,
    succeeded: bool,
    output: String,
    at_ms: i64,
}

impl TryFrom<StepLogRow> for StepLogRecord {
    type Error = ferry_store::StoreError;

    fn try_from(row: StepLogRow) -> StoreResult<StepLogRecord> {
        let position = narrow("position", row.position).map_err(|why| {
            unreadable(
                format!(
                    "the step log of target {:?} in deployment {}",
                    row.target, row.deployment_id
                ),
                why,
            )
        })?;
        Ok(StepLogRecord {
            deployment_id: row.deployment_id,
            target: row.target,
            version: row.version,
            position,
            log: StepLog {
                step: row.step,
                command: row.command,
                ended: row.ended,
                succeeded: row.succeeded,
                output: row.output,
            },
            at_ms: row.at_ms,
        })
    }
}

/// What a deployment's targets logged, of one target or all, by target and step.
pub(crate) async fn of_deployment(
    conn: &mut Connection,
    deployment_id: i64,
    target: Option<&str>,
) -> StoreResult<Vec<StepLogRecord>> {
    let rows: Vec<StepLogRow> = sqlx::query_as(
        "SELECT deployment_id, target, position, version, step, command, ended, succeeded,
            output, at_ms
         FROM step_logs
         WHERE deployment_id = $1 AND ($2 IS NULL OR target = $2)
         ORDER BY target, position",
    )
    .bind(deployment_id)
    .bind(target)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(StepLogRecord::try_from).collect()
}
