//! `/incidents/{id}`: one incident, as `ferry incident show` tells it: what is wrong, who
//! answers for it, its support path, its history and what followed from it, with the
//! board's Acknowledge and Resolve buttons.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_domain::freeze::format_utc;
use ferry_store::{Backport, IncidentStep};

use super::incidents::{ago, row, IncidentRow};
use super::page::{html_with_status, Frame, PageError, Section};
use super::session::Viewer;
use crate::services::incidents::visible_incident;
use crate::services::{timeline, ServiceError};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "incident.html")]
struct IncidentPage {
    frame: Frame,
    incident: IncidentRow,
    description: Option<String>,
    category: Option<String>,
    reporter: String,
    /// "acknowledged by amy at 2026-12-05 10:20 UTC".
    acknowledged: Option<String>,
    resolved: Option<String>,
    /// Its backlog item: its number and what closed it.
    backlog_item: Option<(i64, Option<String>)>,
    /// Its steps and what followed from it, oldest first: (when, who, what).
    history: Vec<(String, String, String)>,
    /// Why the last action was refused, as the command line says it.
    refused: Option<String>,
}

/// The incident's page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    show(&state, &viewer, id, StatusCode::OK, None).await
}

/// The incident's page with `status`, and why the last action was refused if it was.
pub async fn show(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    refused: Option<String>,
) -> Result<Response, PageError> {
    let caller = &viewer.caller;
    let (incident, app) = visible_incident(state, caller, id).await?;
    let (steps, backlog, backports) = tokio::try_join!(
        timeline::timeline(state, &incident),
        async { Ok::<_, ServiceError>(state.store.backlog(Some(&incident.app)).await?) },
        async { Ok::<_, ServiceError>(state.store.backports(Some(&incident.app)).await?) },
    )?;
    let owed: Vec<&Backport> = backports
        .iter()
        .filter(|b| b.incident == Some(id))
        .collect();
    let now_ms = caller.now_ms();
    let when = |by: &Option<String>, at: Option<i64>| match (by, at) {
        (Some(by), Some(at)) => Some(format!("{by}, {}", ago(at, now_ms))),
        _ => None,
    };
    let page = IncidentPage {
        frame: Frame::of(viewer, Section::Incidents),
        incident: row(caller, &incident, &app, &owed, now_ms),
        description: incident.description.clone(),
        category: incident.category.clone(),
        reporter: incident.reporter.clone(),
        acknowledged: when(&incident.acknowledged_by, incident.acknowledged_ms),
        resolved: when(&incident.resolved_by, incident.resolved_ms),
        backlog_item: backlog
            .into_iter()
            .find(|b| b.incident == Some(id))
            .map(|b| (b.id, b.closed_by)),
        history: steps
            .into_iter()
            .map(|IncidentStep { at_ms, actor, what }| (format_utc(at_ms), actor, what))
            .collect(),
        refused,
    };
    html_with_status(status, &page)
}
