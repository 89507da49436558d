//! A deployment as a state machine with one step per target. The server feeds it what
//! agents report (and timeouts); it answers with what each target must do next. No I/O:
//! the orchestrator stores the state and turns commands into each agent's desired state.
//!
//! A stage-only deployment asks every target to fetch and stage the release without
//! switching to it, so that a later deployment of the same release is only a switch.
//!
//! A deployment can be stopped before it ends: cancelled by someone, or past its deadline.
//! Either way targets not switched yet are not switched, and targets already switched go
//! back to their previous release, as after a failure.

mod vocabulary;

use crate::vocabulary::vocabulary;
use serde::{Deserialize, Serialize};
pub use vocabulary::{Kind, Outcome, Status, TargetAppState};

vocabulary! {
    /// How targets are taken through a deployment.
    pub enum Strategy ("strategy") {
        /// One target at a time; on a failure, stop and roll back the targets already
        /// switched.
        Rolling = "rolling",
        /// All targets at once; on a failure, roll back the targets that switched.
        Parallel = "parallel",
    }
}

/// Where one target is in the deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TargetState {
    /// Not asked yet (rolling: waiting for its turn).
    Pending,
    /// Asked to deploy the new release; not reported yet.
    Deploying,
    Succeeded,
    /// The target failed after its switch and put its previous release back.
    RolledBack {
        reason: String,
    },
    /// The target failed before its switch (it still serves what it served), or has no
    /// previous release to serve, or could not go back.
    Failed {
        reason: String,
    },
    /// Switched successfully, then asked to go back because another target failed.
    RollingBack,
    /// Went back to its previous release after another target failed.
    Reverted,
    /// Never reached: the deployment stopped before its turn.
    Skipped,
    /// Stage-only: asked to stage the release; not reported yet.
    Staging,
    /// Stage-only: the release is on the target, ready to be switched to.
    Staged,
}

impl TargetState {
    /// Whether the target will not change any more in this deployment.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            TargetState::Pending
                | TargetState::Deploying
                | TargetState::RollingBack
                | TargetState::Staging
        )
    }

    /// The state's name as the API shows it.
    pub fn name(&self) -> &'static str {
        match self {
            TargetState::Pending => "pending",
            TargetState::Deploying => "deploying",
            TargetState::Succeeded => "succeeded",
            TargetState::RolledBack { .. } => "rolled_back",
            TargetState::Failed { .. } => "failed",
            TargetState::RollingBack => "rolling_back",
            TargetState::Reverted => "reverted",
            TargetState::Skipped => "skipped",
            TargetState::Staging => "staging",
            TargetState::Staged => "staged",
        }
    }

    /// Why the target failed, when it did.
    pub fn failure(&self) -> Option<&str> {
        match self {
            TargetState::RolledBack { reason } | TargetState::Failed { reason } => Some(reason),
            _ => None,
        }
    }
}

/// One target's part of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetStep {
    pub target: String,
    /// The release the target served before, to go back to.
    pub previous: Option<String>,
    #[serde(flatten)]
    pub state: TargetState,
    /// What the target answered when asked to stage the release while the deployment
    /// awaited approval; `None` while it has not answered (or was never asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<Ahead>,
}

/// How staging a release ahead went on one target, while its deployment awaits approval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ahead {
    /// The release is staged: once approved, the target only switches.
    Staged,
    /// Staging failed; the target stages again when the deployment starts.
    Failed { reason: String },
}

/// How a deployment that awaits approval ends without starting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An approver refused it.
    Rejected { by: String, reason: String },
    /// The person who asked for it took it back.
    Withdrawn { by: String, reason: String },
}

/// A deployment that no longer awaits approval cannot be approved, rejected or withdrawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the deployment is not awaiting approval (its status is {status}): only a deployment \
     waiting for approval can be approved or rejected; see `ferry deployment list`"
)]
pub struct NotAwaitingApproval {
    /// Its status now.
    pub status: Status,
}

/// Who cancelled a deployment, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub by: String,
    pub reason: String,
}

/// Why a deployment cannot be cancelled. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CannotCancel {
    #[error(
        "it is {status} already: only a deployment awaiting approval or running can be \
         cancelled (to undo a finished one, deploy or roll back)"
    )]
    Finished {
        /// Its status now.
        status: Status,
    },
    #[error(
        "it was cancelled already by {by} and is waiting for its targets to finish their step \
         and go back"
    )]
    Cancelling { by: String },
}

/// What the orchestrator must tell a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Deploy the deployment's release.
    Deploy { target: String },
    /// Go back to `to` (`None`: serve nothing, there was no previous release).
    RollBack { target: String, to: Option<String> },
    /// Fetch and stage the deployment's release, without switching to it.
    Stage { target: String },
}

impl Command {
    /// The target the command is for.
    pub fn target(&self) -> &str {
        match self {
            Command::Deploy { target }
            | Command::RollBack { target, .. }
            | Command::Stage { target } => target,
        }
    }
}

/// What a target reported, or what the server concluded about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// The new release is live and healthy.
    Succeeded,
    /// The deploy failed after the switch; the target put back its previous release.
    RolledBack { reason: String },
    /// The deploy failed before the switch (nothing changed on the target), or the target
    /// has nothing to serve, or could not go back.
    Failed { reason: String },
    /// The target went back to its previous release, as asked.
    Reverted,
    /// The target did not answer in time.
    TimedOut { reason: String },
    /// The release is staged on the target.
    Staged,
}

impl Cancellation {
    /// The reason a cancelled deployment ends with: who and why, and the first failure, if a
    /// target failed (before the cancel, or going back after it).
    fn describe(&self, failure: Option<&str>) -> String {
        let cancelled = format!("cancelled by {}: {}", self.by, self.reason);
        match failure {
            Some(failure) => format!("{cancelled}; {failure}"),
            None => cancelled,
        }
    }
}

impl Report {
    /// What an agent's report means for a target in `state`, with `detail` as the reason
    /// of a failure; `None` when it does not fit the state (late or duplicated), which
    /// changes nothing. Asked to go back, any answer but success means it could not.
    pub fn from_agent(state: &TargetState, outcome: Outcome, detail: &str) -> Option<Report> {
        let reason = || detail.to_owned();
        match (state, outcome) {
            (TargetState::Staging, Outcome::Staged) => Some(Report::Staged),
            (TargetState::Staging, Outcome::StageFailed) => {
                Some(Report::Failed { reason: reason() })
            }
            (TargetState::Deploying, Outcome::Succeeded) => Some(Report::Succeeded),
            (TargetState::Deploying, Outcome::RolledBack) => {
                Some(Report::RolledBack { reason: reason() })
            }
            (TargetState::Deploying, Outcome::Failed) => Some(Report::Failed { reason: reason() }),
            (TargetState::RollingBack, Outcome::Succeeded) => Some(Report::Reverted),
            (TargetState::RollingBack, Outcome::Progress) => None,
            (TargetState::RollingBack, _) => Some(Report::Failed { reason: reason() }),
            _ => None,
        }
    }
}

/// A deployment in progress or finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub strategy: Strategy,
    pub steps: Vec<TargetStep>,
    pub status: Status,
    /// Why a deployment that did not succeed ended as it did.
    pub reason: Option<String>,
    /// Stages the release on every target and switches none.
    #[serde(default)]
    pub stage_only: bool,
    /// The first failure in the order reports came, which stopped the deployment: its
    /// reason once it ends, whatever fails after it (a rollback, another parallel target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<String>,
    /// When it started (ms): the deadline counts from here, not from the request, so time
    /// spent awaiting approval does not count. `None` before it starts (and for deployments
    /// stored before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<i64>,
    /// Someone cancelled it: it stops as after a failure and ends `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<Cancellation>,
}

impl Deployment {
    /// A deployment to `targets` (name and the release each serves now), not started.
    pub fn new(strategy: Strategy, targets: Vec<(String, Option<String>)>) -> Deployment {
        Deployment {
            strategy,
            steps: targets
                .into_iter()
                .map(|(target, previous)| TargetStep {
                    target,
                    previous,
                    state: TargetState::Pending,
                    ahead: None,
                })
                .collect(),
            status: Status::Running,
            reason: None,
            stage_only: false,
            first_failure: None,
            started_ms: None,
            cancelled: None,
        }
    }

    /// A stage-only deployment to `targets`, not started.
    pub fn staging(targets: Vec<(String, Option<String>)>) -> Deployment {
        Deployment {
            stage_only: true,
            ..Deployment::new(Strategy::Parallel, targets)
        }
    }

    /// The record of a target that runs a release already, its content captured from the
    /// target itself (`ferry drift capture`): finished and succeeded at `now_ms`, with
    /// nothing left for the target to do. `previous` is the release it ran before, so a
    /// rollback knows where to go back to.
    pub fn captured(target: String, previous: String, now_ms: i64) -> Deployment {
        let mut deployment = Deployment::new(Strategy::Parallel, vec![(target, Some(previous))]);
        deployment.steps[0].state = TargetState::Succeeded;
        deployment.status = Status::Succeeded;
        deployment.started_ms = Some(now_ms);
        deployment
    }

    /// Asks every target not yet asked to stage the release ahead of its turn (while the
    /// deployment waits, for example); what they answer does not change the deployment.
    pub fn stage_ahead(&self) -> Vec<Command> {
        self.steps
            .iter()
            .filter(|step| step.state == TargetState::Pending)
            .map(|step| Command::Stage {
                target: step.target.clone(),
            })
            .collect()
    }

    /// Leaves the deployment waiting for approvals, and asks every target to stage the
    /// release meanwhile, so that the switch is quick once it starts.
    pub fn await_approval(&mut self) -> Vec<Command> {
        self.status = Status::AwaitingApproval;
        self.stage_ahead()
    }

    /// Starts the deployment at `now_ms` (a waiting one once it is approved): the first
    /// target (rolling) or all of them (parallel).
    pub fn start(&mut self, now_ms: i64) -> Vec<Command> {
        self.status = Status::Running;
        self.started_ms = Some(now_ms);
        if self.steps.is_empty() {
            self.status = Status::Failed;
            self.reason = Some("the application is placed on no target in this environment".into());
            return Vec::new();
        }
        if self.stage_only {
            return self
                .steps
                .iter_mut()
                .map(|step| {
                    step.state = TargetState::Staging;
                    Command::Stage {
                        target: step.target.clone(),
                    }
                })
                .collect();
        }
        let n_first = match self.strategy {
            Strategy::Rolling => 1,
            Strategy::Parallel => self.steps.len(),
        };
        self.steps
            .iter_mut()
            .take(n_first)
            .map(|step| {
                step.state = TargetState::Deploying;
                Command::Deploy {
                    target: step.target.clone(),
                }
            })
            .collect()
    }

    /// Ends a deployment that awaits approval without switching anything: rejected by an
    /// approver, or withdrawn by the person who asked for it. Its targets are skipped.
    pub fn refuse(&mut self, refusal: Refusal) -> Result<(), NotAwaitingApproval> {
        if self.status != Status::AwaitingApproval {
            return Err(NotAwaitingApproval {
                status: self.status,
            });
        }
        let (status, verb, by, reason) = match refusal {
            Refusal::Rejected { by, reason } => (Status::Rejected, "rejected", by, reason),
            Refusal::Withdrawn { by, reason } => (Status::Withdrawn, "withdrawn", by, reason),
        };
        for step in &mut self.steps {
            step.state = TargetState::Skipped;
        }
        self.status = status;
        self.reason = Some(format!("{verb} by {by}: {reason}"));
        Ok(())
    }

    /// Cancels the deployment on behalf of `by`. One awaiting approval ends at once, its
    /// targets skipped. A running one stops as after a failure: targets not asked yet are
    /// skipped, targets staging stop (staging changes nothing served), switched targets are
    /// sent back to their previous release, and a target in the middle of its switch is sent
    /// back once it reports; it ends `cancelled` when every target is final.
    pub fn cancel(&mut self, by: &str, reason: &str) -> Result<Vec<Command>, CannotCancel> {
        if let Some(cancelled) = &self.cancelled {
            if self.status.is_active() {
                return Err(CannotCancel::Cancelling {
                    by: cancelled.by.clone(),
                });
            }
        }
        let cancellation = Cancellation {
            by: by.to_owned(),
            reason: reason.to_owned(),
        };
        match self.status {
            Status::AwaitingApproval => {
                for step in &mut self.steps {
                    step.state = TargetState::Skipped;
                }
                self.status = Status::Cancelled;
                self.reason = Some(cancellation.describe(None));
                self.cancelled = Some(cancellation);
                Ok(Vec::new())
            }
            Status::Running => {
                for step in &mut self.steps {
                    if step.state == TargetState::Staging {
                        step.state = TargetState::Skipped;
                    }
                }
                self.cancelled = Some(cancellation);
                Ok(self.advance())
            }
            status => Err(CannotCancel::Finished { status }),
        }
    }

    /// Whether a running deployment has been running longer than `deadline_ms` at `now_ms`.
    /// A deployment stored before its start was kept counts from `fallback_ms`.
    pub fn is_past(&self, deadline_ms: i64, now_ms: i64, fallback_ms: i64) -> bool {
        self.status == Status::Running
            && now_ms - self.started_ms.unwrap_or(fallback_ms) > deadline_ms
    }

    /// Stops a running deployment that ran past its deadline, as a timeout would: every
    /// target still switching or staging fails with `reason` (and one switching is told to
    /// go back to its previous release, in case its agent is still at work), targets not
    /// asked yet are skipped, and switched targets go back. It ends `failed` once they have.
    /// Targets already going back are left to finish.
    pub fn pass_deadline(&mut self, reason: &str) -> Vec<Command> {
        if self.status != Status::Running {
            return Vec::new();
        }
        let mut commands = Vec::new();
        let mut stopped = false;
        for step in &mut self.steps {
            let target = step.target.clone();
            match step.state {
                TargetState::Deploying => {
                    step.state = TargetState::Failed {
                        reason: format!("{target}: {reason}"),
                    };
                    commands.push(Command::RollBack {
                        target,
                        to: step.previous.clone(),
                    });
                }
                TargetState::Staging => {
                    step.state = TargetState::Failed {
                        reason: format!("{target}: could not stage: {reason}"),
                    };
                }
                TargetState::Pending => {}
                _ => continue,
            }
            stopped = true;
        }
        if !stopped {
            return Vec::new();
        }
        if self.first_failure.is_none() {
            self.first_failure = Some(reason.to_owned());
        }
        commands.extend(self.advance());
        self.in_step_order(commands)
    }

    /// Records what `target` answered when asked to stage the release while the deployment
    /// awaits approval; nothing else changes. Whether it changed anything: an answer once
    /// the deployment started (or ended), about an unknown target, or the same as before,
    /// does not.
    pub fn note_ahead(&mut self, target: &str, ahead: Ahead) -> bool {
        if self.status != Status::AwaitingApproval {
            return false;
        }
        match self
            .steps
            .iter_mut()
            .find(|step| step.target == target && step.state == TargetState::Pending)
        {
            Some(step) if step.ahead.as_ref() != Some(&ahead) => {
                step.ahead = Some(ahead);
                true
            }
            _ => false,
        }
    }

    /// Applies a report about `target` and returns what must happen next. A report that
    /// does not fit the target's state (late, duplicated, unknown target) changes nothing.
    pub fn apply(&mut self, target: &str, report: Report) -> Vec<Command> {
        if self.status != Status::Running {
            return Vec::new();
        }
        let Some(index) = self.steps.iter().position(|s| s.target == target) else {
            return Vec::new();
        };
        let had_failed = self.steps.iter().any(|s| s.state.failure().is_some());
        let step = &mut self.steps[index];
        let was_deploying = step.state == TargetState::Deploying;
        match (&step.state, report) {
            (TargetState::Deploying, Report::Succeeded) => step.state = TargetState::Succeeded,
            (TargetState::Deploying, Report::RolledBack { reason }) => {
                step.state = TargetState::RolledBack {
                    reason: format!("{target}: {reason}"),
                }
            }
            (TargetState::Deploying, Report::Failed { reason } | Report::TimedOut { reason }) => {
                step.state = TargetState::Failed {
                    reason: format!("{target}: {reason}"),
                }
            }
            (TargetState::RollingBack, Report::Reverted) => step.state = TargetState::Reverted,
            (TargetState::Staging, Report::Staged) => step.state = TargetState::Staged,
            (
                TargetState::Staging,
                Report::Failed { reason }
                | Report::RolledBack { reason }
                | Report::TimedOut { reason },
            ) => {
                step.state = TargetState::Failed {
                    reason: format!("{target}: could not stage: {reason}"),
                }
            }
            (
                TargetState::RollingBack,
                Report::TimedOut { reason }
                | Report::Failed { reason }
                | Report::RolledBack { reason },
            ) => {
                step.state = TargetState::Failed {
                    reason: format!("{target}: could not go back: {reason}"),
                }
            }
            _ => return Vec::new(),
        }
        // A target that ended its deploy without the new release (it failed, went back by
        // itself, or stopped answering) is told to serve its previous one: nothing waits on
        // that, but an agent that comes back or restarts must never put the failed release
        // live.
        let mut commands = match (&step.state, was_deploying) {
            (TargetState::Failed { .. } | TargetState::RolledBack { .. }, true) => {
                vec![Command::RollBack {
                    target: step.target.clone(),
                    to: step.previous.clone(),
                }]
            }
            _ => Vec::new(),
        };
        if !had_failed {
            self.first_failure = self.steps[index].state.failure().map(str::to_owned);
        }
        commands.extend(self.advance());
        self.in_step_order(commands)
    }

    /// `commands` in the order of the steps they are for, as every change gives them.
    fn in_step_order(&self, mut commands: Vec<Command>) -> Vec<Command> {
        commands.sort_by_cached_key(|command| {
            self.steps
                .iter()
                .position(|step| step.target == command.target())
        });
        commands
    }

    /// Settles the commands of a change to a deployment of `version`: a target asked to go
    /// back to `version` itself (the deployment sent the release it already ran) is back
    /// already, so it counts as reverted instead of being asked; what follows from that is
    /// settled too.
    pub fn settle(&mut self, version: &str, mut commands: Vec<Command>) -> Vec<Command> {
        loop {
            let (back_already, rest): (Vec<Command>, Vec<Command>) =
                commands.into_iter().partition(|command| {
                    matches!(command, Command::RollBack { to: Some(to), .. } if to == version)
                        && self.steps.iter().any(|s| {
                            s.target == command.target() && s.state == TargetState::RollingBack
                        })
                });
            if back_already.is_empty() {
                return rest;
            }
            commands = rest;
            for command in back_already {
                commands.extend(self.apply(command.target(), Report::Reverted));
            }
        }
    }

    /// After a change: start the next rolling target, or roll back after a failure, or
    /// finish.
    fn advance(&mut self) -> Vec<Command> {
        // A deployment stored before `first_failure` was kept falls back to step order.
        let first_failure = self.first_failure.clone().or_else(|| {
            self.steps
                .iter()
                .find_map(|s| s.state.failure().map(str::to_owned))
        });
        if first_failure.is_some() || self.cancelled.is_some() {
            let mut commands = Vec::new();
            for step in &mut self.steps {
                match step.state {
                    TargetState::Succeeded => {
                        step.state = TargetState::RollingBack;
                        commands.push(Command::RollBack {
                            target: step.target.clone(),
                            to: step.previous.clone(),
                        });
                    }
                    TargetState::Pending => step.state = TargetState::Skipped,
                    _ => {}
                }
            }
            if self.steps.iter().all(|s| s.state.is_final()) {
                let could_not_go_back = self
                    .steps
                    .iter()
                    .any(|s| matches!(s.state, TargetState::Failed { .. }));
                (self.status, self.reason) = match &self.cancelled {
                    Some(cancelled) => (
                        Status::Cancelled,
                        Some(cancelled.describe(first_failure.as_deref())),
                    ),
                    None if could_not_go_back => (Status::Failed, first_failure),
                    None => (Status::RolledBack, first_failure),
                };
            }
            return commands;
        }
        if let Some(next) = self
            .steps
            .iter_mut()
            .find(|s| s.state == TargetState::Pending)
        {
            if self.strategy == Strategy::Rolling {
                next.state = TargetState::Deploying;
                return vec![Command::Deploy {
                    target: next.target.clone(),
                }];
            }
        }
        if self
            .steps
            .iter()
            .all(|s| matches!(s.state, TargetState::Succeeded | TargetState::Staged))
        {
            self.status = Status::Succeeded;
        }
        Vec::new()
    }

    /// The targets still owing an answer (to time out when silent too long).
    pub fn waiting_on(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    TargetState::Deploying | TargetState::RollingBack | TargetState::Staging
                )
            })
            .map(|s| s.target.as_str())
            .collect()
    }
}

#[cfg(test)]
mod every_path_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_release_is_a_finished_success_on_its_one_target() {
        let mut captured = Deployment::captured("web-1".into(), "1.0".into(), 7);
        assert_eq!(captured.status, Status::Succeeded);
        assert_eq!(captured.reason, None);
        assert!(captured.waiting_on().is_empty());
        assert_eq!(captured.steps[0].previous.as_deref(), Some("1.0"));
        // Nothing a late report says moves it.
        assert!(captured.apply("web-1", Report::Succeeded).is_empty());
        assert_eq!(captured.status, Status::Succeeded);
    }

    /// Runs a deployment over targets `a`, `b`, `c` (each with previous release `v1`, or
    /// none for names in `fresh`) through `reports`, and returns a trace of the commands,
    /// then each target's final state and the status.
    fn run(strategy: Strategy, fresh: &[&str], reports: &[(&str, Report)]) -> String {
        let targets = ["a", "b", "c"]
            .iter()
            .map(|t| (t.to_string(), (!fresh.contains(t)).then(|| "v1".to_owned())))
            .collect();
        let mut deployment = Deployment::new(strategy, targets);
        let mut trace = vec![commands(&deployment.start(0))];
        for (target, report) in reports {
            trace.push(commands(&deployment.apply(target, report.clone())));
        }
        let states: Vec<String> = deployment
            .steps
            .iter()
            .map(|s| format!("{}={}", s.target, short(&s.state)))
            .collect();
        format!(
            "{} | {} | {:?}",
            trace.join(" "),
            states.join(" "),
            deployment.status
        )
    }

    fn commands(commands: &[Command]) -> String {
        let parts: Vec<String> = commands
            .iter()
            .map(|c| match c {
                Command::Deploy { target } => format!("deploy:{target}"),
                Command::RollBack { target, to } => {
                    format!("back:{target}>{}", to.as_deref().unwrap_or("none"))
                }
                Command::Stage { target } => format!("stage:{target}"),
            })
            .collect();
        format!("[{}]", parts.join(","))
    }

    /// A target state's short name, for test failures.
    pub(super) fn short(state: &TargetState) -> &'static str {
        match state {
            TargetState::Pending => "pending",
            TargetState::Deploying => "deploying",
            TargetState::Succeeded => "ok",
            TargetState::RolledBack { .. } => "rolledback",
            TargetState::Failed { .. } => "failed",
            TargetState::RollingBack => "rollingback",
            TargetState::Reverted => "reverted",
            TargetState::Skipped => "skipped",
            TargetState::Staging => "staging",
            TargetState::Staged => "staged",
        }
    }

    fn ok() -> Report {
        Report::Succeeded
    }
    fn bad() -> Report {
        Report::RolledBack {
            reason: "health check failed".into(),
        }
    }
    fn dead() -> Report {
        Report::TimedOut {
            reason: "no answer in 5m".into(),
        }
    }

    #[test]
    fn the_lifecycle_from_awaiting_approval() {
        /// (what happens after the deployment is left awaiting approval, status, reason,
        /// the first target's state)
        type Case = (&'static str, Status, Option<&'static str>, &'static str);
        let cases: [Case; 3] = [
            ("approve", Status::Running, None, "deploying"),
            (
                "reject",
                Status::Rejected,
                Some("rejected by lee: not today"),
                "skipped",
            ),
            (
                "withdraw",
                Status::Withdrawn,
                Some("withdrawn by dana: wrong build"),
                "skipped",
            ),
        ];
        for (what, status, reason, first) in cases {
            let mut deployment = Deployment::new(
                Strategy::Rolling,
                vec![("a".into(), Some("v1".into())), ("b".into(), None)],
            );
            let staged = deployment.await_approval();
            assert_eq!(commands(&staged), "[stage:a,stage:b]", "{what}");
            assert_eq!(deployment.status, Status::AwaitingApproval, "{what}");
            match what {
                "approve" => {
                    assert_eq!(commands(&deployment.start(0)), "[deploy:a]");
                }
                "reject" => deployment
                    .refuse(Refusal::Rejected {
                        by: "lee".into(),
                        reason: "not today".into(),
                    })
                    .unwrap(),
                _ => deployment
                    .refuse(Refusal::Withdrawn {
                        by: "dana".into(),
                        reason: "wrong build".into(),
                    })
                    .unwrap(),
            }
            assert_eq!(
                (
                    deployment.status,
                    deployment.reason.as_deref(),
                    short(&deployment.steps[0].state)
                ),
                (status, reason, first),
                "{what}"
            );
        }
    }

    #[test]
    fn only_a_deployment_awaiting_approval_can_be_refused() {
        let refusal = || Refusal::Rejected {
            by: "lee".into(),
            reason: "no".into(),
        };
        let mut running = Deployment::new(Strategy::Parallel, vec![("a".into(), None)]);
        running.start(0);
        let mut refused = Deployment::new(Strategy::Parallel, vec![("a".into(), None)]);
        refused.await_approval();
        refused.refuse(refusal()).unwrap();
        for (mut deployment, status) in [(running, Status::Running), (refused, Status::Rejected)] {
            let before = deployment.clone();
            assert_eq!(
                deployment.refuse(refusal()),
                Err(NotAwaitingApproval { status })
            );
            assert_eq!(deployment, before, "a refused transition changes nothing");
        }
    }

    #[test]
    fn a_cancel_ends_a_waiting_deployment_at_once_and_a_running_one_once_switched_targets_are_back()
    {
        let two = || vec![("a".into(), Some("v1".into())), ("b".into(), None)];
        let mut waiting = Deployment::new(Strategy::Rolling, two());
        waiting.await_approval();
        assert_eq!(waiting.cancel("dana", "wrong build"), Ok(Vec::new()));
        assert_eq!(
            (waiting.status, waiting.reason.as_deref()),
            (Status::Cancelled, Some("cancelled by dana: wrong build"))
        );

        let mut running = Deployment::new(Strategy::Rolling, two());
        running.start(0);
        running.apply("a", Report::Succeeded);
        let back = running.cancel("dana", "wrong build").unwrap();
        assert_eq!(commands(&back), "[back:a>v1]", "b is still switching");
        assert_eq!(
            running.cancel("lee", "again"),
            Err(CannotCancel::Cancelling { by: "dana".into() })
        );
        // b finishes its switch, and is sent back too.
        assert_eq!(commands(&running.apply("b", ok())), "[back:b>none]");
        running.apply("a", Report::Reverted);
        assert_eq!(running.status, Status::Running);
        running.apply("b", Report::Reverted);
        assert_eq!(
            (running.status, running.reason.as_deref()),
            (Status::Cancelled, Some("cancelled by dana: wrong build"))
        );
        let before = running.clone();
        assert_eq!(
            running.cancel("lee", "late"),
            Err(CannotCancel::Finished {
                status: Status::Cancelled
            })
        );
        assert_eq!(running, before, "a refused cancel changes nothing");
    }

    #[test]
    fn past_its_deadline_a_deployment_fails_and_switched_targets_go_back() {
        let three = ["a", "b", "c"]
            .iter()
            .map(|t| (t.to_string(), Some("v1".to_owned())))
            .collect();
        let mut deployment = Deployment::new(Strategy::Rolling, three);
        deployment.start(1_000);
        assert!(!deployment.is_past(60_000, 61_000, 0));
        assert!(deployment.is_past(60_000, 61_001, 0));
        deployment.apply("a", ok());
        let commands = deployment.pass_deadline("did not finish within its deadline of 1m");
        assert_eq!(
            super::tests::commands(&commands),
            "[back:a>v1,back:b>v1]",
            "b was switching: it is told to go back too"
        );
        assert_eq!(deployment.waiting_on(), ["a"], "b is not waited for");
        assert!(deployment.pass_deadline("again").is_empty());
        deployment.apply("a", Report::Reverted);
        assert_eq!(deployment.status, Status::Failed);
        assert_eq!(
            deployment.reason.as_deref(),
            Some("did not finish within its deadline of 1m")
        );
        assert_eq!(short(&deployment.steps[2].state), "skipped");
    }

    #[test]
    fn agent_outcomes_as_reports() {
        let failed = || Report::Failed { reason: "x".into() };
        type Case = (TargetState, Outcome, Option<Report>);
        let cases: Vec<Case> = vec![
            (TargetState::Staging, Outcome::Staged, Some(Report::Staged)),
            (TargetState::Staging, Outcome::StageFailed, Some(failed())),
            (TargetState::Staging, Outcome::Succeeded, None),
            (
                TargetState::Deploying,
                Outcome::Succeeded,
                Some(Report::Succeeded),
            ),
            (
                TargetState::Deploying,
                Outcome::RolledBack,
                Some(Report::RolledBack { reason: "x".into() }),
            ),
            (TargetState::Deploying, Outcome::Failed, Some(failed())),
            (TargetState::Deploying, Outcome::Staged, None),
            (TargetState::Deploying, Outcome::Progress, None),
            (
                TargetState::RollingBack,
                Outcome::Succeeded,
                Some(Report::Reverted),
            ),
            (TargetState::RollingBack, Outcome::Failed, Some(failed())),
            (TargetState::RollingBack, Outcome::Progress, None),
            (TargetState::Succeeded, Outcome::Succeeded, None),
            (TargetState::Pending, Outcome::Succeeded, None),
        ];
        for (state, outcome, report) in cases {
            assert_eq!(
                Report::from_agent(&state, outcome, "x"),
                report,
                "{state:?} {outcome}"
            );
        }
    }

    #[test]
    fn rolling() {
        use Strategy::Rolling;
        type Case<'a> = (&'a [&'a str], Vec<(&'a str, Report)>, &'a str);
        let cases: Vec<Case> = vec![
            (&[], vec![("a", ok()), ("b", ok()), ("c", ok())],
                "[deploy:a] [deploy:b] [deploy:c] [] | a=ok b=ok c=ok | Succeeded"),
            (&[], vec![("a", bad())],
                "[deploy:a] [back:a>v1] | a=rolledback b=skipped c=skipped | RolledBack"),
            (&[], vec![("a", ok()), ("b", bad()), ("a", Report::Reverted)],
                "[deploy:a] [deploy:b] [back:a>v1,back:b>v1] [] | a=reverted b=rolledback c=skipped | RolledBack"),
            (&[], vec![("a", ok()), ("b", ok()), ("c", dead()), ("a", Report::Reverted), ("b", Report::Reverted)],
                "[deploy:a] [deploy:b] [deploy:c] [back:a>v1,back:b>v1,back:c>v1] [] [] | a=reverted b=reverted c=failed | Failed"),
            (&[], vec![("a", ok()), ("b", bad()), ("a", dead())],
                "[deploy:a] [deploy:b] [back:a>v1,back:b>v1] [] | a=failed b=rolledback c=skipped | Failed"),
            (&["a"], vec![("a", Report::Failed { reason: "before_switch hook failed".into() })],
                "[deploy:a] [back:a>none] | a=failed b=skipped c=skipped | Failed"),
            (&["a"], vec![("a", ok()), ("b", bad()), ("a", Report::Reverted)],
                "[deploy:a] [deploy:b] [back:a>none,back:b>v1] [] | a=reverted b=rolledback c=skipped | RolledBack"),
        ];
        for (fresh, reports, expected) in cases {
            assert_eq!(run(Rolling, fresh, &reports), expected, "{reports:?}");
        }
    }

    #[test]
    fn parallel() {
        use Strategy::Parallel;
        let cases: Vec<(Vec<(&str, Report)>, &str)> = vec![
            (vec![("c", ok()), ("a", ok()), ("b", ok())],
                "[deploy:a,deploy:b,deploy:c] [] [] [] | a=ok b=ok c=ok | Succeeded"),
            (vec![("a", ok()), ("b", bad()), ("c", ok()), ("a", Report::Reverted), ("c", Report::Reverted)],
                "[deploy:a,deploy:b,deploy:c] [] [back:a>v1,back:b>v1] [back:c>v1] [] [] | a=reverted b=rolledback c=reverted | RolledBack"),
            (vec![("a", bad()), ("b", bad()), ("c", bad())],
                "[deploy:a,deploy:b,deploy:c] [back:a>v1] [back:b>v1] [back:c>v1] | a=rolledback b=rolledback c=rolledback | RolledBack"),
        ];
        for (reports, expected) in cases {
            assert_eq!(run(Parallel, &[], &reports), expected, "{reports:?}");
        }
    }

    /// Like `run`, for a stage-only deployment.
    fn run_staging(reports: &[(&str, Report)]) -> String {
        let targets = ["a", "b"]
            .iter()
            .map(|t| (t.to_string(), Some("v1".to_owned())))
            .collect();
        let mut deployment = Deployment::staging(targets);
        let mut trace = vec![commands(&deployment.start(0))];
        for (target, report) in reports {
            trace.push(commands(&deployment.apply(target, report.clone())));
        }
        let states: Vec<String> = deployment
            .steps
            .iter()
            .map(|s| format!("{}={}", s.target, short(&s.state)))
            .collect();
        format!(
            "{} | {} | {:?}",
            trace.join(" "),
            states.join(" "),
            deployment.status
        )
    }

    #[test]
    fn stage_only() {
        let failed = || Report::Failed {
            reason: "disk full".into(),
        };
        let cases: Vec<(Vec<(&str, Report)>, &str)> = vec![
            (
                vec![("b", Report::Staged), ("a", Report::Staged)],
                "[stage:a,stage:b] [] [] | a=staged b=staged | Succeeded",
            ),
            (
                vec![("a", Report::Staged)],
                "[stage:a,stage:b] [] | a=staged b=staging | Running",
            ),
            // Nothing switched, so nothing is rolled back.
            (
                vec![("a", Report::Staged), ("b", failed())],
                "[stage:a,stage:b] [] [] | a=staged b=failed | Failed",
            ),
            (
                vec![("a", dead()), ("b", Report::Staged)],
                "[stage:a,stage:b] [] [] | a=failed b=staged | Failed",
            ),
            // Deploy reports do not fit a staging target.
            (
                vec![
                    ("a", ok()),
                    ("b", Report::Reverted),
                    ("a", Report::Staged),
                    ("a", Report::Staged),
                ],
                "[stage:a,stage:b] [] [] [] [] | a=staged b=staging | Running",
            ),
        ];
        for (reports, expected) in cases {
            assert_eq!(run_staging(&reports), expected, "{reports:?}");
        }
    }

    #[test]
    fn staging_reports_do_not_move_a_deployment() {
        let trace = run(
            Strategy::Rolling,
            &[],
            &[("b", Report::Staged), ("a", Report::Staged), ("a", ok())],
        );
        assert_eq!(
            trace,
            "[deploy:a] [] [] [deploy:b] | a=ok b=deploying c=pending | Running"
        );
    }

    #[test]
    fn stage_ahead_asks_the_targets_not_asked_yet() {
        let mut deployment = Deployment::new(
            Strategy::Rolling,
            vec![("a".into(), None), ("b".into(), None)],
        );
        assert_eq!(commands(&deployment.stage_ahead()), "[stage:a,stage:b]");
        deployment.start(0);
        assert_eq!(commands(&deployment.stage_ahead()), "[stage:b]");
        assert_eq!(deployment.waiting_on(), ["a"]);
    }

    #[test]
    fn staging_ahead_is_noted_only_while_awaiting_approval() {
        let failed = || Ahead::Failed {
            reason: "disk full".into(),
        };
        let ahead = |deployment: &Deployment| -> Vec<Option<Ahead>> {
            deployment.steps.iter().map(|s| s.ahead.clone()).collect()
        };
        let mut deployment = Deployment::new(
            Strategy::Rolling,
            vec![("a".into(), None), ("b".into(), None)],
        );
        // Not awaiting approval yet: nothing is noted.
        assert!(!deployment.note_ahead("a", Ahead::Staged));
        deployment.await_approval();
        for (target, answer, changed) in [
            ("a", Ahead::Staged, true),
            ("a", Ahead::Staged, false),
            ("b", failed(), true),
            ("c", Ahead::Staged, false),
            // A target that failed may succeed when it tries again.
            ("b", Ahead::Staged, true),
            ("b", failed(), true),
        ] {
            assert_eq!(
                deployment.note_ahead(target, answer.clone()),
                changed,
                "{target} {answer:?}"
            );
        }
        assert_eq!(ahead(&deployment), [Some(Ahead::Staged), Some(failed())]);
        assert_eq!(deployment.status, Status::AwaitingApproval);
        // Once it starts, answers about staging ahead change nothing, and what was noted
        // stays.
        deployment.start(0);
        assert!(!deployment.note_ahead("b", Ahead::Staged));
        assert_eq!(ahead(&deployment), [Some(Ahead::Staged), Some(failed())]);
    }

    #[test]
    fn a_deployment_stored_before_staging_ahead_was_noted_still_reads() {
        let stored = r#"{"target":"a","previous":null,"state":"pending"}"#;
        let step: TargetStep = serde_json::from_str(stored).unwrap();
        assert_eq!(step.ahead, None);
        let noted = TargetStep {
            ahead: Some(Ahead::Failed { reason: "x".into() }),
            ..step
        };
        let text = serde_json::to_string(&noted).unwrap();
        assert_eq!(serde_json::from_str::<TargetStep>(&text).unwrap(), noted);
    }

    #[test]
    fn late_duplicate_and_unknown_reports_change_nothing() {
        let trace = run(
            Strategy::Rolling,
            &[],
            &[
                ("b", ok()),
                ("zz", ok()),
                ("a", Report::Reverted),
                ("a", ok()),
                ("a", ok()),
                ("b", ok()),
                ("c", ok()),
                ("c", bad()),
            ],
        );
        assert_eq!(
            trace,
            "[deploy:a] [] [] [] [deploy:b] [] [deploy:c] [] [] | a=ok b=ok c=ok | Succeeded"
        );
    }

    #[test]
    fn no_target_fails_at_once_with_a_reason() {
        let mut deployment = Deployment::new(Strategy::Rolling, Vec::new());
        assert!(deployment.start(0).is_empty());
        assert_eq!(deployment.status, Status::Failed);
        assert!(deployment.reason.unwrap().contains("placed on no target"));
    }

    /// Regression: the reason was the failure of the first target in step order, so a
    /// target that then failed to go back, or a parallel target listed earlier that failed
    /// later, hid the failure that stopped the deployment.
    #[test]
    fn the_reason_is_the_failure_that_came_first_not_the_first_target_listed() {
        let three = || {
            ["a", "b", "c"]
                .iter()
                .map(|t| (t.to_string(), Some("v1".to_owned())))
                .collect()
        };
        type Case<'a> = (Strategy, Vec<(&'a str, Report)>, &'a str);
        let cases: Vec<Case> = vec![
            (
                Strategy::Rolling,
                vec![("a", ok()), ("b", bad()), ("a", dead())],
                "b: health check failed",
            ),
            (
                Strategy::Parallel,
                vec![("c", bad()), ("a", bad()), ("b", bad())],
                "c: health check failed",
            ),
            (
                Strategy::Parallel,
                vec![
                    ("a", ok()),
                    ("c", dead()),
                    ("b", ok()),
                    ("a", Report::Reverted),
                    ("b", dead()),
                ],
                "c: no answer in 5m",
            ),
        ];
        for (strategy, reports, expected) in cases {
            let mut deployment = Deployment::new(strategy, three());
            deployment.start(0);
            for (target, report) in &reports {
                deployment.apply(target, report.clone());
            }
            assert_ne!(deployment.status, Status::Running, "{reports:?}");
            assert_eq!(deployment.reason.as_deref(), Some(expected), "{reports:?}");
        }
    }

    /// A deployment stored before the first failure was kept still ends with a reason.
    #[test]
    fn a_deployment_stored_without_its_first_failure_still_gets_a_reason() {
        let step = |target: &str, state| TargetStep {
            target: target.into(),
            previous: Some("v1".into()),
            state,
            ahead: None,
        };
        let failed = TargetState::RolledBack {
            reason: "b: health check failed".into(),
        };
        let mut deployment = Deployment {
            steps: vec![step("a", TargetState::RollingBack), step("b", failed)],
            ..Deployment::new(Strategy::Rolling, Vec::new())
        };
        deployment.apply("a", Report::Reverted);
        assert_eq!(deployment.status, Status::RolledBack);
        assert_eq!(deployment.reason.as_deref(), Some("b: health check failed"));
    }

    #[test]
    fn the_first_failure_is_the_reason_and_waiting_targets_are_listed() {
        let mut deployment = Deployment::new(
            Strategy::Parallel,
            vec![
                ("a".into(), Some("v1".into())),
                ("b".into(), Some("v1".into())),
            ],
        );
        deployment.start(0);
        assert_eq!(deployment.waiting_on(), ["a", "b"]);
        deployment.apply(
            "a",
            Report::RolledBack {
                reason: "health check failed".into(),
            },
        );
        assert_eq!(deployment.waiting_on(), ["b"]);
        deployment.apply(
            "b",
            Report::TimedOut {
                reason: "no answer in 5m".into(),
            },
        );
        assert_eq!(deployment.status, Status::Failed);
        assert_eq!(deployment.reason.as_deref(), Some("a: health check failed"));
    }
}
