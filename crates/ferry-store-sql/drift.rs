//! Drift: what each target's agent last found comparing an application's files with the
//! release it runs, one row per target and application.

use crate::Connection;
use ferry_domain::drift::DriftChange;
use ferry_store::{DriftReport, DriftedPathRecord, StoreResult, TargetDrift};
use serde::{Deserialize, Serialize};

use crate::{backend, narrow, not_found, unreadable};

/// A drifted path as `target_drift.paths` stores it (a JSON array of these), written and
/// read through this one shape.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPath {
    path: String,
    change: String,
    first_seen_ms: i64,
}

fn paths_to_json(paths: &[DriftedPathRecord]) -> String {
    let stored: Vec<StoredPath> = paths
        .iter()
        .map(|p| StoredPath {
            path: p.path.clone(),
            change: p.change.as_str().to_owned(),
            first_seen_ms: p.first_seen_ms,
        })
        .collect();
    serde_json::to_string(&stored).expect("drifted paths serialize")
}

fn paths_from_json(row: &str, text: &str) -> StoreResult<Vec<DriftedPathRecord>> {
    let stored: Vec<StoredPath> =
        serde_json::from_str(text).map_err(|e| unreadable(row, format_args!("paths: {e}")))?;
    stored
        .into_iter()
        .map(|p| {
            Ok(DriftedPathRecord {
                change: DriftChange::parse(&p.change).map_err(|e| unreadable(row, e))?,
                path: p.path,
                first_seen_ms: p.first_seen_ms,
            })
        })
        .collect()
}

/// Replaces the findings of `report.target` (in service) and `report.app`; whether they are
/// the first drift found on the release (the last found none, or were about another one).
pub(crate) async fn record(conn: &mut Connection, report: &DriftReport) -> StoreResult<bool> {
    let target_id: Option<i64> =
        sqlx::query_scalar("SELECT id FROM targets WHERE name = $1 AND removed_ms IS NULL")
            .bind(&report.target)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let target_id = target_id.ok_or_else(|| not_found("target", &report.target))?;
    let app_id: Option<i64> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(&report.app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    let app_id = app_id.ok_or_else(|| not_found("application", &report.app))?;
    let before: Option<(String, i64)> = sqlx::query_as(
        "SELECT version, path_count FROM target_drift WHERE target_id = $1 AND app_id = $2",
    )
    .bind(target_id)
    .bind(app_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let first = report.path_count > 0
        && before.is_none_or(|(version, count)| count == 0 || version != report.version);
    sqlx::query(
        "INSERT INTO target_drift (target_id, app_id, version, paths, path_count, checked_ms)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (target_id, app_id) DO UPDATE SET
             version = excluded.version, paths = excluded.paths,
             path_count = excluded.path_count, checked_ms = excluded.checked_ms",
    )
    .bind(target_id)
    .bind(app_id)
    .bind(&report.version)
    .bind(paths_to_json(&report.paths))
    .bind(i64::try_from(report.path_count).unwrap_or(i64::MAX))
    .bind(report.checked_ms)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(first)
}

/// Forgets the findings of `target` (taken out of service).
pub(crate) async fn forget_target(conn: &mut Connection, target: &str) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM target_drift WHERE target_id = (SELECT id FROM targets WHERE name = $1)",
    )
    .bind(target)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// A row of `target_drift` with its names.
#[derive(sqlx::FromRow)]
struct DriftRow {
    target: String,
    env: String,
    app: String,
    version: String,
    paths: String,
    path_count: i64,
    checked_ms: i64,
}

impl TryFrom<DriftRow> for TargetDrift {
    type Error = ferry_store::StoreError;

    fn try_from(row: DriftRow) -> StoreResult<TargetDrift> {
        let name = format!("the drift of {} on {}", row.app, row.target);
        Ok(TargetDrift {
            env: row.env,
            report: DriftReport {
                paths: paths_from_json(&name, &row.paths)?,
                path_count: narrow("path_count", row.path_count)
                    .map_err(|why| unreadable(&name, why))?,
                target: row.target,
                app: row.app,
                version: row.version,
                checked_ms: row.checked_ms,
            },
        })
    }
}

/// The findings of every target in service, or of one application's, by application and
/// target.
pub(crate) async fn list(
    conn: &mut Connection,
    app: Option<&str>,
) -> StoreResult<Vec<TargetDrift>> {
    let rows: Vec<DriftRow> = sqlx::query_as(
        "SELECT targets.name AS target, targets.env, apps.name AS app, target_drift.version,
                target_drift.paths, target_drift.path_count, target_drift.checked_ms
         FROM target_drift
         JOIN targets ON targets.id = target_drift.target_id
         JOIN apps ON apps.id = target_drift.app_id
         WHERE ($1 IS NULL OR apps.name = $1) AND targets.removed_ms IS NULL
         ORDER BY apps.name, targets.name",
    )
    .bind(app)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(TargetDrift::try_from).collect()
}
