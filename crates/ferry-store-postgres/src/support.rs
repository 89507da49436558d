//! Production support: team rotations, routing rules, incidents, backlog items and backport
//! obligations.

use ferry_domain::backport::ObligationStatus;
use ferry_domain::incident::{IncidentStatus, Severity};
use ferry_domain::rotation::{Rotation, DEFAULT_ESCALATION_MS};
use ferry_domain::routing::RoutingRule;
use ferry_domain::support::{BacklogStatus, BackportMode, SupportPath};
use ferry_domain::vocabulary::UnknownWord;
use ferry_store::{
    BacklogItem, Backport, IncidentRecord, IncidentStep, StoreError, StoreResult, TeamSupport,
};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::{backend, narrow, not_found, unreadable};

async fn id_of(
    conn: &mut PgConnection,
    table: &str,
    kind: &'static str,
    name: &str,
) -> StoreResult<i64> {
    sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?
        .ok_or_else(|| not_found(kind, name))
}

async fn team_id(conn: &mut PgConnection, team: &str) -> StoreResult<i64> {
    id_of(conn, "teams", "team", team).await
}

async fn app_id(conn: &mut PgConnection, app: &str) -> StoreResult<i64> {
    id_of(conn, "apps", "application", app).await
}

/// A rotation as `team_support.rotation` stores it, written and read through this one shape
/// so that a document missing a field, or holding one ferry does not know, is unreadable
/// instead of a rotation with a zero shift.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRotation {
    members: Vec<String>,
    shift_ms: i64,
    start_ms: i64,
}

fn rotation_to_json(rotation: &Rotation) -> String {
    serde_json::to_string(&StoredRotation {
        members: rotation.members.clone(),
        shift_ms: rotation.shift_ms,
        start_ms: rotation.start_ms,
    })
    .expect("rotations serialize")
}

fn rotation_from_json(team: &str, text: &str) -> StoreResult<Rotation> {
    let stored: StoredRotation = serde_json::from_str(text)
        .map_err(|e| unreadable(format_args!("the rotation of team {team}"), e))?;
    Ok(Rotation {
        members: stored.members,
        shift_ms: stored.shift_ms,
        start_ms: stored.start_ms,
    })
}

pub(crate) async fn team_support(conn: &mut PgConnection, team: &str) -> StoreResult<TeamSupport> {
    let id = team_id(conn, team).await?;
    let row: Option<(Option<String>, i64)> =
        sqlx::query_as("SELECT rotation, escalate_after_ms FROM team_support WHERE team_id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    let (rotation, escalate_after_ms) = match row {
        Some((rotation, escalate_after_ms)) => (
            rotation
                .map(|text| rotation_from_json(team, &text))
                .transpose()?,
            escalate_after_ms,
        ),
        None => (None, DEFAULT_ESCALATION_MS),
    };
    Ok(TeamSupport {
        team: team.to_owned(),
        rotation,
        escalate_after_ms,
    })
}

pub(crate) async fn set_team_support(
    conn: &mut PgConnection,
    support: &TeamSupport,
) -> StoreResult<()> {
    let id = team_id(conn, &support.team).await?;
    sqlx::query(
        "INSERT INTO team_support (team_id, rotation, escalate_after_ms) VALUES ($1, $2, $3)
         ON CONFLICT (team_id) DO UPDATE SET rotation = excluded.rotation,
             escalate_after_ms = excluded.escalate_after_ms",
    )
    .bind(id)
    .bind(support.rotation.as_ref().map(rotation_to_json))
    .bind(support.escalate_after_ms)
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn routing_rules(conn: &mut PgConnection) -> StoreResult<Vec<RoutingRule>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT routing_rules.category, teams.name AS team
         FROM routing_rules JOIN teams ON teams.id = routing_rules.team_id
         ORDER BY routing_rules.category",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(rows
        .into_iter()
        .map(|(category, team)| RoutingRule { category, team })
        .collect())
}

pub(crate) async fn set_routing_rule(
    conn: &mut PgConnection,
    category: &str,
    team: Option<&str>,
) -> StoreResult<()> {
    match team {
        Some(team) => {
            let id = team_id(conn, team).await?;
            sqlx::query(
                "INSERT INTO routing_rules (category, team_id) VALUES ($1, $2)
                 ON CONFLICT (category) DO UPDATE SET team_id = excluded.team_id",
            )
            .bind(category)
            .bind(id)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        }
        None => {
            let removed = sqlx::query("DELETE FROM routing_rules WHERE category = $1")
                .bind(category)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            if removed.rows_affected() == 0 {
                return Err(not_found("routing rule for category", category));
            }
        }
    }
    Ok(())
}

const SELECT_INCIDENTS: &str = "SELECT incidents.*, apps.name AS app, teams.name AS team
     FROM incidents JOIN apps ON apps.id = incidents.app_id
     JOIN teams ON teams.id = incidents.team_id";

/// A step of an incident's history as `incidents.history` (a JSON array, oldest first)
/// stores it, written and read through this one shape so that a step missing a field, or
/// holding one ferry does not know, is unreadable instead of a step at time zero by nobody.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredStep {
    at_ms: i64,
    actor: String,
    what: String,
}

fn history_to_json(history: &[IncidentStep]) -> String {
    let steps: Vec<StoredStep> = history
        .iter()
        .map(|step| StoredStep {
            at_ms: step.at_ms,
            actor: step.actor.clone(),
            what: step.what.clone(),
        })
        .collect();
    serde_json::to_string(&steps).expect("incident histories serialize")
}

fn history_from_json(incident: i64, text: &str) -> StoreResult<Vec<IncidentStep>> {
    let steps: Vec<StoredStep> = serde_json::from_str(text).map_err(|e| {
        unreadable(
            format_args!("incident {incident}"),
            format_args!("history: {e}"),
        )
    })?;
    Ok(steps
        .into_iter()
        .map(|step| IncidentStep {
            at_ms: step.at_ms,
            actor: step.actor,
            what: step.what,
        })
        .collect())
}

/// A row of `SELECT_INCIDENTS`.
#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: i64,
    app: String,
    env: String,
    severity: String,
    title: String,
    category: Option<String>,
    description: Option<String>,
    status: String,
    path: String,
    team: String,
    reporter: String,
    assignee: Option<String>,
    escalation_level: i64,
    base_version: Option<String>,
    suggested_version: Option<String>,
    source: Option<String>,
    opened_ms: i64,
    acknowledged_ms: Option<i64>,
    acknowledged_by: Option<String>,
    resolved_ms: Option<i64>,
    resolved_by: Option<String>,
    history: String,
}

/// A stored word ferry does not know, in the row of `kind` `id`.
fn unknown_word(kind: &'static str, id: i64) -> impl Fn(UnknownWord) -> StoreError {
    move |error| unreadable(format_args!("{kind} {id}"), error)
}

impl TryFrom<IncidentRow> for IncidentRecord {
    type Error = StoreError;

    fn try_from(row: IncidentRow) -> StoreResult<IncidentRecord> {
        let unknown_word = unknown_word("incident", row.id);
        Ok(IncidentRecord {
            severity: Severity::parse(&row.severity).map_err(&unknown_word)?,
            status: IncidentStatus::parse(&row.status).map_err(&unknown_word)?,
            path: SupportPath::parse(&row.path).map_err(&unknown_word)?,
            history: history_from_json(row.id, &row.history)?,
            escalation_level: narrow("escalation_level", row.escalation_level)
                .map_err(|why| unreadable(format_args!("incident {}", row.id), why))?,
            id: row.id,
            app: row.app,
            env: row.env,
            title: row.title,
            category: row.category,
            description: row.description,
            team: row.team,
            reporter: row.reporter,
            assignee: row.assignee,
            base_version: row.base_version,
            suggested_version: row.suggested_version,
            source: row.source,
            opened_ms: row.opened_ms,
            acknowledged_ms: row.acknowledged_ms,
            acknowledged_by: row.acknowledged_by,
            resolved_ms: row.resolved_ms,
            resolved_by: row.resolved_by,
        })
    }
}

pub(crate) async fn insert_incident(
    conn: &mut PgConnection,
    incident: &IncidentRecord,
    backlog_team: &str,
) -> StoreResult<(IncidentRecord, Option<BacklogItem>)> {
    let app = app_id(conn, &incident.app).await?;
    let team = team_id(conn, &incident.team).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO incidents (app_id, env, severity, title, category, description, status, path,
             team_id, reporter, assignee, escalation_level, base_version, suggested_version,
             source, opened_ms, history)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
    )
    .bind(app)
    .bind(&incident.env)
    .bind(incident.severity.as_str())
    .bind(&incident.title)
    .bind(&incident.category)
    .bind(&incident.description)
    .bind(incident.status.as_str())
    .bind(incident.path.as_str())
    .bind(team)
    .bind(&incident.reporter)
    .bind(&incident.assignee)
    .bind(i64::from(incident.escalation_level))
    .bind(&incident.base_version)
    .bind(&incident.suggested_version)
    .bind(&incident.source)
    .bind(incident.opened_ms)
    .bind(history_to_json(&incident.history))
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            not_found("environment", &incident.env)
        }
        _ => backend(e),
    })?;
    let backlog = if incident.path == SupportPath::Backlog {
        let backlog_team_id = team_id(conn, backlog_team).await?;
        let item_id: i64 = sqlx::query_scalar(
            "INSERT INTO backlog_items (app_id, team_id, incident_id, title, status, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(app)
        .bind(backlog_team_id)
        .bind(id)
        .bind(&incident.title)
        .bind(BacklogStatus::Open.as_str())
        .bind(incident.opened_ms)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
        Some(BacklogItem {
            id: item_id,
            app: incident.app.clone(),
            team: backlog_team.to_owned(),
            incident: Some(id),
            title: incident.title.clone(),
            status: BacklogStatus::Open,
            closed_by: None,
            created_ms: incident.opened_ms,
            closed_ms: None,
        })
    } else {
        None
    };
    Ok((
        IncidentRecord {
            id,
            ..incident.clone()
        },
        backlog,
    ))
}

pub(crate) async fn incidents(
    conn: &mut PgConnection,
    app: Option<&str>,
    resolved: bool,
) -> StoreResult<Vec<IncidentRecord>> {
    let rows: Vec<IncidentRow> = sqlx::query_as(&format!(
        "{SELECT_INCIDENTS} WHERE ($1 IS NULL OR apps.name = $1)
             AND ($2 OR incidents.status != $3)
         ORDER BY incidents.id DESC"
    ))
    .bind(app)
    .bind(resolved)
    .bind(IncidentStatus::Resolved.as_str())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(IncidentRecord::try_from).collect()
}

pub(crate) async fn incident(
    conn: &mut PgConnection,
    id: i64,
) -> StoreResult<Option<IncidentRecord>> {
    let row: Option<IncidentRow> =
        sqlx::query_as(&format!("{SELECT_INCIDENTS} WHERE incidents.id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
    row.map(IncidentRecord::try_from).transpose()
}

pub(crate) async fn update_incident(
    conn: &mut PgConnection,
    incident: &IncidentRecord,
    read_status: IncidentStatus,
    read_level: u32,
) -> StoreResult<()> {
    let changed = sqlx::query(
        "UPDATE incidents SET status = $1, assignee = $2, escalation_level = $3,
             acknowledged_ms = $4, acknowledged_by = $5, resolved_ms = $6, resolved_by = $7,
             history = $8, base_version = $9, suggested_version = $10, source = $11
         WHERE id = $12 AND status = $13 AND escalation_level = $14",
    )
    .bind(incident.status.as_str())
    .bind(&incident.assignee)
    .bind(i64::from(incident.escalation_level))
    .bind(incident.acknowledged_ms)
    .bind(&incident.acknowledged_by)
    .bind(incident.resolved_ms)
    .bind(&incident.resolved_by)
    .bind(history_to_json(&incident.history))
    .bind(&incident.base_version)
    .bind(&incident.suggested_version)
    .bind(&incident.source)
    .bind(incident.id)
    .bind(read_status.as_str())
    .bind(i64::from(read_level))
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    if changed.rows_affected() == 0 {
        return Err(StoreError::Refused(format!(
            "incident {} changed while this request was handled; look at it again with `ferry incident show {}`",
            incident.id, incident.id
        )));
    }
    Ok(())
}

pub(crate) async fn backlog(
    conn: &mut PgConnection,
    app: Option<&str>,
) -> StoreResult<Vec<BacklogItem>> {
    let rows: Vec<BacklogRow> = sqlx::query_as(
        "SELECT backlog_items.*, apps.name AS app, teams.name AS team
         FROM backlog_items JOIN apps ON apps.id = backlog_items.app_id
         JOIN teams ON teams.id = backlog_items.team_id
         WHERE $1 IS NULL OR apps.name = $1 ORDER BY backlog_items.id DESC",
    )
    .bind(app)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter()
        .map(|row| {
            Ok(BacklogItem {
                status: BacklogStatus::parse(&row.status)
                    .map_err(unknown_word("backlog item", row.id))?,
                id: row.id,
                app: row.app,
                team: row.team,
                incident: row.incident_id,
                title: row.title,
                closed_by: row.closed_by,
                created_ms: row.created_ms,
                closed_ms: row.closed_ms,
            })
        })
        .collect()
}

/// A row of [`backlog`]'s query.
#[derive(sqlx::FromRow)]
struct BacklogRow {
    id: i64,
    app: String,
    team: String,
    incident_id: Option<i64>,
    title: String,
    status: String,
    closed_by: Option<String>,
    created_ms: i64,
    closed_ms: Option<i64>,
}

/// Closes open backlog items of `app` with the release `version`; refuses an item that is
/// not an open item of that application.
pub(crate) async fn close_backlog_items(
    conn: &mut PgConnection,
    app: &str,
    ids: &[i64],
    version: &str,
    now_ms: i64,
) -> StoreResult<()> {
    for id in ids {
        let closed = sqlx::query(
            "UPDATE backlog_items SET status = $1, closed_by = $2, closed_ms = $3
             WHERE id = $4 AND status = $5 AND app_id = (SELECT id FROM apps WHERE name = $6)",
        )
        .bind(BacklogStatus::Closed.as_str())
        .bind(version)
        .bind(now_ms)
        .bind(id)
        .bind(BacklogStatus::Open.as_str())
        .bind(app)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        if closed.rows_affected() == 0 {
            return Err(StoreError::Refused(format!(
                "backlog item {id} is not an open item of {app}; `ferry backlog list {app}` shows them"
            )));
        }
    }
    Ok(())
}

/// A row of [`backports`]' query.
#[derive(sqlx::FromRow)]
struct BackportRow {
    id: i64,
    app: String,
    hotfix_version: String,
    base_version: String,
    incident_id: Option<i64>,
    mode: String,
    status: String,
    closed_by: Option<String>,
    reason: Option<String>,
    opened_ms: i64,
    closed_ms: Option<i64>,
}

impl TryFrom<BackportRow> for Backport {
    type Error = StoreError;

    fn try_from(row: BackportRow) -> StoreResult<Backport> {
        let unknown_word = unknown_word("backport obligation", row.id);
        Ok(Backport {
            mode: BackportMode::parse(&row.mode).map_err(&unknown_word)?,
            status: ObligationStatus::parse(&row.status).map_err(&unknown_word)?,
            id: row.id,
            app: row.app,
            hotfix_version: row.hotfix_version,
            base_version: row.base_version,
            incident: row.incident_id,
            closed_by: row.closed_by,
            reason: row.reason,
            opened_ms: row.opened_ms,
            closed_ms: row.closed_ms,
        })
    }
}

pub(crate) async fn backports(
    conn: &mut PgConnection,
    app: Option<&str>,
) -> StoreResult<Vec<Backport>> {
    let rows: Vec<BackportRow> = sqlx::query_as(
        "SELECT backports.*, apps.name AS app FROM backports JOIN apps ON apps.id = backports.app_id
         WHERE $1 IS NULL OR apps.name = $1 ORDER BY backports.id DESC",
    )
    .bind(app)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(Backport::try_from).collect()
}

pub(crate) async fn insert_backport(
    conn: &mut PgConnection,
    backport: &Backport,
) -> StoreResult<Option<Backport>> {
    let app = app_id(conn, &backport.app).await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO backports (app_id, hotfix_version, base_version, incident_id, mode, status,
             opened_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (app_id, hotfix_version) DO NOTHING RETURNING id",
    )
    .bind(app)
    .bind(&backport.hotfix_version)
    .bind(&backport.base_version)
    .bind(backport.incident)
    .bind(backport.mode.as_str())
    .bind(ObligationStatus::Open.as_str())
    .bind(backport.opened_ms)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(id.map(|id| Backport {
        id,
        status: ObligationStatus::Open,
        ..backport.clone()
    }))
}

/// Closes an open obligation as `status` (done or waived); whether it was open (an
/// obligation closed meanwhile is left as it is).
pub(crate) async fn close_backport_if_open(
    conn: &mut PgConnection,
    id: i64,
    status: ObligationStatus,
    by: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> StoreResult<bool> {
    let closed = sqlx::query(
        "UPDATE backports SET status = $1, closed_by = $2, reason = $3, closed_ms = $4
         WHERE id = $5 AND status = $6",
    )
    .bind(status.as_str())
    .bind(by)
    .bind(reason)
    .bind(now_ms)
    .bind(id)
    .bind(ObligationStatus::Open.as_str())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(closed.rows_affected() == 1)
}

/// Closes an open obligation as `status` (done or waived); refuses one that is not open.
pub(crate) async fn close_backport(
    conn: &mut PgConnection,
    id: i64,
    status: ObligationStatus,
    by: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> StoreResult<()> {
    if !close_backport_if_open(conn, id, status, by, reason, now_ms).await? {
        return Err(StoreError::Refused(format!(
            "backport obligation {id} is not open; `ferry backport list` shows them"
        )));
    }
    Ok(())
}
