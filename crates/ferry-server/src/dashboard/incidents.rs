//! `/incidents`: the incidents board. The open incidents the viewer may see, worst first,
//! each with who answers for it, its support path and where its hotfix and backport stand;
//! Acknowledge and Resolve for those who may; and each visible team's on-call rotation.
//! The buttons post to the same service as the API, which decides again; a refusal is
//! shown on the board with the message the command line prints.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ferry_api::IncidentNote;
use ferry_domain::backport::ObligationStatus;
use ferry_domain::duration::format_duration;
use ferry_domain::freeze::format_utc;
use ferry_domain::incident::{IncidentStatus, Severity};
use ferry_domain::permission::Action;
use ferry_domain::rotation::MAX_ESCALATION_LEVEL;
use ferry_domain::support::SupportPath;
use ferry_store::{App, Backport, IncidentRecord};
use serde::Deserialize;

use super::incident;
use super::page::{html_with_status, Frame, PageError, Section};
use super::session::{Posted, Viewer};
use crate::auth::Caller;
use crate::services::incidents::{self, may_respond, visible_incidents, Change};
use crate::services::{routing, ServiceError, ServiceResult};
use crate::state::AppState;

/// The board's filters.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Only this application's incidents.
    #[serde(default)]
    app: String,
    /// Resolved incidents too.
    #[serde(default)]
    all: bool,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct IncidentsPage {
    frame: Frame,
    app: String,
    all: bool,
    incidents: Vec<IncidentRow>,
    rotations: Vec<RotationCard>,
    /// Why the last action was refused, as the command line says it.
    refused: Option<String>,
}

/// One incident on the board.
pub struct IncidentRow {
    pub id: i64,
    pub severity: Severity,
    pub app: String,
    pub env: String,
    pub title: String,
    /// The team it was routed to.
    pub team: String,
    /// Who answers for it; `None`: the team's leads.
    pub assignee: Option<String>,
    pub path: SupportPath,
    pub status: IncidentStatus,
    pub opened_ms: i64,
    /// "12m ago", and the time itself for its title.
    pub opened_ago: String,
    pub opened_at: String,
    /// "—", "next on call" or "team's leads".
    pub escalation: String,
    pub escalation_level: u32,
    /// On a hotfix path: "suggested hotfix 1.0.1 of 1.0.0" (`ferry hotfix start` makes it).
    pub hotfix: Option<String>,
    /// Where the fix of each of its shipped hotfixes stands in dev.
    pub backports: Vec<BackportState>,
    pub may_ack: bool,
    pub may_resolve: bool,
}

/// Where the fix of a hotfix that reached production stands in development.
pub struct BackportState {
    /// "1.0.1 not in dev yet", "1.0.1 in dev (release 1.1.0)", "1.0.1 waived".
    pub said: String,
    /// Whether it is still owed (shown as a warning).
    pub open: bool,
    /// How the fix reaches dev: "backport" or "merge".
    pub mode: String,
}

/// A team's on-call rotation.
struct RotationCard {
    team: String,
    /// Members in the order they serve, and whether each is on call now.
    members: Vec<(String, bool)>,
    /// "1w each, next hand-over 2026-12-12 09:00 UTC".
    shift: Option<String>,
    /// "15m".
    escalate_after: String,
}

/// The incidents board.
pub async fn board(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    show_board(&state, &viewer, filter, StatusCode::OK, None).await
}

async fn show_board(
    state: &AppState,
    viewer: &Viewer,
    filter: Filter,
    status: StatusCode,
    refused: Option<String>,
) -> Result<Response, PageError> {
    let caller = &viewer.caller;
    let app = Some(filter.app.trim()).filter(|a| !a.is_empty());
    let (found, backports, rotations) = tokio::try_join!(
        visible_incidents(state, caller, app, filter.all),
        // Obligations go with the incidents they came from, visible with them (as the
        // API's incident shows its backlog item).
        async { Ok::<_, ServiceError>(state.store.backports(app).await?) },
        rotations(state, caller),
    )?;
    let mut by_incident: HashMap<i64, Vec<&Backport>> = HashMap::new();
    for backport in &backports {
        if let Some(id) = backport.incident {
            by_incident.entry(id).or_default().push(backport);
        }
    }
    let now_ms = caller.now_ms();
    let mut incidents: Vec<IncidentRow> = found
        .iter()
        .map(|(incident, app)| {
            let owed = by_incident.get(&incident.id).map(Vec::as_slice);
            row(caller, incident, app, owed.unwrap_or_default(), now_ms)
        })
        .collect();
    // Worst first, then oldest; resolved ones (shown on request) after the rest.
    incidents.sort_by_key(|i| {
        let resolved = i.status == IncidentStatus::Resolved;
        (resolved, i.severity, i.opened_ms, i.id)
    });
    let page = IncidentsPage {
        frame: Frame::of(viewer, Section::Incidents),
        app: filter.app,
        all: filter.all,
        incidents,
        rotations,
        refused,
    };
    html_with_status(status, &page)
}

/// An incident as the board and its own page show it.
pub fn row(
    caller: &Caller,
    incident: &IncidentRecord,
    app: &App,
    backports: &[&Backport],
    now_ms: i64,
) -> IncidentRow {
    let responder = may_respond(caller, app, &incident.team);
    IncidentRow {
        id: incident.id,
        severity: incident.severity,
        app: incident.app.clone(),
        env: incident.env.clone(),
        title: incident.title.clone(),
        team: incident.team.clone(),
        assignee: incident.assignee.clone(),
        path: incident.path,
        status: incident.status,
        opened_ms: incident.opened_ms,
        opened_ago: ago(incident.opened_ms, now_ms),
        opened_at: format_utc(incident.opened_ms),
        escalation: escalation(incident.escalation_level).to_owned(),
        escalation_level: incident.escalation_level,
        hotfix: incident
            .suggested_version
            .as_ref()
            .map(|suggested| match &incident.base_version {
                Some(base) => format!("suggested hotfix {suggested} of {base}"),
                None => format!("suggested hotfix {suggested}"),
            }),
        backports: backports.iter().map(|b| backport_state(b)).collect(),
        may_ack: responder && incident.status == IncidentStatus::Open,
        may_resolve: responder && incident.status != IncidentStatus::Resolved,
    }
}

/// How long ago `at_ms` was at `now_ms`, as people write it: "12s ago", "3h5m ago".
pub fn ago(at_ms: i64, now_ms: i64) -> String {
    let seconds = (now_ms - at_ms).max(0) / 1000;
    format!(
        "{} ago",
        format_duration(Duration::from_secs(seconds as u64))
    )
}

/// Who an escalation level reached.
fn escalation(level: u32) -> &'static str {
    match level {
        0 => "—",
        level if level >= MAX_ESCALATION_LEVEL => "the team's leads",
        _ => "next on call",
    }
}

fn backport_state(backport: &Backport) -> BackportState {
    let version = &backport.hotfix_version;
    let said = match backport.status {
        ObligationStatus::Open => format!("{version} not in dev yet"),
        ObligationStatus::Done => match &backport.closed_by {
            Some(by) => format!("{version} in dev ({by})"),
            None => format!("{version} in dev"),
        },
        ObligationStatus::Waived => format!("{version} waived"),
    };
    BackportState {
        said,
        open: backport.status == ObligationStatus::Open,
        mode: backport.mode.to_string(),
    }
}

/// The rotation of every team the viewer may see, through the API's service.
async fn rotations(state: &AppState, caller: &Caller) -> ServiceResult<Vec<RotationCard>> {
    let teams = state.store.list_teams().await?;
    let now_ms = caller.now_ms();
    let mut cards = Vec::new();
    for team in teams
        .iter()
        .filter(|t| caller.may(Action::ViewTeam { team: &t.name }))
    {
        let support = routing::team_support(state, caller, &team.name).await?;
        let rotation = support.rotation.as_ref();
        let on_call = rotation.and_then(|r| r.on_call_index(now_ms));
        cards.push(RotationCard {
            team: support.team.clone(),
            members: rotation
                .map(|r| {
                    r.members
                        .iter()
                        .enumerate()
                        .map(|(at, member)| (member.clone(), Some(at) == on_call))
                        .collect()
                })
                .unwrap_or_default(),
            shift: rotation.map(|r| {
                let each = format_duration(Duration::from_millis(r.shift_ms.max(0) as u64));
                match r.hand_over_ms(now_ms) {
                    Some(at) => format!("{each} each, next hand-over {}", format_utc(at)),
                    None => format!("{each} each"),
                }
            }),
            escalate_after: format_duration(Duration::from_millis(
                support.escalate_after_ms.max(0) as u64,
            )),
        });
    }
    Ok(cards)
}

/// The fields of the Acknowledge and Resolve forms.
#[derive(Debug, Deserialize)]
pub struct ChangeForm {
    /// A note for the incident's history.
    #[serde(default)]
    note: String,
    /// The page the form was on, to go back to.
    #[serde(default)]
    back: Back,
}

/// The page an Acknowledge or Resolve form was posted from.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Back {
    #[default]
    Board,
    Incident,
}

/// What the buttons do.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Ack,
    Resolve,
}

/// `POST /incidents/{id}/{ack|resolve}`: the buttons, through the API's service. Back to
/// the page the form was on once done (a new `GET`), or that page again with why not.
pub async fn act(
    State(state): State<AppState>,
    Path((id, act)): Path<(i64, Act)>,
    posted: Posted<ChangeForm>,
) -> Result<Response, PageError> {
    let viewer = &posted.viewer;
    let note = IncidentNote {
        note: Some(posted.form.note.trim().to_owned()).filter(|n| !n.is_empty()),
    };
    let change = match act {
        Act::Ack => Change::Ack,
        Act::Resolve => Change::Resolve,
    };
    let done = incidents::change(&state, &viewer.caller, id, &note, change).await;
    let back = posted.form.back;
    match done {
        Ok(_) => Ok(Redirect::to(&match back {
            Back::Board => "/incidents".to_owned(),
            Back::Incident => format!("/incidents/{id}"),
        })
        .into_response()),
        Err(refused) => {
            let refused = PageError::from(refused);
            if refused.status == StatusCode::NOT_FOUND {
                return Err(refused);
            }
            let (status, why) = (refused.status, Some(refused.message));
            match back {
                Back::Board => show_board(&state, viewer, Filter::default(), status, why).await,
                Back::Incident => incident::show(&state, viewer, id, status, why).await,
            }
        }
    }
}
