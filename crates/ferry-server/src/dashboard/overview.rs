//! `/`: what runs where. A row per application the viewer may see, a column per
//! environment; each cell the release live there, its configuration revision, its targets'
//! health and drift, and what waits (an approval, a deployment under way).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use ferry_api::{AppStatus, EnvStatus};
use ferry_domain::deployment::{Status, TargetAppState};
use ferry_domain::incident::Severity;
use ferry_domain::liveness::Health;
use ferry_store::DeploymentRecord;
use serde::Deserialize;

use super::page::{html, Frame, PageError, Section};
use super::session::Viewer;
use crate::state::AppState;

/// The overview's filters.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Only this team's applications.
    #[serde(default)]
    team: String,
    /// Only applications whose name contains this.
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    frame: Frame,
    environments: Vec<String>,
    teams: Vec<String>,
    team: String,
    q: String,
    apps: Vec<AppRow>,
    /// Applications the viewer may see in all (before the filters).
    visible: usize,
}

/// One application across the pipeline.
pub struct AppRow {
    name: String,
    team: String,
    cells: Vec<Cell>,
    /// Open incidents by severity, worst first: (severity, how many).
    incidents: Vec<(Severity, usize)>,
    /// Hotfixes live in production that dev does not have yet.
    backports: Vec<String>,
}

/// One application in one environment.
pub struct Cell {
    env: String,
    /// The release live there, with its configuration revision when it has one.
    served: Option<String>,
    /// When its targets do not all serve it: each target's own.
    targets: Vec<TargetCell>,
    health: CellHealth,
    /// Paths changed by hand on its targets, in all.
    drifted_paths: u64,
    /// A deployment awaiting approval or under way.
    waiting: Option<Waiting>,
}

/// A target serving something else than its environment's release.
pub struct TargetCell {
    name: String,
    served: String,
}

/// How an application's targets in one environment look, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CellHealth {
    Failed,
    Offline,
    Deploying,
    Healthy,
    /// No target runs the application there.
    Empty,
}

impl CellHealth {
    /// Its word, shown and used as the badge's class.
    pub fn word(&self) -> &'static str {
        match self {
            CellHealth::Failed => "failed",
            CellHealth::Offline => "offline",
            CellHealth::Deploying => "deploying",
            CellHealth::Healthy => "healthy",
            CellHealth::Empty => "",
        }
    }
}

/// A deployment that is not finished.
pub struct Waiting {
    id: i64,
    /// "awaiting approval of 1.2.0" or "deploying 1.2.0: 1 of 2 targets".
    said: String,
    awaiting: bool,
}

/// The overview page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
) -> Result<Response, PageError> {
    html(&overview(&state, &viewer, filter).await?)
}

/// Builds the overview: the status document (kept between changes, shared by every viewer)
/// and one read each of targets, unfinished deployments and open incidents.
pub async fn overview(
    state: &AppState,
    viewer: &Viewer,
    filter: Filter,
) -> Result<OverviewPage, PageError> {
    let caller = &viewer.caller;
    let (visible, pipeline, targets, active, incidents) = tokio::try_join!(
        async { Ok(state.status.visible(&*state.store, caller).await?) },
        async { Ok::<_, PageError>(state.store.list_environments().await?) },
        async { Ok(state.store.list_targets().await?) },
        async { Ok(state.store.active_deployments().await?) },
        async { Ok(state.store.incidents(None, false).await?) },
    )?;
    let now_ms = state.clock.now_ms();
    let health: HashMap<&str, Health> = targets
        .iter()
        .map(|t| {
            let health = state.liveness.health(t.enrolled_ms, t.last_seen_ms, now_ms);
            (t.name.as_str(), health)
        })
        .collect();
    let mut waiting: HashMap<(&str, &str), &DeploymentRecord> = HashMap::new();
    for deployment in &active {
        waiting.insert((&deployment.app, &deployment.env), deployment);
    }
    let mut open: HashMap<&str, HashMap<Severity, usize>> = HashMap::new();
    for incident in &incidents {
        *open
            .entry(&incident.app)
            .or_default()
            .entry(incident.severity)
            .or_default() += 1;
    }
    let mut teams: Vec<String> = visible.iter().map(|(team, _)| team.clone()).collect();
    teams.sort();
    teams.dedup();
    let query = filter.q.trim().to_lowercase();
    let apps = visible
        .iter()
        .filter(|(team, _)| filter.team.is_empty() || *team == filter.team)
        .filter(|(_, status)| query.is_empty() || status.app.to_lowercase().contains(&query))
        .map(|(team, status)| {
            let mut incidents: Vec<(Severity, usize)> = open
                .get(status.app.as_str())
                .map(|by| by.iter().map(|(s, n)| (*s, *n)).collect())
                .unwrap_or_default();
            incidents.sort();
            AppRow {
                name: status.app.clone(),
                team: team.clone(),
                cells: cells(status, &health, &waiting),
                incidents,
                backports: status
                    .backports
                    .iter()
                    .map(|b| b.hotfix_version.clone())
                    .collect(),
            }
        })
        .collect();
    Ok(OverviewPage {
        frame: Frame::of(viewer, Section::Overview),
        environments: pipeline.into_iter().map(|e| e.name).collect(),
        teams,
        team: filter.team,
        q: filter.q,
        apps,
        visible: visible.len(),
    })
}

fn cells(
    status: &AppStatus,
    health: &HashMap<&str, Health>,
    waiting: &HashMap<(&str, &str), &DeploymentRecord>,
) -> Vec<Cell> {
    status
        .environments
        .iter()
        .map(|env| Cell {
            env: env.env.clone(),
            served: env.version.as_ref().map(|v| served(v, env.config)),
            targets: differing_targets(env),
            health: cell_health(env, health),
            drifted_paths: env
                .targets
                .iter()
                .filter_map(|t| t.drift.as_ref())
                .map(|d| d.paths)
                .sum(),
            waiting: waiting
                .get(&(status.app.as_str(), env.env.as_str()))
                .map(|d| waiting_for(d)),
        })
        .collect()
}

/// `1.2.0`, or `1.2.0 @3` with configuration revision 3.
pub fn served(version: &str, config: u64) -> String {
    if config == 0 {
        version.to_owned()
    } else {
        format!("{version} @{config}")
    }
}

/// Each target's release, when they do not all serve the environment's.
fn differing_targets(env: &EnvStatus) -> Vec<TargetCell> {
    let expected = env.version.as_ref().map(|v| served(v, env.config));
    let of = |t: &ferry_api::TargetStatus| t.version.as_ref().map(|v| served(v, t.config));
    if env.targets.iter().all(|t| of(t) == expected) {
        return Vec::new();
    }
    env.targets
        .iter()
        .map(|t| TargetCell {
            name: t.target.clone(),
            served: of(t).unwrap_or_else(|| "nothing".to_owned()),
        })
        .collect()
}

/// The worst of an environment's targets that run the application or were asked to.
fn cell_health(env: &EnvStatus, health: &HashMap<&str, Health>) -> CellHealth {
    env.targets
        .iter()
        .filter(|t| t.version.is_some() || t.state != TargetAppState::Unknown)
        .map(|t| match (health.get(t.target.as_str()), t.state) {
            (_, TargetAppState::Failed | TargetAppState::RolledBack) => CellHealth::Failed,
            (Some(Health::Offline | Health::NotEnrolled) | None, _) => CellHealth::Offline,
            (_, TargetAppState::Deploying) => CellHealth::Deploying,
            _ => CellHealth::Healthy,
        })
        .min()
        .unwrap_or(CellHealth::Empty)
}

fn waiting_for(deployment: &DeploymentRecord) -> Waiting {
    let awaiting = deployment.status() == Status::AwaitingApproval;
    let said = if awaiting {
        format!("awaiting approval of {}", deployment.version)
    } else {
        let steps = &deployment.state.steps;
        let done = steps.iter().filter(|s| s.state.is_final()).count();
        format!(
            "deploying {}: {done} of {} targets",
            deployment.version,
            steps.len()
        )
    };
    Waiting {
        id: deployment.id,
        said,
        awaiting,
    }
}
