//! Reads that cover every application at once (one query each, whatever the number of
//! applications), and the status revision the server keys its status document by.

use crate::Connection;
use ferry_domain::deployment::{Kind, Status};
use ferry_store::{BadVersion, DeploymentRecord, StoreResult};

use crate::backend;
use crate::deployments::{records, DeploymentRow, SELECT_DEPLOYMENTS};

/// The number the triggers of `0010_status_revision.sql` bump with every write that can
/// change what `status` shows.
pub(crate) async fn status_revision(conn: &mut Connection) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT revision FROM status_revision WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)
}

/// Per application and environment, the newest deployment that went live: succeeded, and
/// not stage-only (`DeploymentRecord::went_live`); newest is the highest id, as
/// `list_deployments` orders them.
pub(crate) async fn live_deployments(conn: &mut Connection) -> StoreResult<Vec<DeploymentRecord>> {
    let rows: Vec<DeploymentRow> = sqlx::query_as(&format!(
        "{SELECT_DEPLOYMENTS}
         WHERE deployments.id IN (
             SELECT max(id) FROM deployments
             WHERE status = $1 AND kind != $2
             GROUP BY app_id, env)
         ORDER BY apps.name, deployments.env"
    ))
    .bind(Status::Succeeded.as_str())
    .bind(Kind::Stage.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    records(rows)
}

pub(crate) async fn every_bad_version(conn: &mut Connection) -> StoreResult<Vec<BadVersion>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT apps.name AS app, bad_releases.env, bad_releases.version
         FROM bad_releases JOIN apps ON apps.id = bad_releases.app_id
         ORDER BY apps.name, bad_releases.env, bad_releases.version",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(app, env, version)| BadVersion { app, env, version })
        .collect())
}
