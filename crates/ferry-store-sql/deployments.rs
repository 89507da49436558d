//! Deployments and the releases rolled back per environment.

use crate::Connection;
use ferry_domain::deployment::{Kind, Status};
use ferry_store::{DeploymentRecord, DeploymentUpdate, DesiredChange, StoreError, StoreResult};

use crate::targets::set_desired;
use crate::{backend, not_found};

pub(crate) const SELECT_DEPLOYMENTS: &str =
    "SELECT deployments.id, apps.name AS app, deployments.env,
        deployments.version, deployments.config_revision, deployments.kind, deployments.state,
        deployments.revision,
        deployments.requested_by, deployments.created_ms, deployments.updated_ms,
        deployments.overrides, deployments.review
     FROM deployments JOIN apps ON apps.id = deployments.app_id";

/// A row of `SELECT_DEPLOYMENTS`.
#[derive(sqlx::FromRow)]
pub(crate) struct DeploymentRow {
    id: i64,
    app: String,
    env: String,
    version: String,
    config_revision: i64,
    kind: String,
    state: String,
    revision: i64,
    requested_by: String,
    created_ms: i64,
    updated_ms: i64,
    overrides: String,
    review: String,
}

impl TryFrom<DeploymentRow> for DeploymentRecord {
    type Error = StoreError;

    fn try_from(row: DeploymentRow) -> StoreResult<DeploymentRecord> {
        let unreadable = |what: &str, error: &dyn std::fmt::Display| {
            StoreError::Backend(format!(
                "deployment {} has an unreadable {what}: {error}",
                row.id
            ))
        };
        Ok(DeploymentRecord {
            kind: Kind::parse(&row.kind).map_err(|e| unreadable("kind", &e))?,
            state: serde_json::from_str(&row.state).map_err(|e| unreadable("state", &e))?,
            review: serde_json::from_str(&row.review).map_err(|e| unreadable("review", &e))?,
            config: u64::try_from(row.config_revision)
                .map_err(|e| unreadable("configuration revision", &e))?,
            id: row.id,
            app: row.app,
            env: row.env,
            version: row.version,
            revision: row.revision,
            requested_by: row.requested_by,
            created_ms: row.created_ms,
            updated_ms: row.updated_ms,
            overrides: row.overrides,
        })
    }
}

pub(crate) fn records(rows: Vec<DeploymentRow>) -> StoreResult<Vec<DeploymentRecord>> {
    rows.into_iter().map(DeploymentRecord::try_from).collect()
}

pub(crate) async fn by_id(conn: &mut Connection, id: i64) -> StoreResult<Option<DeploymentRecord>> {
    let row: Option<DeploymentRow> =
        sqlx::query_as(&format!("{SELECT_DEPLOYMENTS} WHERE deployments.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    row.map(DeploymentRecord::try_from).transpose()
}

pub(crate) async fn list(
    conn: &mut Connection,
    app: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<DeploymentRecord>> {
    let rows = sqlx::query_as(&format!(
        "{SELECT_DEPLOYMENTS} WHERE ($1 IS NULL OR apps.name = $1) ORDER BY deployments.id DESC LIMIT $2"
    ))
    .bind(app)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    records(rows)
}

/// Deployments in one of `statuses`, oldest first.
pub(crate) async fn in_status(
    conn: &mut Connection,
    statuses: &[Status],
) -> StoreResult<Vec<DeploymentRecord>> {
    let places: Vec<String> = (1..=statuses.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "{SELECT_DEPLOYMENTS} WHERE deployments.status IN ({}) ORDER BY deployments.id",
        places.join(", ")
    );
    let mut query = sqlx::query_as(&sql);
    for status in statuses {
        query = query.bind(status.as_str());
    }
    records(query.fetch_all(&mut *conn).await.map_err(backend)?)
}

pub(crate) async fn insert(
    conn: &mut Connection,
    deployment: &DeploymentRecord,
    changes: &[DesiredChange],
) -> StoreResult<DeploymentRecord> {
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT deployments.id FROM deployments JOIN apps ON apps.id = deployments.app_id
         WHERE apps.name = $1 AND deployments.env = $2
           AND deployments.status IN ($3, $4)",
    )
    .bind(&deployment.app)
    .bind(&deployment.env)
    .bind(Status::Running.as_str())
    .bind(Status::AwaitingApproval.as_str())
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    if let Some(id) = running {
        return Err(StoreError::Refused(format!(
            "deployment {id} of {} to {} is not finished: wait for it (`ferry deployment show {id} --wait`), approve or reject it if it awaits approval, or cancel it (`ferry deployment cancel {id} --reason TEXT`)",
            deployment.app, deployment.env
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO deployments (app_id, env, version, kind, status, state, reason, requested_by, created_ms, updated_ms, overrides, review, config_revision)
         VALUES ((SELECT id FROM apps WHERE name = $1), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
    )
    .bind(&deployment.app)
    .bind(&deployment.env)
    .bind(&deployment.version)
    .bind(deployment.kind.as_str())
    .bind(deployment.status().as_str())
    .bind(state_json(deployment))
    .bind(deployment.reason())
    .bind(&deployment.requested_by)
    .bind(deployment.created_ms)
    .bind(deployment.updated_ms)
    .bind(&deployment.overrides)
    .bind(serde_json::to_string(&deployment.review).expect("strings serialize"))
    .bind(i64::try_from(deployment.config).unwrap_or(i64::MAX))
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

fn state_json(deployment: &DeploymentRecord) -> String {
    serde_json::to_string(&deployment.state).expect("deployments serialize")
}

/// Saves a change of a deployment with the report that caused it (if any).
pub(crate) async fn save(conn: &mut Connection, update: &DeploymentUpdate<'_>) -> StoreResult<()> {
    self::update(
        conn,
        update.deployment,
        &update.changes,
        update.bad_version.as_deref(),
    )
    .await?;
    if let Some(report) = &update.report {
        crate::targets::report(conn, report).await?;
    }
    Ok(())
}

/// Saves a deployment over the revision it was read at, growing it by one; refused with a
/// conflict, changing nothing, when someone saved another change since.
pub(crate) async fn update(
    conn: &mut Connection,
    deployment: &DeploymentRecord,
    changes: &[DesiredChange],
    bad_version: Option<&str>,
) -> StoreResult<()> {
    let saved = sqlx::query(
        "UPDATE deployments SET status = $1, state = $2, reason = $3, updated_ms = $4,
                revision = revision + 1
         WHERE id = $5 AND revision = $6",
    )
    .bind(deployment.status().as_str())
    .bind(state_json(deployment))
    .bind(deployment.reason())
    .bind(deployment.updated_ms)
    .bind(deployment.id)
    .bind(deployment.revision)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if saved.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "deployment {} changed meanwhile: see `ferry deployment show {}`",
            deployment.id, deployment.id
        )));
    }
    for change in changes {
        set_desired(conn, change, deployment.updated_ms).await?;
    }
    if let Some(version) = bad_version {
        sqlx::query(
            "INSERT INTO bad_releases (app_id, env, version)
             VALUES ((SELECT id FROM apps WHERE name = $1), $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&deployment.app)
        .bind(&deployment.env)
        .bind(version)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    if deployment.kind == Kind::Deploy && deployment.status() == Status::Succeeded {
        // Deployed by name and live again: no longer a release rolled back from there.
        sqlx::query(
            "DELETE FROM bad_releases
             WHERE app_id = (SELECT id FROM apps WHERE name = $1) AND env = $2 AND version = $3",
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
    conn: &mut Connection,
    app: &str,
    env: &str,
) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT version FROM bad_releases WHERE app_id = (SELECT id FROM apps WHERE name = $1) AND env = $2 ORDER BY version",
    )
    .bind(app)
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)
}
