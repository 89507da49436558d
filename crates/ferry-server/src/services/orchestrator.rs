//! Drives deployments: turns the domain state machine's commands into each target's desired
//! state, feeds it what agents report, times out targets that stay silent or go offline, and
//! stops deployments that run past their deadline. Agents
//! long-poll for their desired state and are woken when it changes.

use std::collections::HashMap;
use std::time::Duration;

use ferry_domain::audit_event::{AuditAction, DeploymentFinish};
use ferry_domain::deployment::{Ahead, Command, Kind, Report, Status, TargetState};
use ferry_domain::duration::format_duration;
use ferry_domain::liveness::MISSED_BEATS;
use ferry_domain::served::Served;
use ferry_domain::steady::{self, Ages, Now};
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

/// The stored times the watcher of running deployments times things out by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Timed {
    /// When a target's agent was last heard from.
    Heartbeat(String),
    /// When a deployment started.
    Started(i64),
    /// When a deployment last moved on.
    Moved(i64),
    /// When a target last reported progress on a deployment.
    Progress(i64, String),
}

/// What the watcher of running deployments keeps between its passes: when it began (on the
/// steady clock), the last reading of the clocks, and the ages of what it watches, which
/// grow on the steady clock so that setting the machine's clock neither fails deployments
/// nor holds them up.
pub struct Watch {
    limits: Limits,
    since_ms: i64,
    last: Now,
    ages: Ages<Timed>,
}

impl Watch {
    pub fn new(limits: Limits, now: Now) -> Watch {
        Watch {
            limits,
            since_ms: now.steady_ms,
            last: now,
            ages: Ages::default(),
        }
    }
}

/// One pass over the running deployments: a deployment past its deadline is stopped, and
/// a target it waits on fails its step when its agent went offline (missed three
/// heartbeats) or it has not answered for `limits.silent_target`. Silence counts only from
/// [`RECONNECT_MS`] after the watch began (when this server started): agents that lost the
/// server while it was down come back within that. Every pass looks at every target and
/// every running deployment, so that each time's age is known before the clock can jump.
pub async fn time_out_silent_targets(state: &AppState, watch: &mut Watch) -> ServiceResult<()> {
    let now = state.clock.read();
    if let Some(jump_ms) = steady::jump(watch.last, now) {
        tracing::warn!(
            "the server's clock jumped {} {}: running deployments, targets' heartbeats and escalations are timed on a steady clock and keep their ages; times shown and freeze windows follow the clock as it is now",
            if jump_ms > 0 { "forward" } else { "back" },
            format_duration(Duration::from_millis(jump_ms.unsigned_abs()))
        );
    }
    watch.last = now;
    let timeout_ms = watch.limits.silent_target.as_millis() as i64;
    let deadline_ms = watch.limits.deadline.as_millis() as i64;
    let watched_ms = now.steady_ms - watch.since_ms;
    let ages = &mut watch.ages;
    let targets = state.store.list_targets().await?;
    // Each target's last heartbeat, and how long ago it was (never: as long as can be).
    let mut heard = HashMap::new();
    for target in &targets {
        let ago_ms = target.last_seen_ms.map_or(i64::MAX, |seen| {
            ages.age_ms(Timed::Heartbeat(target.name.clone()), seen, now)
        });
        heard.insert(target.name.as_str(), (target.last_seen_ms, ago_ms));
    }
    let running = state.store.running_deployments().await?;
    let progress = if running.is_empty() {
        Vec::new()
    } else {
        state.store.target_apps(None).await?
    };
    for record in running {
        let id = record.id;
        let started = record.state.started_ms.unwrap_or(record.created_ms);
        let started_now = ages.now_for(Timed::Started(id), started, now);
        let moved_ms = ages.age_ms(Timed::Moved(id), record.updated_ms, now);
        let mut progress_ms = HashMap::new();
        for row in &progress {
            if row.app == record.app && row.deployment_id == Some(id) {
                let key = Timed::Progress(id, row.target.clone());
                progress_ms.insert(row.target.as_str(), ages.age_ms(key, row.updated_ms, now));
            }
        }
        if record
            .state
            .is_past(deadline_ms, started_now, record.created_ms)
        {
            pass_deadline(
                state,
                &record,
                watch.limits.deadline,
                started_now,
                deadline_ms,
            )
            .await?;
            continue;
        }
        let mut went_offline = false;
        for target in record.state.waiting_on() {
            let Some(&(last_seen, ago_ms)) = heard.get(target) else {
                // Removed while the deployment waited on it: it will never answer.
                went_offline = true;
                let reason = "was removed (`ferry target remove`) while the deployment waited on it; deploy again".to_owned();
                time_out(state, id, target, reason).await?;
                continue;
            };
            if ago_ms.min(watched_ms - RECONNECT_MS) >= state.liveness.offline_after_ms() {
                went_offline = true;
                let heard_now = last_seen.map_or(now.wall_ms, |seen| seen.saturating_add(ago_ms));
                let reason = format!(
                    "went offline: its agent missed {MISSED_BEATS} heartbeats, {}; start it again, then deploy again",
                    state.liveness.last_seen(last_seen, heard_now)
                );
                time_out(state, id, target, reason).await?;
            }
        }
        // What is left waiting is judged from the deployment as it is now, next pass.
        if went_offline || moved_ms < timeout_ms {
            continue;
        }
        for target in record.state.waiting_on() {
            if progress_ms.get(target).is_some_and(|ms| *ms < timeout_ms) {
                continue;
            }
            let reason = format!(
                "no answer for {}s: is its agent running? (`ferry target list`)",
                watch.limits.silent_target.as_secs()
            );
            time_out(state, id, target, reason).await?;
        }
    }
    ages.end_pass();
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
    let mut watch = Watch::new(limits, state.clock.read());
    loop {
        ticker.tick().await;
        if let Err(error) = time_out_silent_targets(&state, &mut watch).await {
            tracing::warn!("timing out silent targets failed: {}", error.message);
        }
    }
}
