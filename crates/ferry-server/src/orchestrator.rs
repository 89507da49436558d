//! Drives deployments: turns the domain state machine's commands into each target's desired
//! state, feeds it what agents report, and times out targets that stay silent. Agents
//! long-poll for their desired state and are woken when it changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ferry_domain::audit_event::{AuditAction, DeploymentFinish};
use ferry_domain::deployment::{Command, Deployment, Report, Status, TargetState};
use ferry_store::{DeploymentRecord, DesiredChange};
use tokio::sync::{Mutex, Notify};

use crate::error::ApiError;
use crate::state::AppState;

/// What agents and `--wait` wait on, and the lock that serialises changes to running
/// deployments.
pub struct Orchestra {
    /// Grows with every change of any desired state; agents long-poll past it.
    generation: AtomicU64,
    /// The generation at which each target's desired state last changed, so a change wakes
    /// only the agents it concerns for more than a look at this map.
    changed_targets: std::sync::Mutex<HashMap<String, u64>>,
    /// The generation at which every target was last told to look again.
    everyone: AtomicU64,
    pub changed: Notify,
    /// Notified whenever a deployment changes (for `ferry deploy --wait`).
    pub deployments: Notify,
    /// Reports for one deployment may arrive together; each is applied to the latest state.
    pub lock: Mutex<()>,
}

impl Orchestra {
    /// Starts the generation at `now_ms`, so it keeps growing across server restarts and an
    /// agent's `after` from before a restart never hides a change.
    pub fn new(now_ms: i64) -> Orchestra {
        let start = now_ms.max(0) as u64;
        Orchestra {
            generation: AtomicU64::new(start),
            changed_targets: Default::default(),
            everyone: AtomicU64::new(start),
            changed: Notify::new(),
            deployments: Notify::new(),
            lock: Mutex::new(()),
        }
    }

    /// The latest generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The generation at which `target`'s desired state last changed.
    pub fn generation_of(&self, target: &str) -> u64 {
        let own = self
            .changed_targets
            .lock()
            .expect("the map is never poisoned")
            .get(target)
            .copied()
            .unwrap_or(0);
        own.max(self.everyone.load(Ordering::SeqCst))
    }

    /// Wakes every waiting agent and tells them all to look again.
    pub fn bump(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.everyone.fetch_max(generation, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// A deployment changed, and with it the desired state of `changes`' targets: wakes
    /// those agents and whoever waits on deployments.
    pub fn deployment_changed(&self, changes: &[DesiredChange]) {
        if !changes.is_empty() {
            self.bump_targets(changes.iter().map(|c| c.target.as_str()));
        }
        self.deployments.notify_waiters();
    }

    /// Tells the agents of `targets` that their desired state changed.
    fn bump_targets<'t>(&self, targets: impl IntoIterator<Item = &'t str>) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut changed = self
            .changed_targets
            .lock()
            .expect("the map is never poisoned");
        for target in targets {
            changed.insert(target.to_owned(), generation);
        }
        drop(changed);
        self.changed.notify_waiters();
    }
}

/// The status column for a domain status.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Running => "running",
        Status::Succeeded => "succeeded",
        Status::RolledBack => "rolled_back",
        Status::Failed => "failed",
    }
}

/// The desired-state changes a deployment's commands stand for.
pub fn desired_changes(record: &DeploymentRecord, commands: Vec<Command>) -> Vec<DesiredChange> {
    commands
        .into_iter()
        .map(|command| match command {
            Command::Deploy { target } => DesiredChange {
                target,
                app: record.app.clone(),
                version: Some(record.version.clone()),
                deployment_id: record.id,
                stage_only: false,
            },
            Command::RollBack { target, to } => DesiredChange {
                target,
                app: record.app.clone(),
                version: to,
                deployment_id: record.id,
                stage_only: false,
            },
            Command::Stage { target } => DesiredChange {
                target,
                app: record.app.clone(),
                version: Some(record.version.clone()),
                deployment_id: record.id,
                stage_only: true,
            },
        })
        .collect()
}

fn parse_state(record: &DeploymentRecord) -> Result<Deployment, ApiError> {
    serde_json::from_str(&record.state).map_err(|e| {
        ApiError::internal(format!(
            "deployment {} has unreadable state: {e}",
            record.id
        ))
    })
}

/// Applies one report to a running deployment and saves what follows.
pub async fn apply_report(
    state: &AppState,
    deployment_id: i64,
    target: &str,
    report: impl FnOnce(&TargetState) -> Option<Report>,
) -> Result<(), ApiError> {
    let orchestra = state.orchestra.clone();
    let _serial = orchestra.lock.lock().await;
    let Some(mut record) = state.store.deployment(deployment_id).await? else {
        return Ok(());
    };
    if record.status != "running" {
        return Ok(());
    }
    let mut deployment = parse_state(&record)?;
    let Some(step) = deployment.steps.iter().find(|s| s.target == target) else {
        return Ok(());
    };
    let Some(report) = report(&step.state) else {
        return Ok(());
    };
    let commands = deployment.apply(target, report);
    save(state, &mut record, &deployment, commands).await
}

async fn save(
    state: &AppState,
    record: &mut DeploymentRecord,
    deployment: &Deployment,
    commands: Vec<Command>,
) -> Result<(), ApiError> {
    record.state = serde_json::to_string(deployment).expect("deployments serialize");
    record.status = status_name(deployment.status).to_owned();
    record.reason = deployment.reason.clone();
    record.updated_ms = state.clock.now_ms();
    let changes = desired_changes(record, commands);
    let finished = deployment.status != Status::Running;
    // A rollback that succeeded marks the release it replaced as bad in the environment.
    let bad_version =
        (finished && record.kind == "rollback" && deployment.status == Status::Succeeded)
            .then(|| deployment.steps.iter().find_map(|s| s.previous.clone()))
            .flatten();
    let audit = finished.then(|| {
        AuditAction::DeploymentFinish(DeploymentFinish {
            status: record.status.clone(),
            reason: record.reason.clone(),
            version: record.version.clone(),
            env: record.env.clone(),
        })
        .record(
            record.updated_ms,
            crate::bootstrap::SERVER_ACTOR,
            format!("deployment/{}", record.id),
            Some(&record.app),
        )
    });
    match audit {
        Some(audit) => {
            state
                .store
                .update_deployment(record, changes.clone(), bad_version.as_deref(), audit)
                .await?
        }
        None => {
            state
                .store
                .record_deployment_progress(record, changes.clone())
                .await?
        }
    }
    state.orchestra.deployment_changed(&changes);
    if finished && deployment.status == Status::Succeeded && record.kind == "deploy" {
        // The deployment stands whatever happens here; a failure is logged, not reported.
        if let Err(error) =
            crate::support::after_success(state, &record.app, &record.env, &record.version).await
        {
            tracing::warn!(
                "opening the backport obligation of {} {} failed: {}",
                record.app,
                record.version,
                error.message
            );
        }
    }
    Ok(())
}

/// Records the step a target reports while it deploys, so people see how far it got and
/// a slow but working target is not taken for a silent one. Only while the deployment
/// still waits on the target: a late report never overwrites its outcome.
pub async fn record_progress(
    state: &AppState,
    deployment_id: i64,
    target: &str,
    app: &str,
    current_version: Option<&str>,
    step: &str,
) -> Result<(), ApiError> {
    let _serial = state.orchestra.lock.lock().await;
    let Some(record) = state.store.deployment(deployment_id).await? else {
        return Ok(());
    };
    if record.status != "running" || !parse_state(&record)?.waiting_on().contains(&target) {
        return Ok(());
    }
    state
        .store
        .report_target_app(
            target,
            app,
            current_version,
            "deploying",
            Some(step),
            state.clock.now_ms(),
        )
        .await?;
    Ok(())
}

/// Times out targets of running deployments that have not answered for `timeout`: neither
/// moved the deployment on nor reported progress.
pub async fn time_out_silent_targets(state: &AppState, timeout: Duration) -> Result<(), ApiError> {
    let now = state.clock.now_ms();
    let timeout_ms = timeout.as_millis() as i64;
    let mut progress: Option<Vec<ferry_store::TargetApp>> = None;
    for record in state.store.running_deployments().await? {
        if now - record.updated_ms < timeout_ms {
            continue;
        }
        let deployment = parse_state(&record)?;
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
        for target in deployment.waiting_on() {
            if now - heard_from(target) < timeout_ms {
                continue;
            }
            let reason = format!(
                "no answer for {}s: is its agent running? (`ferry target list`)",
                timeout.as_secs()
            );
            apply_report(state, record.id, target, |_| {
                Some(Report::TimedOut { reason })
            })
            .await?;
        }
    }
    Ok(())
}

/// Checks for silent targets every second, for as long as the server runs.
pub async fn run_timeouts(state: AppState, timeout: Duration) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        if let Err(error) = time_out_silent_targets(&state, timeout).await {
            tracing::warn!("timing out silent targets failed: {}", error.message);
        }
    }
}
