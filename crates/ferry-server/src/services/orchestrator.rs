//! Drives deployments: turns the domain state machine's commands into each target's desired
//! state, feeds it what agents report, times out targets that stay silent or go offline, and
//! stops deployments that run past their deadline. Agents
//! long-poll for their desired state and are woken when it changes.

use std::time::Duration;

use ferry_domain::audit_event::{AuditAction, DeploymentFinish};
use ferry_domain::deployment::{Ahead, Command, Kind, Report, Status, TargetState};
use ferry_domain::duration::format_duration;
use ferry_domain::liveness::{Health, MISSED_BEATS};
use ferry_domain::served::Served;
use ferry_store::{DeploymentRecord, DeploymentUpdate, DesiredChange, TargetReport};

use crate::services::{support, until_no_conflict, ServiceError, ServiceResult};
use crate::state::AppState;

/// The desired-state changes a deployment's commands stand for, once the commands that need
/// no target to act are settled in its state machine (a target sent back to the release
/// the deployment sent, which it ran before, is back already).
pub fn desired_changes(
    record: &mut DeploymentRecord,
    commands: Vec<Command>,
) -> Vec<DesiredChange> {
    let served = record.served();
    let change = |target: String, to: Option<Served>, stage_only: bool| DesiredChange {
        target,
        app: record.app.clone(),
        config: to.as_ref().map_or(0, |s| s.config),
        version: to.map(|s| s.version),
        deployment_id: record.id,
        stage_only,
    };
    let commands = record.state.settle(&served.label(), commands);
    commands
        .into_iter()
        .map(|command| match command {
            Command::Deploy { target } => change(target, Some(served.clone()), false),
            // What a target goes back to is what it served before: a release with the
            // configuration revision it ran with (`Served`'s label).
            Command::RollBack { target, to } => {
                change(target, to.as_deref().map(Served::parse), false)
            }
            Command::Stage { target } => change(target, Some(served.clone()), true),
        })
        .collect()
}

/// Applies one report to a running deployment and saves what follows, over the latest
/// stored revision, together with what the agent reported (`reported`; saved alone when the
/// report does not move the deployment on). `ahead` is how staging the release went, when
/// the report is about that: a deployment awaiting approval notes it for each target, so
/// `deployment show` says which are ready to switch.
pub async fn apply_report(
    state: &AppState,
    deployment_id: i64,
    target: &str,
    report: impl Fn(&TargetState) -> Option<Report>,
    ahead: Option<&Ahead>,
    reported: Option<TargetReport>,
) -> ServiceResult<()> {
    let (report, reported) = (&report, &reported);
    // In turn with the other reports of this deployment on this server (`turns.rs`).
    let _turn = state.turns.take(deployment_id).await;
    let attempt = || async move {
        if let Some(mut record) = state.store.deployment(deployment_id).await? {
            match record.status() {
                Status::Running => {
                    let step = record.state.steps.iter().find(|s| s.target == target);
                    if let Some(report) = step.and_then(|step| report(&step.state)) {
                        let commands = record.state.apply(target, report);
                        return save(state, &mut record, commands, reported.clone()).await;
                    }
                }
                Status::AwaitingApproval => {
                    let noted =
                        ahead.is_some_and(|ahead| record.state.note_ahead(target, ahead.clone()));
                    if noted {
                        record.updated_ms = state.clock.now_ms();
                        let update = DeploymentUpdate {
                            report: reported.clone(),
                            ..DeploymentUpdate::of(&record)
                        };
                        return Ok(state.store.record_deployment_progress(update).await?);
                    }
                }
                _ => {}
            }
        }
        match reported {
            Some(reported) => Ok(state.store.report_target_app(reported.clone()).await?),
            None => Ok(()),
        }
    };
    until_no_conflict(attempt, || {
        ServiceError::conflict(format!(
            "deployment {deployment_id} kept changing while a report for {target} was applied: the agent reports again"
        ))
    })
    .await
}

async fn save(
    state: &AppState,
    record: &mut DeploymentRecord,
    commands: Vec<Command>,
    reported: Option<TargetReport>,
) -> ServiceResult<()> {
    record.updated_ms = state.clock.now_ms();
    let changes = desired_changes(record, commands);
    let status = record.status();
    let finished = !status.is_active();
    // A rollback that succeeded marks the release it replaced as bad in the environment.
    let bad_version = (finished && status == Status::Succeeded)
        .then(|| record.went_back_from().map(str::to_owned))
        .flatten();
    let hotfix_shipped = finished && status == Status::Succeeded && record.kind == Kind::Deploy;
    let opens = match hotfix_shipped {
        true => {
            support::obligation_opened_by(state, &record.app, &record.env, &record.version).await?
        }
        false => None,
    };
    let update = DeploymentUpdate {
        deployment: record,
        changes: changes.clone(),
        bad_version,
        report: reported,
        opens,
    };
    if finished {
        let audit = AuditAction::DeploymentFinish(DeploymentFinish {
            config: record.config,
            status,
            reason: record.reason().map(str::to_owned),
            version: record.version.clone(),
            env: record.env.clone(),
        })
        .record(
            record.updated_ms,
            crate::bootstrap::SERVER_ACTOR,
            format!("deployment/{}", record.id),
            Some(&record.app),
        );
        state.store.update_deployment(update, audit).await?;
    } else {
        state.store.record_deployment_progress(update).await?;
    }
    record.revision += 1;
    if hotfix_shipped {
        // The obligation is open already; whether an existing release closes it at once is
        // a separate, later fact, and a failure here leaves it open (the safe side).
        if let Err(error) =
            support::close_if_fixed_already(state, &record.app, &record.version).await
        {
            tracing::warn!(
                "checking whether a release already has the fix of {} {} failed: {}",
                record.app,
                record.version,
                error.message
            );
        }
    }
    // Whoever waits on the deployment (`deploy --wait`) is woken once what follows its end
    // (a backport obligation) is recorded too.
    state.wakeups.deployment_changed(&changes);
    Ok(())
}

/// Records the step a target reports while it deploys, so people see how far it got and
/// a slow but working target is not taken for a silent one. Only while the deployment
/// still waits on the target: a late report never overwrites its outcome.
pub async fn record_progress(
    state: &AppState,
    deployment_id: i64,
    report: TargetReport,
) -> ServiceResult<()> {
    let Some(record) = state.store.deployment(deployment_id).await? else {
        return Ok(());
    };
    if record.status() != Status::Running
        || !record.state.waiting_on().contains(&report.target.as_str())
    {
        return Ok(());
    }
    // Recorded only if the deployment has not moved on since it was read here.
    state
        .store
        .record_target_progress(report, deployment_id, record.revision)
        .await?;
    Ok(())
}

/// How long agents that lost the server take at most to come back once it is up again (the
/// agent's longest pause between attempts): no target counts as offline before then.
const RECONNECT_MS: i64 = 30_000;

/// How long the server waits on a running deployment.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A target that neither moved its deployment on nor reported progress for this long
    /// fails its step (`--deploy-timeout`).
    pub silent_target: Duration,
    /// A deployment running longer than this from its start is stopped as failed
    /// (`--deployment-deadline`); one still waiting on targets going back at twice this
    /// fails those too, so no deployment runs forever.
    pub deadline: Duration,
}

/// One pass over the running deployments: a deployment past its deadline is stopped, and
/// a target it waits on fails its step when its agent went offline (missed three
/// heartbeats) or it has not answered for `limits.silent_target`. Silence counts only from
/// [`RECONNECT_MS`] after `watching_since_ms` (when this server started watching): agents
/// that lost the server while it was down come back within that.
pub async fn time_out_silent_targets(
    state: &AppState,
    limits: Limits,
    watching_since_ms: i64,
) -> ServiceResult<()> {
    let now = state.clock.now_ms();
    let timeout_ms = limits.silent_target.as_millis() as i64;
    let deadline_ms = limits.deadline.as_millis() as i64;
    let mut progress: Option<Vec<ferry_store::TargetApp>> = None;
    let mut targets: Option<Vec<ferry_store::Target>> = None;
    for record in state.store.running_deployments().await? {
        if record.state.is_past(deadline_ms, now, record.created_ms) {
            pass_deadline(state, &record, limits.deadline, now, deadline_ms).await?;
            continue;
        }
        let known = match &targets {
            Some(known) => known,
            None => targets.insert(state.store.list_targets().await?),
        };
        let mut went_offline = false;
        for target in record.state.waiting_on() {
            let Some(found) = known.iter().find(|t| t.name == target) else {
                // Removed while the deployment waited on it: it will never answer.
                went_offline = true;
                let reason = "was removed (`ferry target remove`) while the deployment waited on it; deploy again".to_owned();
                time_out(state, record.id, target, reason).await?;
                continue;
            };
            let last_seen = found.last_seen_ms;
            let silent_since = last_seen.max(Some(watching_since_ms + RECONNECT_MS));
            if state.liveness.health(Some(0), silent_since, now) == Health::Offline {
                went_offline = true;
                let reason = format!(
                    "went offline: its agent missed {MISSED_BEATS} heartbeats, {}; start it again, then deploy again",
                    state.liveness.last_seen(last_seen, now)
                );
                time_out(state, record.id, target, reason).await?;
            }
        }
        // What is left waiting is judged from the deployment as it is now, next pass.
        if went_offline || now - record.updated_ms < timeout_ms {
            continue;
        }
        let rows = match &progress {
            Some(rows) => rows,
            None => progress.insert(state.store.target_apps(None).await?),
        };
        let heard_from = |target: &str| {
            rows.iter()
                .find(|r| {
                    r.target == target && r.app == record.app && r.deployment_id == Some(record.id)
                })
                .map_or(0, |r| r.updated_ms)
        };
        for target in record.state.waiting_on() {
            if now - heard_from(target) < timeout_ms {
                continue;
            }
            let reason = format!(
                "no answer for {}s: is its agent running? (`ferry target list`)",
                limits.silent_target.as_secs()
            );
            time_out(state, record.id, target, reason).await?;
        }
    }
    Ok(())
}

/// Fails `target`'s step in deployment `id` as timed out, if it is still waited on.
async fn time_out(state: &AppState, id: i64, target: &str, reason: String) -> ServiceResult<()> {
    apply_report(
        state,
        id,
        target,
        |_| {
            Some(Report::TimedOut {
                reason: reason.clone(),
            })
        },
        None,
        None,
    )
    .await
}

/// Stops a deployment that ran past its deadline: the targets still switching fail and
/// switched ones go back. At twice the deadline, the targets still going back fail too.
async fn pass_deadline(
    state: &AppState,
    record: &DeploymentRecord,
    deadline: Duration,
    now: i64,
    deadline_ms: i64,
) -> ServiceResult<()> {
    let limit = format_duration(deadline);
    if record
        .state
        .is_past(2 * deadline_ms, now, record.created_ms)
    {
        for target in record.state.waiting_on() {
            let reason = format!(
                "still not back at twice the deployment's deadline of {limit} (`ferry server --deployment-deadline`)"
            );
            time_out(state, record.id, target, reason).await?;
        }
        return Ok(());
    }
    let reason = format!(
        "the deployment did not finish within its deadline of {limit} (`ferry server --deployment-deadline`)"
    );
    let id = record.id;
    let reason = &reason;
    let attempt = || async move {
        let Some(mut record) = state.store.deployment(id).await? else {
            return Ok(());
        };
        let before = record.state.clone();
        let commands = record.state.pass_deadline(reason);
        if record.state == before {
            return Ok(());
        }
        save(state, &mut record, commands, None).await
    };
    until_no_conflict(attempt, || {
        ServiceError::conflict(format!(
            "deployment {id} kept changing while its deadline was applied: tried again next pass"
        ))
    })
    .await
}

/// Watches running deployments every second, for as long as the server runs.
pub async fn run_timeouts(state: AppState, limits: Limits) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let watching_since_ms = state.clock.now_ms();
    loop {
        ticker.tick().await;
        if let Err(error) = time_out_silent_targets(&state, limits, watching_since_ms).await {
            tracing::warn!("timing out silent targets failed: {}", error.message);
        }
    }
}
