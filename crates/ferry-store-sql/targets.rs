//! Targets, enrollment, placements, and each target's desired and reported state.

use crate::Connection;
use ferry_domain::deployment::{Kind, Status, TargetAppState};
use ferry_domain::served::Served;
use ferry_domain::vocabulary::UnknownWord;
use ferry_store::{
    AgentBuild, DiskSpace, StoreError, StoreResult, Target, TargetApp, TargetReport,
};

use crate::{backend, narrow, not_found, unreadable};

const SELECT_TARGETS: &str = "SELECT name, env, enrolled_ms, last_seen_ms, created_ms, \
     removed_ms, agent_version, agent_protocol, agent_disk_free, agent_disk_total, \
     agent_said_ms FROM targets";

/// A row of `SELECT_TARGETS`.
#[derive(sqlx::FromRow)]
struct TargetRow {
    name: String,
    env: String,
    enrolled_ms: Option<i64>,
    last_seen_ms: Option<i64>,
    created_ms: i64,
    /// When the target was taken out of service; `None` while it is in service.
    removed_ms: Option<i64>,
    agent_version: Option<String>,
    agent_protocol: Option<i64>,
    agent_disk_free: Option<i64>,
    agent_disk_total: Option<i64>,
    agent_said_ms: Option<i64>,
}

impl From<TargetRow> for Target {
    fn from(row: TargetRow) -> Target {
        let disk = match (row.agent_disk_free, row.agent_disk_total) {
            (Some(free), Some(total)) => Some(DiskSpace {
                free: free.max(0) as u64,
                total: total.max(0) as u64,
            }),
            _ => None,
        };
        let agent = match (row.agent_version, row.agent_said_ms) {
            (Some(version), Some(said_ms)) => Some(AgentBuild {
                version,
                protocol: row
                    .agent_protocol
                    .unwrap_or(1)
                    .clamp(0, i64::from(u32::MAX)) as u32,
                disk,
                said_ms,
            }),
            _ => None,
        };
        Target {
            name: row.name,
            env: row.env,
            enrolled_ms: row.enrolled_ms,
            last_seen_ms: row.last_seen_ms,
            created_ms: row.created_ms,
            agent,
        }
    }
}

/// The target row `condition` finds, in service or removed.
async fn row_where(
    conn: &mut Connection,
    condition: &str,
    value: &str,
) -> StoreResult<Option<TargetRow>> {
    sqlx::query_as(&format!("{SELECT_TARGETS} WHERE {condition}"))
        .bind(value)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)
}

/// The target in service `condition` finds.
async fn target_where(
    conn: &mut Connection,
    condition: &str,
    value: &str,
) -> StoreResult<Option<Target>> {
    Ok(row_where(conn, condition, value)
        .await?
        .filter(|row| row.removed_ms.is_none())
        .map(Target::from))
}

pub(crate) async fn list(conn: &mut Connection) -> StoreResult<Vec<Target>> {
    let rows: Vec<TargetRow> = sqlx::query_as(&format!(
        "{SELECT_TARGETS} WHERE removed_ms IS NULL ORDER BY name"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows.into_iter().map(Target::from).collect())
}

pub(crate) async fn by_credential(
    conn: &mut Connection,
    hash: &str,
) -> StoreResult<Option<Target>> {
    target_where(conn, "credential_hash = $1", hash).await
}

/// Takes `target` out of service: no credential, no enrollment tokens, not enrolled.
pub(crate) async fn remove(
    conn: &mut Connection,
    target: &str,
    now_ms: i64,
) -> StoreResult<Target> {
    let found = target_where(conn, "name = $1", target)
        .await?
        .ok_or_else(|| not_found("target", target))?;
    sqlx::query(
        "DELETE FROM enrollment_tokens WHERE target_id = (SELECT id FROM targets WHERE name = $1)",
    )
    .bind(target)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query(
        "UPDATE targets SET credential_hash = NULL, enrolled_ms = NULL, removed_ms = $1
         WHERE name = $2",
    )
    .bind(now_ms)
    .bind(target)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(found)
}

pub(crate) async fn create_enrollment(
    conn: &mut Connection,
    env: &str,
    target: &str,
    token_hash: &str,
    expires_ms: i64,
    now_ms: i64,
) -> StoreResult<Target> {
    let env_exists: Option<String> =
        sqlx::query_scalar("SELECT name FROM environments WHERE name = $1")
            .bind(env)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    env_exists.ok_or_else(|| not_found("environment", env))?;
    match row_where(conn, "name = $1", target).await? {
        Some(existing) if existing.env != env => {
            return Err(StoreError::Refused(format!(
                "target {target:?} belongs to environment {:?}; a target serves one environment{}",
                existing.env,
                match existing.removed_ms {
                    Some(_) => ", also after it was removed: choose another name",
                    None => "",
                }
            )))
        }
        Some(existing) if existing.enrolled_ms.is_some() => {
            return Err(StoreError::Refused(format!(
                "target {target:?} is enrolled already; remove it first (`ferry target remove {target}`) to enroll a new server under that name"
            )))
        }
        // A removed target comes back, to be taken over by the agent that enrolls.
        Some(existing) if existing.removed_ms.is_some() => {
            sqlx::query("UPDATE targets SET removed_ms = NULL, last_seen_ms = NULL WHERE name = $1")
                .bind(target)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        Some(_) => {}
        None => {
            sqlx::query("INSERT INTO targets (name, env, created_ms) VALUES ($1, $2, $3)")
                .bind(target)
                .bind(env)
                .bind(now_ms)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
    }
    sqlx::query(
        "INSERT INTO enrollment_tokens (hash, target_id, expires_ms)
         VALUES ($1, (SELECT id FROM targets WHERE name = $2), $3)",
    )
    .bind(token_hash)
    .bind(target)
    .bind(expires_ms)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    target_where(conn, "name = $1", target)
        .await?
        .ok_or_else(|| not_found("target", target))
}

pub(crate) async fn enroll(
    conn: &mut Connection,
    token_hash: &str,
    credential_hash: &str,
    now_ms: i64,
) -> StoreResult<Target> {
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT targets.name, enrollment_tokens.expires_ms, targets.enrolled_ms
         FROM enrollment_tokens JOIN targets ON targets.id = enrollment_tokens.target_id
         WHERE enrollment_tokens.hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let refused = |why: &str| {
        StoreError::Refused(format!(
            "this enrollment token {why}: ask for a new one with `ferry target enroll ENV NAME`"
        ))
    };
    let (name, expires_ms, enrolled_ms) =
        row.ok_or_else(|| refused("is unknown or was used already"))?;
    if expires_ms < now_ms {
        return Err(refused("has expired"));
    }
    if enrolled_ms.is_some() {
        return Err(refused("is for a target that is enrolled already"));
    }
    sqlx::query(
        "DELETE FROM enrollment_tokens WHERE target_id = (SELECT id FROM targets WHERE name = $1)",
    )
    .bind(&name)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    sqlx::query(
        // A new agent: what the previous one said of itself no longer holds.
        "UPDATE targets SET credential_hash = $1, enrolled_ms = $2, last_seen_ms = $3, \
         agent_version = NULL, agent_protocol = NULL, agent_disk_free = NULL, \
         agent_disk_total = NULL, agent_said_ms = NULL WHERE name = $4",
    )
    .bind(credential_hash)
    .bind(now_ms)
    .bind(now_ms)
    .bind(&name)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    target_where(conn, "name = $1", &name)
        .await?
        .ok_or_else(|| not_found("target", &name))
}

pub(crate) async fn touch(conn: &mut Connection, heard: &[(String, i64)]) -> StoreResult<()> {
    for (target, heard_ms) in heard {
        sqlx::query("UPDATE targets SET last_seen_ms = $1 WHERE name = $2")
            .bind(heard_ms)
            .bind(target)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

pub(crate) async fn record_agent_build(
    conn: &mut Connection,
    target: &str,
    build: &AgentBuild,
) -> StoreResult<()> {
    let bytes = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    sqlx::query(
        "UPDATE targets SET agent_version = $1, agent_protocol = $2, agent_disk_free = $3, \
         agent_disk_total = $4, agent_said_ms = $5 WHERE name = $6 AND removed_ms IS NULL",
    )
    .bind(&build.version)
    .bind(i64::from(build.protocol))
    .bind(build.disk.map(|d| bytes(d.free)))
    .bind(build.disk.map(|d| bytes(d.total)))
    .bind(build.said_ms)
    .bind(target)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn place(
    conn: &mut Connection,
    app: &str,
    env: &str,
    targets: &[String],
) -> StoreResult<()> {
    let app_id: i64 = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
        .bind(app)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found("application", app))?;
    for target in targets {
        match row_where(conn, "name = $1", target).await? {
            None => return Err(not_found("target", target)),
            Some(t) if t.removed_ms.is_some() => {
                return Err(StoreError::Refused(format!(
                    "target {target:?} was removed; enroll it again (`ferry target enroll {} {target}`) before placing applications on it",
                    t.env
                )))
            }
            Some(t) if t.env != env => {
                return Err(StoreError::Refused(format!(
                    "target {target:?} is in environment {:?}, not {env:?}",
                    t.env
                )))
            }
            Some(_) => {}
        }
    }
    sqlx::query(
        "DELETE FROM placements WHERE app_id = $1 AND target_id IN (SELECT id FROM targets WHERE env = $2)",
    )
    .bind(app_id)
    .bind(env)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    for target in targets {
        sqlx::query("INSERT INTO placements (app_id, target_id) VALUES ($1, (SELECT id FROM targets WHERE name = $2))")
            .bind(app_id)
            .bind(target)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

pub(crate) async fn placement(
    conn: &mut Connection,
    app: &str,
    env: &str,
) -> StoreResult<Vec<String>> {
    // (name, whether it is in service): a placement on removed targets only stays a
    // placement, so the application does not spread to every target of the environment.
    let placed: Vec<(String, bool)> = sqlx::query_as(
        "SELECT targets.name, targets.removed_ms IS NULL FROM placements
         JOIN targets ON targets.id = placements.target_id
         JOIN apps ON apps.id = placements.app_id
         WHERE apps.name = $1 AND targets.env = $2 ORDER BY targets.name",
    )
    .bind(app)
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    if !placed.is_empty() {
        return Ok(placed
            .into_iter()
            .filter_map(|(name, in_service)| in_service.then_some(name))
            .collect());
    }
    sqlx::query_scalar(
        "SELECT name FROM targets WHERE env = $1 AND enrolled_ms IS NOT NULL ORDER BY name",
    )
    .bind(env)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)
}

/// A row of [`target_apps`]' query.
#[derive(sqlx::FromRow)]
struct TargetAppRow {
    target: String,
    env: String,
    app: String,
    desired_version: Option<String>,
    desired_config: i64,
    deployment_id: Option<i64>,
    deployment_kind: Option<String>,
    deployment_version: Option<String>,
    deployment_config: Option<i64>,
    current_version: Option<String>,
    current_config: i64,
    state: String,
    detail: Option<String>,
    updated_ms: i64,
    stage_version: Option<String>,
    stage_config: Option<i64>,
    stage_deployment: Option<i64>,
    keep_releases: i64,
    run_as: Option<String>,
}

impl TryFrom<TargetAppRow> for TargetApp {
    type Error = StoreError;

    fn try_from(row: TargetAppRow) -> StoreResult<TargetApp> {
        let unreadable =
            |why: String| unreadable(format_args!("{} on {}", row.app, row.target), why);
        let unknown_word = |error: UnknownWord| unreadable(error.to_string());
        Ok(TargetApp {
            deployment_kind: row
                .deployment_kind
                .as_deref()
                .map(Kind::parse)
                .transpose()
                .map_err(unknown_word)?,
            state: TargetAppState::parse(&row.state).map_err(unknown_word)?,
            stage: match (row.stage_version, row.stage_deployment) {
                (Some(version), Some(id)) => {
                    let config = narrow("stage_config", row.stage_config.unwrap_or(0));
                    Some((Served::new(version, config.map_err(unreadable)?), id))
                }
                _ => None,
            },
            desired_config: narrow("desired_config", row.desired_config).map_err(unreadable)?,
            current_config: narrow("current_config", row.current_config).map_err(unreadable)?,
            deployment_config: narrow("deployment_config", row.deployment_config.unwrap_or(0))
                .map_err(unreadable)?,
            keep_releases: narrow("keep_releases", row.keep_releases).map_err(unreadable)?,
            run_as: crate::apps::read_run_as(row.run_as.as_deref()).map_err(unreadable)?,
            target: row.target,
            env: row.env,
            app: row.app,
            desired_version: row.desired_version,
            deployment_id: row.deployment_id,
            deployment_version: row.deployment_version,
            current_version: row.current_version,
            detail: row.detail,
            updated_ms: row.updated_ms,
        })
    }
}

pub(crate) async fn target_apps(
    conn: &mut Connection,
    target: Option<&str>,
) -> StoreResult<Vec<TargetApp>> {
    let rows: Vec<TargetAppRow> = sqlx::query_as(
        "SELECT targets.name AS target, targets.env, apps.name AS app, target_apps.desired_version,
                target_apps.desired_config,
                target_apps.deployment_id, deployments.kind AS deployment_kind,
                deployments.version AS deployment_version,
                deployments.config_revision AS deployment_config, target_apps.current_version,
                target_apps.current_config,
                target_apps.state, target_apps.detail, target_apps.updated_ms,
                staging.version AS stage_version, staging.config_revision AS stage_config,
                staging.id AS stage_deployment,
                apps.keep_releases, apps.run_as
         FROM target_apps
         JOIN targets ON targets.id = target_apps.target_id
         JOIN apps ON apps.id = target_apps.app_id
         LEFT JOIN deployments ON deployments.id = target_apps.deployment_id
         LEFT JOIN deployments AS staging ON staging.id = target_apps.stage_deployment
             AND staging.status IN ($2, $3)
         WHERE ($1 IS NULL OR targets.name = $1) AND targets.removed_ms IS NULL
         ORDER BY apps.name, targets.name",
    )
    .bind(target)
    .bind(Status::Running.as_str())
    .bind(Status::AwaitingApproval.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(TargetApp::try_from).collect()
}

pub(crate) async fn report(conn: &mut Connection, report: &TargetReport) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO target_apps (target_id, app_id, current_version, state, detail, updated_ms,
             current_config)
         VALUES ((SELECT id FROM targets WHERE name = $1), (SELECT id FROM apps WHERE name = $2), $3, $4, $5, $6, $7)
         ON CONFLICT (target_id, app_id) DO UPDATE SET
             current_version = excluded.current_version, state = excluded.state,
             detail = excluded.detail, updated_ms = excluded.updated_ms,
             current_config = excluded.current_config",
    )
    .bind(&report.target)
    .bind(&report.app)
    .bind(&report.current_version)
    .bind(report.state.as_str())
    .bind(&report.detail)
    .bind(report.at_ms)
    .bind(i64::try_from(report.current_config).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Sets what a target should run for an application.
pub(crate) async fn set_desired(
    conn: &mut Connection,
    change: &ferry_store::DesiredChange,
    now_ms: i64,
) -> StoreResult<()> {
    let query = if change.stage_only {
        // The staging deployment carries the configuration revision to stage with.
        "INSERT INTO target_apps (target_id, app_id, stage_version, stage_deployment, updated_ms)
         VALUES ((SELECT id FROM targets WHERE name = $1), (SELECT id FROM apps WHERE name = $2), $3, $4, $5)
         ON CONFLICT (target_id, app_id) DO UPDATE SET
             stage_version = excluded.stage_version, stage_deployment = excluded.stage_deployment"
    } else {
        "INSERT INTO target_apps (target_id, app_id, desired_version, deployment_id, updated_ms,
             desired_config)
         VALUES ((SELECT id FROM targets WHERE name = $1), (SELECT id FROM apps WHERE name = $2), $3, $4, $5, $6)
         ON CONFLICT (target_id, app_id) DO UPDATE SET
             desired_version = excluded.desired_version, deployment_id = excluded.deployment_id,
             desired_config = excluded.desired_config"
    };
    let mut query = sqlx::query(query)
        .bind(&change.target)
        .bind(&change.app)
        .bind(&change.version)
        .bind(change.deployment_id)
        .bind(now_ms);
    if !change.stage_only {
        query = query.bind(i64::try_from(change.config).unwrap_or(i64::MAX));
    }
    query.execute(&mut *conn).await.map_err(backend)?;
    Ok(())
}
