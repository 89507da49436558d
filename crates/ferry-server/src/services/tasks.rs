//! Agent tasks: work asked of one target's agent for one application now (check for drift,
//! and what later operations add), carried to the agent in its long-poll answer and
//! reported back once. The service that starts a task decides who may, and audits it
//! with the request; this one stores it, wakes the agent, and keeps what it reports.

use ferry_api::{AgentTask, Task, TaskOutcome, TaskReport, TaskWork};
use ferry_domain::audit::AuditRecord;
use ferry_domain::liveness::Health;
use ferry_domain::permission::Action;
use ferry_domain::step_log::bounded_label;
use ferry_domain::task::{TaskState, ANSWER_WITHIN_MS};
use ferry_store::{NewTask, StoreError, Target, TaskRecord};

use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;
use crate::views::rfc3339;

/// The longest message an agent's report keeps: a sentence or a hook's last words.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Refuses work for a target whose agent is offline: it could not do it now, and a task
/// that waits an hour for an agent that comes back is a surprise, not a help.
pub fn require_online(state: &AppState, target: &Target) -> ServiceResult<()> {
    let now = state.clock.now_ms();
    match state
        .liveness
        .health(target.enrolled_ms, target.last_seen_ms, now)
    {
        Health::Online => Ok(()),
        _ => Err(ServiceError::policy(
            "offline",
            format!(
                "target {} is offline ({}): its agent cannot do this now; start it again (`ferry target list` shows every target)",
                target.name,
                state.liveness.last_seen(target.last_seen_ms, now)
            ),
        )),
    }
}

/// Stores a task of `work` for `target`'s agent about `app`, with `audit` (whose details
/// name the task as `"task": 0`, set to its number when stored), and wakes the agent.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    app: &str,
    work: TaskWork,
    audit: AuditRecord,
) -> ServiceResult<Task> {
    require_online(state, target)?;
    let task = state
        .store
        .request_task(
            NewTask {
                target: target.name.clone(),
                app: app.to_owned(),
                work: serde_json::to_string(&work).expect("a task's work serializes"),
                requested_by: caller.user.name.clone(),
                requested_ms: audit.at_ms,
            },
            audit,
        )
        .await?;
    state.wakeups.targets_changed(vec![target.name.clone()]);
    view(state, task)
}

/// The pending tasks of `target`, for its agent, oldest first. A task whose work this
/// server cannot read (a newer server stored it) is left for a server that can.
pub async fn pending(state: &AppState, target: &Target) -> ServiceResult<Vec<AgentTask>> {
    let since = state.clock.now_ms().saturating_sub(ANSWER_WITHIN_MS);
    Ok(state
        .store
        .pending_tasks(&target.name, since)
        .await?
        .into_iter()
        .filter_map(|task| {
            let work = serde_json::from_str(&task.work).ok()?;
            Some(AgentTask {
                id: task.id,
                app: task.app,
                work,
            })
        })
        .collect())
}

/// Keeps how `target`'s agent says task `id` went, and wakes whoever waits on it.
pub async fn finish(
    state: &AppState,
    target: &Target,
    id: i64,
    report: TaskReport,
) -> ServiceResult<Task> {
    let task = state
        .store
        .finish_task(ferry_store::TaskOutcome {
            id,
            target: target.name.clone(),
            state: match report.outcome {
                TaskOutcome::Succeeded => TaskState::Succeeded,
                TaskOutcome::Failed => TaskState::Failed,
            },
            message: bounded_label(&report.message, MAX_MESSAGE_BYTES),
            detail: report.detail.map(|detail| detail.to_string()),
            finished_ms: state.clock.now_ms(),
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound { .. } => {
                ServiceError::not_found(format!("target {} has no task {id}", target.name))
            }
            other => other.into(),
        })?;
    state.wakeups.targets_changed(vec![target.name.clone()]);
    view(state, task)
}

/// Task `id`, when `caller` may see its application; any other looks missing.
pub async fn show(state: &AppState, caller: &Caller, id: i64) -> ServiceResult<Task> {
    let missing = || ServiceError::not_found(format!("no task {id}"));
    let task = state.store.task(id).await?.ok_or_else(missing)?;
    let app = state.store.app(&task.app).await?.ok_or_else(missing)?;
    if !caller.may(Action::ViewApp {
        team: &app.team,
        app: &app.name,
    }) {
        return Err(missing());
    }
    view(state, task)
}

/// A stored task as people see it, expired when its time is up.
fn view(state: &AppState, task: TaskRecord) -> ServiceResult<Task> {
    let unreadable = |what: &str, e: serde_json::Error| {
        ServiceError::internal(format!("task {}: its {what} is unreadable: {e}", task.id))
    };
    Ok(Task {
        id: task.id,
        work: serde_json::from_str(&task.work).map_err(|e| unreadable("work", e))?,
        detail: task
            .detail
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| unreadable("detail", e))?,
        state: task.state.at(task.requested_ms, state.clock.now_ms()),
        target: task.target,
        env: task.env,
        app: task.app,
        message: task.message,
        requested_by: task.requested_by,
        requested: rfc3339(task.requested_ms),
        finished: task.finished_ms.map(rfc3339),
    })
}
