//! Deployments and the releases rolled back per environment.

use ferry_store::{DeploymentRecord, DesiredChange, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::targets::set_desired;
use crate::{backend, not_found};

pub(crate) const SELECT_DEPLOYMENTS: &str = "SELECT deployments.id, apps.name AS app, deployments.env,
        deployments.version, deployments.kind, deployments.status, deployments.state,
        deployments.reason, deployments.requested_by, deployments.created_ms, deployments.updated_ms,
        deployments.overrides, deployments.review
     FROM deployments JOIN apps ON apps.id = deployments.app_id";

pub(crate) fn deployment_from_row(row: SqliteRow) -> DeploymentRecord {
    let review: String = row.get("review");
    DeploymentRecord {
        id: row.get("id"),
        app: row.get("app"),
        env: row.get("env"),
        version: row.get("version"),
        kind: row.get("kind"),
        status: row.get("status"),
        state: row.get("state"),
        reason: row.get("reason"),
        requested_by: row.get("requested_by"),
        created_ms: row.get("created_ms"),
        updated_ms: row.get("updated_ms"),
        overrides: row.get("overrides"),
        // Written by `insert` from a list of strings; unreadable only if edited by hand, and
        // then no review is better than no deployment.
        review: serde_json::from_str(&review).unwrap_or_default(),
    }
}

pub(crate) async fn by_id(
    conn: &mut SqliteConnection,
    id: i64,
) -> StoreResult<Option<DeploymentRecord>> {
    let row = sqlx::query(&format!("{SELECT_DEPLOYMENTS} WHERE deployments.id = ?"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(row.map(deployment_from_row))
}

pub(crate) async fn list(
    conn: &mut SqliteConnection,
    app: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<DeploymentRecord>> {
    let rows = sqlx::query(&format!(
        "{SELECT_DEPLOYMENTS} WHERE (?1 IS NULL OR apps.name = ?1) ORDER BY deployments.id DESC LIMIT ?2"
    ))
    .bind(app)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(deployment_from_row).collect())
}

pub(crate) async fn running(conn: &mut SqliteConnection) -> StoreResult<Vec<DeploymentRecord>> {
    let rows = sqlx::query(&format!(
        "{SELECT_DEPLOYMENTS} WHERE deployments.status = 'running' ORDER BY deployments.id"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(deployment_from_row).collect())
}

pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    deployment: &DeploymentRecord,
    changes: &[DesiredChange],
) -> StoreResult<DeploymentRecord> {
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT deployments.id FROM deployments JOIN apps ON apps.id = deployments.app_id
         WHERE apps.name = ? AND deployments.env = ?
           AND deployments.status IN ('running', 'awaiting_approval')",
    )
    .bind(&deployment.app)
    .bind(&deployment.env)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    if let Some(id) = running {
        return Err(StoreError::Refused(format!(
            "deployment {id} of {} to {} is not finished: wait for it (`ferry deployment show {id}`), or approve or reject it if it awaits approval",
            deployment.app, deployment.env
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deployments (app_id, env, version, kind, status, state, reason, requested_by, created_ms, updated_ms, overrides, review)
         VALUES ((SELECT id FROM apps WHERE name = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&deployment.app)
    .bind(&deployment.env)
    .bind(&deployment.version)
    .bind(&deployment.kind)
    .bind(&deployment.status)
    .bind(&deployment.state)
    .bind(&deployment.reason)
    .bind(&deployment.requested_by)
    .bind(deployment.created_ms)
    .bind(deployment.updated_ms)
    .bind(&deployment.overrides)
    .bind(serde_json::to_string(&deployment.review).expect("strings serialize"))
    .fetch_one(&mut *conn)
    .await
    .map_err(backend)?;
    for change in changes {
        let change = DesiredChange {
            deployment_id: id,
            ..change.clone()
        };
        set_desired(conn, &change, deployment.created_ms).await?;
    }
    by_id(conn, id)
        .await?
        .ok_or_else(|| not_found("deployment", &id.to_string()))
}

pub(crate) async fn update(
    conn: &mut SqliteConnection,
    deployment: &DeploymentRecord,
    changes: &[DesiredChange],
    bad_version: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE deployments SET status = ?, state = ?, reason = ?, updated_ms = ? WHERE id = ?",
    )
    .bind(&deployment.status)
    .bind(&deployment.state)
    .bind(&deployment.reason)
    .bind(deployment.updated_ms)
    .bind(deployment.id)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    for change in changes {
        set_desired(conn, change, deployment.updated_ms).await?;
    }
    if let Some(version) = bad_version {
        sqlx::query(
            "INSERT OR IGNORE INTO bad_releases (app_id, env, version)
             VALUES ((SELECT id FROM apps WHERE name = ?), ?, ?)",
        )
        .bind(&deployment.app)
        .bind(&deployment.env)
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    if deployment.kind == "deploy" && deployment.status == "succeeded" {
        // Deployed by name and live again: no longer a release rolled back from there.
        sqlx::query(
            "DELETE FROM bad_releases
             WHERE app_id = (SELECT id FROM apps WHERE name = ?) AND env = ? AND version = ?",
        )
        .bind(&deployment.app)
        .bind(&deployment.env)
        .bind(&deployment.version)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

pub(crate) async fn bad_versions(
    conn: &mut SqliteConnection,
    app: &str,
    env: &str,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT version FROM bad_releases WHERE app_id = (SELECT id FROM apps WHERE name = ?) AND env = ? ORDER BY version",
    )
    .bind(app)
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)
}
