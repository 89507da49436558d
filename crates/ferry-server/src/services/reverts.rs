//! Revert: the hand edits on a target undone (`ferry drift revert TARGET APP`). A person
//! asks (deploy level on the application in the target's environment; audited
//! `drift.revert`); the target's agent keeps what the drifted paths hold as a backup of the
//! application (reason `drift_revert`), then gives the release back its exact content, as a
//! rollback to a changed release does, and checks again. Nothing is lost: what was edited
//! is in the backup, and `ferry drift capture` was the way to keep it as a release.
//!
//! Like a capture, a revert asks for no approval and passes freeze windows: it puts back
//! content that went through them already. It is refused while a deployment of the
//! application to the environment is under way.

use ferry_api::{RevertDrift, Task, TaskWork};
use ferry_domain::audit_event::{AuditAction, DriftRevert};
use ferry_domain::permission::{Action, Level};

use super::apps::visible_app;
use super::captures::{check_no_deployment_under_way, running_release};
use super::targets::in_service;
use super::ServiceResult;
use crate::auth::Caller;
use crate::state::AppState;

/// Asks the agent of `request.target` to revert `request.app` (an agent task).
pub async fn request(
    state: &AppState,
    caller: &Caller,
    request: RevertDrift,
) -> ServiceResult<Task> {
    let target = in_service(state, caller, &request.target).await?;
    let app = visible_app(state, caller, &request.app).await?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &target.env,
        level: Level::Deploy,
    })?;
    let version = running_release(state, &target, &app.name).await?;
    check_no_deployment_under_way(state, &app.name, &target.env).await?;
    let audit = AuditAction::DriftRevert(DriftRevert {
        env: target.env.clone(),
        task: 0,
        version: version.clone(),
    })
    .record(
        state.clock.now_ms(),
        &caller.user.name,
        format!("target/{}", target.name),
        Some(&app.name),
    );
    let work = TaskWork::RevertDrift { version };
    super::tasks::request(state, caller, &target, &app.name, work, audit).await
}
