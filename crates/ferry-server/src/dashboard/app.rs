//! `/apps/{app}`: one application. What runs in each environment with the buttons to
//! promote, deploy and roll back there; its releases with where they came from and what the
//! regression guard says of each for production; its last deployments, backups,
//! configuration (secrets masked) and open incidents. Every part is read through the
//! services the API uses, as the viewer, each kind of data once.

mod actions;
mod diff;
mod sections;

pub use actions::{deploy, promote, restore, rollback};
pub use diff::page as diff_page;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_domain::guard::Undone;
use ferry_domain::pipeline::production;
use serde::Deserialize;

use super::page::{html_with_status, Frame, PageError, Section};
use super::session::Viewer;
use crate::services::app_backups;
use crate::services::apps::visible_app;
use crate::state::AppState;

/// How many of the application's deployments the page lists.
const DEPLOYMENTS_SHOWN: u32 = 20;

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage {
    frame: Frame,
    app: String,
    team: String,
    /// Why the last action was refused, or what it started.
    notice: Option<Notice>,
    environments: Vec<EnvRow>,
    /// Every release's version, newest first: what the forms choose from.
    versions: Vec<String>,
    releases: Vec<ReleaseRow>,
    /// The environment the regression guard protects (the pipeline's last).
    production: String,
    deployments: Vec<DeploymentRow>,
    /// By environment, in the pipeline's order; environments without any left out.
    backups: Vec<EnvBackups>,
    configs: Vec<ConfigCard>,
    incidents: Vec<IncidentRow>,
}

/// A line above the page: a refusal (with the status the API answers) or what was done.
struct Notice {
    refused: bool,
    message: String,
}

/// One environment of the pipeline, for this application.
struct EnvRow {
    name: String,
    /// `1.2.0`, or `1.2.0 with configuration 3`.
    served: Option<String>,
    /// The environment before it, to promote from.
    previous: Option<String>,
    /// The viewer may deploy there (the service decides each request anyway).
    may_deploy: bool,
    /// The question ferry.js asks before a form to a protected environment is sent.
    confirm: Option<String>,
}

/// One release.
struct ReleaseRow {
    version: String,
    created: String,
    created_by: String,
    /// Where its tree came from, in one line.
    source: String,
    notes: Option<String>,
    /// The release a hotfix fixes.
    hotfix_of: Option<String>,
    guard: GuardVerdict,
}

/// What the regression guard says of a release going to production.
enum GuardVerdict {
    /// It undoes no shipped hotfix.
    MayGo,
    /// The hotfixes it would undo.
    Undoes(Vec<Undone>),
    /// The guard could not judge (a release it compares with is gone): its message.
    Unknown(String),
}

/// One deployment of the application.
struct DeploymentRow {
    id: i64,
    status: String,
    kind: String,
    version: String,
    env: String,
    requested_by: String,
    created: String,
}

/// The backups of one environment, newest first.
struct EnvBackups {
    env: String,
    rows: Vec<BackupRow>,
}

/// One backup of the application's data.
struct BackupRow {
    id: i64,
    target: String,
    version: String,
    reason: String,
    created: String,
    files: u64,
    bytes: u64,
    /// The viewer may restore it.
    may_restore: bool,
    confirm: String,
}

/// The newest configuration revision of one environment, secret values left out.
struct ConfigCard {
    env: String,
    revision: u64,
    author: Option<String>,
    created: Option<String>,
    entries: Vec<ConfigLine>,
}

/// One key; `value` is `None` for a secret, which the page never shows.
struct ConfigLine {
    key: String,
    value: Option<String>,
}

/// One open incident.
struct IncidentRow {
    id: i64,
    env: String,
    severity: String,
    status: String,
    title: String,
    opened: String,
}

/// What a redirect after a restore says.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    /// The backup whose restore was asked.
    restored: Option<i64>,
    /// The agent task that restores it.
    task: Option<i64>,
}

/// The application page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(app): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let notice = match (done.restored, done.task) {
        (Some(backup), Some(task)) => Some(Notice {
            refused: false,
            message: format!(
                "Restoring backup {backup}: its target's agent does it as task {task}, after backing up the data it replaces"
            ),
        }),
        _ => None,
    };
    show(&state, &viewer, &app, StatusCode::OK, notice).await
}

/// Renders the page with `status`, and `notice` above it.
async fn show(
    state: &AppState,
    viewer: &Viewer,
    name: &str,
    status: StatusCode,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let caller = &viewer.caller;
    let app = visible_app(state, caller, name).await?;
    let (statuses, pipeline, releases, deployments, backups, incidents) = tokio::try_join!(
        async { Ok(state.status.visible(&*state.store, caller).await?) },
        async { Ok::<_, PageError>(state.store.list_environments().await?) },
        async { Ok(state.store.list_releases(&app.name).await?) },
        async {
            Ok(state
                .store
                .list_deployments(Some(&app.name), DEPLOYMENTS_SHOWN)
                .await?)
        },
        async { Ok(app_backups::list(state, caller, Some(&app.name), None).await?) },
        async { Ok(state.store.incidents(Some(&app.name), false).await?) },
    )?;
    let production = production(&pipeline)
        .map(|env| env.name.clone())
        .unwrap_or_default();
    let served = statuses
        .iter()
        .find(|(_, status)| status.app == app.name)
        .map(|(_, status)| status.clone());
    let guard = sections::guard_verdicts(state, &app, &production, &releases).await;
    let page = AppPage {
        frame: Frame::of(viewer, Section::Overview),
        notice,
        environments: sections::environments(caller, &app, &pipeline, served.as_deref()),
        versions: releases.iter().map(|r| r.version.clone()).collect(),
        releases: releases
            .into_iter()
            .zip(guard)
            .map(sections::release_row)
            .collect(),
        production,
        deployments: deployments.iter().map(sections::deployment_row).collect(),
        backups: sections::backups(caller, &app, &pipeline, &backups),
        configs: sections::configs(state, caller, &app, &pipeline).await?,
        incidents: sections::open_incidents(caller, &app, incidents),
        app: app.name,
        team: app.team,
    };
    html_with_status(status, &page)
}
