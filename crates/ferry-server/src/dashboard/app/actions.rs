//! The application page's buttons: promote, deploy, roll back and restore a backup. Each
//! posts to the service the API uses, which decides (permission, lifecycle, freezes,
//! approvals, the regression guard); a refusal shows the page again with the service's
//! message and status, a deployment started leads to its own page.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_api::{CreateDeployment, CreatePromotion, CreateRollback, RestoreBackup};
use ferry_store::DeploymentRecord;
use serde::Deserialize;

use super::{show, Notice};
use crate::dashboard::page::PageError;
use crate::dashboard::session::{NoFields, Posted, Viewer};
use crate::services::{app_backups, deployments, ServiceResult};
use crate::state::AppState;

/// The Promote form: from one environment to the next.
#[derive(Debug, Deserialize)]
pub struct PromoteForm {
    from: String,
    to: String,
}

/// The Deploy form: a release to an environment.
#[derive(Debug, Deserialize)]
pub struct DeployForm {
    env: String,
    version: String,
}

/// The Roll back form: an environment, back to what ran there before.
#[derive(Debug, Deserialize)]
pub struct RollbackForm {
    env: String,
}

/// `POST /apps/{app}/promote`.
pub async fn promote(
    State(state): State<AppState>,
    Path(app): Path<String>,
    posted: Posted<PromoteForm>,
) -> Result<Response, PageError> {
    let request = CreatePromotion {
        from: posted.form.from,
        to: posted.form.to,
        strategy: None,
        reason: None,
        allow_downgrade: false,
        break_glass: false,
        override_guard: false,
        skip_offline: false,
        skip_backup: None,
    };
    let done = deployments::promote(&state, &posted.viewer.caller, &app, request).await;
    started(&state, &posted.viewer, &app, done).await
}

/// `POST /apps/{app}/deploy`.
pub async fn deploy(
    State(state): State<AppState>,
    Path(app): Path<String>,
    posted: Posted<DeployForm>,
) -> Result<Response, PageError> {
    let request = CreateDeployment {
        version: posted.form.version,
        env: posted.form.env,
        ..CreateDeployment::default()
    };
    let done = deployments::deploy(&state, &posted.viewer.caller, &app, request).await;
    started(&state, &posted.viewer, &app, done).await
}

/// `POST /apps/{app}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    Path(app): Path<String>,
    posted: Posted<RollbackForm>,
) -> Result<Response, PageError> {
    let request = CreateRollback {
        env: posted.form.env,
        to: None,
        reason: None,
        break_glass: false,
        override_guard: false,
        skip_offline: false,
    };
    let done = deployments::rollback(&state, &posted.viewer.caller, &app, request).await;
    started(&state, &posted.viewer, &app, done).await
}

/// `POST /apps/{app}/backups/{id}/restore`: on the target the backup was taken on.
pub async fn restore(
    State(state): State<AppState>,
    Path((app, id)): Path<(String, i64)>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let request = RestoreBackup {
        target: None,
        path: None,
    };
    match app_backups::restore(&state, &posted.viewer.caller, id, request).await {
        Ok(task) => Ok(Redirect::to(&format!(
            "/apps/{}?restored={id}&task={}#backups",
            task.app, task.id
        ))
        .into_response()),
        Err(refused) => again(&state, &posted.viewer, &app, refused.into()).await,
    }
}

/// To the new deployment's page, or the application page again with why not.
async fn started(
    state: &AppState,
    viewer: &Viewer,
    app: &str,
    done: ServiceResult<DeploymentRecord>,
) -> Result<Response, PageError> {
    match done {
        Ok(deployment) => {
            Ok(Redirect::to(&format!("/deployments/{}", deployment.id)).into_response())
        }
        Err(refused) => again(state, viewer, app, refused.into()).await,
    }
}

/// The application page again, answered with the refusal's status and its message on top;
/// an application the viewer cannot see stays not found.
async fn again(
    state: &AppState,
    viewer: &Viewer,
    app: &str,
    refused: PageError,
) -> Result<Response, PageError> {
    let notice = Notice {
        refused: true,
        message: refused.message,
    };
    show(state, viewer, app, refused.status, Some(notice)).await
}
