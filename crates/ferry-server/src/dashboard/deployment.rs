//! `/deployments/{id}`: one deployment, each target's step updating live, the logs of its
//! hooks and health checks, and Approve, Reject and Cancel for those who may. The buttons
//! post to the same services as the API, which decide again; a refusal is shown on the page
//! with the message the command line prints.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use ferry_api::{CancelDeployment, Deployment, DeploymentLogs, DeploymentStatus, Review};
use ferry_domain::approval::APPROVE_LEVEL;
use ferry_domain::permission::Level;
use serde::Deserialize;

use super::live;
use super::page::{html_with_status, Frame, PageError, Section};
use super::session::{Posted, Viewer};
use crate::services::deployments::{self, visible_deployment};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "deployment.html")]
struct DeploymentPage {
    frame: Frame,
    deployment: Deployment,
    /// The part that updates live, rendered.
    live: String,
    may_approve: bool,
    may_reject: bool,
    may_cancel: bool,
    /// Why the last action was refused, as the command line says it.
    refused: Option<String>,
}

/// What changes while a deployment runs: the same for everyone who may see it, so one
/// rendering serves every browser watching.
#[derive(Template)]
#[template(path = "deployment_live.html")]
pub struct LiveDeployment {
    pub deployment: Deployment,
    pub logs: DeploymentLogs,
}

impl LiveDeployment {
    /// Whether no target logged a step yet.
    fn nothing_logged(&self) -> bool {
        self.logs.targets.iter().all(|t| t.steps.is_empty())
    }
}

/// The deployment page.
pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, PageError> {
    show(&state, &viewer, id, StatusCode::OK, None).await
}

async fn show(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    status: StatusCode,
    refused: Option<String>,
) -> Result<Response, PageError> {
    let (record, app) = visible_deployment(state, &viewer.caller, id).await?;
    let shown = live::read(state, record).await?;
    let live = live::render(&shown)?;
    let deployment = shown.deployment;
    let me = viewer.caller.user.name.as_str();
    let level = viewer.caller.level_on(&app, &deployment.env);
    let awaiting = deployment.status == DeploymentStatus::AwaitingApproval;
    let active = awaiting || deployment.status == DeploymentStatus::Running;
    let approved_already = deployment
        .approvals
        .iter()
        .flatten()
        .any(|a| a.approver == me);
    let self_approval = deployment.awaits.as_ref().is_some_and(|a| a.self_approval);
    let page = DeploymentPage {
        frame: Frame::of(viewer, Section::Overview),
        may_approve: awaiting
            && level >= APPROVE_LEVEL
            && !approved_already
            && (self_approval || deployment.requested_by != me),
        may_reject: awaiting && (level >= APPROVE_LEVEL || deployment.requested_by == me),
        may_cancel: active && level >= Level::Deploy,
        live: live.html,
        deployment,
        refused,
    };
    html_with_status(status, &page)
}

/// The review forms' fields.
#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    reason: String,
}

impl ReviewForm {
    fn reason(&self) -> Option<String> {
        Some(self.reason.trim().to_owned()).filter(|r| !r.is_empty())
    }
}

/// What the page's buttons do.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    Approve,
    /// Reject, or withdraw one's own.
    Reject,
    Cancel,
}

/// `POST /deployments/{id}/{approve|reject|cancel}`, from the page's buttons.
pub async fn act(
    State(state): State<AppState>,
    Path((id, act)): Path<(i64, Act)>,
    posted: Posted<ReviewForm>,
) -> Result<Response, PageError> {
    let (caller, reason) = (&posted.viewer.caller, posted.form.reason());
    let review = || Review {
        reason: reason.clone(),
        version: None,
    };
    let done = match act {
        Act::Approve => deployments::approve(&state, caller, id, review()).await,
        Act::Reject => deployments::reject(&state, caller, id, review()).await,
        Act::Cancel => {
            let request = CancelDeployment {
                reason: reason.clone(),
            };
            deployments::cancel(&state, caller, id, request).await
        }
    };
    after(&state, &posted.viewer, id, done.map(|_| ())).await
}

/// Back to the deployment's page once done (a new `GET`, so reloading it repeats nothing),
/// or the page again with why not.
async fn after(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    done: crate::services::ServiceResult<()>,
) -> Result<Response, PageError> {
    match done {
        Ok(()) => Ok(Redirect::to(&format!("/deployments/{id}")).into_response()),
        Err(refused) => {
            let refused = PageError::from(refused);
            if refused.status == StatusCode::NOT_FOUND {
                return Err(refused);
            }
            show(state, viewer, id, refused.status, Some(refused.message)).await
        }
    }
}
