//! Every path through a deployment: for 1, 2 and 3 targets, rolling, parallel and
//! stage-only, with and without a previous release on each target, every sequence of
//! reports agents could send (and timeouts), with a cancel and the deadline passing at any
//! point, until the deployment finishes. Invariants are
//! checked on every state reached, on every transition, and on every finished deployment.
//!
//! A small world around the machine remembers what each target was asked and has not
//! answered yet, and what it serves as far as its answers tell, so the checks judge the
//! commands by their effect and not by how the machine computes them.

mod invariants;

use std::collections::HashSet;

use super::tests::short;
use super::*;
use invariants::*;

/// The release being deployed, as the world model records it.
const NEW: &str = "new";

/// A name no target has.
const UNKNOWN_TARGET: &str = "zz";

/// Why the deadline stops a deployment.
const DEADLINE: &str = "did not finish within its deadline";

/// What can stop a running deployment besides reports.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Cancel,
    Deadline,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rolling,
    Parallel,
    StageOnly,
}

/// What a target serves, as far as its answers tell.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Serving {
    /// This release (`None`: nothing).
    Release(Option<String>),
    /// It failed or went silent: nobody knows.
    Unknown,
}

/// The deployment and what the orchestrator knows around it.
#[derive(Clone, Debug)]
struct World {
    kind: Kind,
    deployment: Deployment,
    /// The command each target was given and has not answered yet.
    asked: Vec<Option<Command>>,
    serving: Vec<Serving>,
    /// The reason of the first target that failed, in the order reports arrived.
    first_failure: Option<String>,
    /// The reports (and stops) that led here, for failure messages.
    path: Vec<String>,
}

impl World {
    fn target_index(&self, target: &str) -> Option<usize> {
        self.deployment
            .steps
            .iter()
            .position(|s| s.target == target)
    }

    fn previous(&self, index: usize) -> Serving {
        Serving::Release(self.deployment.steps[index].previous.clone())
    }

    fn has_failure(&self) -> bool {
        self.deployment
            .steps
            .iter()
            .any(|s| s.state.failure().is_some())
    }

    /// Records what `commands` ask, refusing a second question to a target that owes an
    /// answer.
    fn ask(&mut self, commands: &[Command]) -> Result<(), String> {
        for command in commands {
            let target = command.target();
            let index = self
                .target_index(target)
                .ok_or_else(|| format!("a command for unknown target {target}: {command:?}"))?;
            check_one_question_at_a_time(&self.asked[index], command)?;
            self.asked[index] = Some(command.clone());
        }
        Ok(())
    }

    /// Records what a stop (a cancel, the deadline) did: a target it made final no longer
    /// owes an answer (one that was switching may have switched or not: nobody knows), a
    /// rollback sent to such a target is not waited for, and the others are asked.
    fn stopped(&mut self, before: &Deployment, commands: &[Command]) -> Result<(), String> {
        for (index, (was, now)) in before.steps.iter().zip(&self.deployment.steps).enumerate() {
            if !was.state.is_final() && now.state.is_final() {
                self.asked[index] = None;
                if was.state == TargetState::Deploying {
                    self.serving[index] = Serving::Unknown;
                }
            }
        }
        let waited: Vec<Command> = commands
            .iter()
            .filter(|c| {
                let index = self.target_index(c.target()).unwrap();
                !self.deployment.steps[index].state.is_final()
            })
            .cloned()
            .collect();
        if self.first_failure.is_none() && self.has_failure() {
            self.first_failure = Some(DEADLINE.to_owned());
        }
        self.ask(&waited)
    }

    /// Records an answer the machine accepted: what the target now serves, and the first
    /// failure.
    fn answered(&mut self, index: usize, report: &Report) {
        let asked = self.asked[index].take();
        self.serving[index] = match (asked, report) {
            (Some(Command::Deploy { .. }), Report::Succeeded) => {
                Serving::Release(Some(NEW.to_owned()))
            }
            (Some(Command::Deploy { .. }), Report::RolledBack { .. }) => self.previous(index),
            (Some(Command::RollBack { to, .. }), Report::Reverted) => Serving::Release(to),
            (Some(Command::Stage { .. }), _) => self.serving[index].clone(),
            _ => Serving::Unknown,
        };
        if self.first_failure.is_none() {
            self.first_failure = self.deployment.steps[index]
                .state
                .failure()
                .map(str::to_owned);
        }
    }
}

/// Every report an agent (or the timeout pass) can send.
fn every_report() -> Vec<Report> {
    vec![
        Report::Succeeded,
        Report::RolledBack {
            reason: "health check failed".into(),
        },
        Report::Failed {
            reason: "disk full".into(),
        },
        Report::Reverted,
        Report::TimedOut {
            reason: "no answer".into(),
        },
        Report::Staged,
    ]
}

/// The state a report moves a target in `state` to, or `None` when it does not fit.
fn expected_answer(state: &TargetState, report: &Report) -> Option<&'static str> {
    match (state, report) {
        (TargetState::Deploying, Report::Succeeded) => Some("ok"),
        (TargetState::Deploying, Report::RolledBack { .. }) => Some("rolledback"),
        (TargetState::Deploying, Report::Failed { .. } | Report::TimedOut { .. }) => Some("failed"),
        (TargetState::RollingBack, Report::Reverted) => Some("reverted"),
        (TargetState::Staging, Report::Staged) => Some("staged"),
        (
            TargetState::RollingBack | TargetState::Staging,
            Report::Failed { .. } | Report::RolledBack { .. } | Report::TimedOut { .. },
        ) => Some("failed"),
        _ => None,
    }
}

/// The world after `start`, for targets `a`, `b`, … with the given previous releases.
fn started(kind: Kind, previous: &[Option<String>]) -> Result<World, String> {
    let targets: Vec<(String, Option<String>)> = previous
        .iter()
        .enumerate()
        .map(|(i, previous)| (((b'a' + i as u8) as char).to_string(), previous.clone()))
        .collect();
    let mut deployment = match kind {
        Kind::Rolling => Deployment::new(Strategy::Rolling, targets),
        Kind::Parallel => Deployment::new(Strategy::Parallel, targets),
        Kind::StageOnly => Deployment::staging(targets),
    };
    let before = deployment.clone();
    let commands = deployment.start(0);
    check_commands_follow_transitions(&before, &deployment, "", &commands)?;
    let n_first = match kind {
        Kind::Rolling => 1,
        Kind::Parallel | Kind::StageOnly => previous.len(),
    };
    ensure(commands.len() == n_first, || {
        format!("start asks {commands:?}")
    })?;
    let mut world = World {
        kind,
        serving: (0..previous.len())
            .map(|i| Serving::Release(previous[i].clone()))
            .collect(),
        asked: vec![None; previous.len()],
        deployment,
        first_failure: None,
        path: Vec::new(),
    };
    world.ask(&commands)?;
    Ok(world)
}

/// How many finished paths ended in each status, and how many states were visited.
#[derive(Debug, Default)]
struct Explored {
    n_states: usize,
    succeeded: usize,
    rolled_back: usize,
    failed: usize,
    cancelled: usize,
}

/// Explores, depth first, every sequence of reports from `start` until the deployment
/// finishes, checking every invariant; the first broken one is returned with its path.
fn explore(start: World) -> Result<Explored, String> {
    let mut explored = Explored::default();
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    let mut target_names: Vec<String> = stack[0]
        .deployment
        .steps
        .iter()
        .map(|s| s.target.clone())
        .collect();
    target_names.push(UNKNOWN_TARGET.to_owned());
    while let Some(world) = stack.pop() {
        let key = format!(
            "{:?}",
            (
                &world.deployment,
                &world.asked,
                &world.serving,
                &world.first_failure
            )
        );
        if !seen.insert(key) {
            continue;
        }
        explored.n_states += 1;
        let at = |error: String| format!("{:?} after {:?}: {error}", world.kind, world.path);
        check_state(&world).map_err(at)?;
        match world.deployment.status {
            Status::Running => {}
            status => {
                check_finished(&world).map_err(at)?;
                match status {
                    Status::Succeeded => explored.succeeded += 1,
                    Status::RolledBack => explored.rolled_back += 1,
                    Status::Cancelled => explored.cancelled += 1,
                    _ => explored.failed += 1,
                }
                continue;
            }
        }
        for target in &target_names {
            for report in every_report() {
                let mut next = world.clone();
                let commands = next.deployment.apply(target, report.clone());
                let at = |error: String| {
                    format!(
                        "{:?} after {:?} then {target} {report:?}: {error}",
                        world.kind, world.path
                    )
                };
                check_reports_land_as_they_say(
                    &world,
                    &next.deployment,
                    target,
                    &report,
                    &commands,
                )
                .map_err(at)?;
                if next.deployment == world.deployment {
                    continue;
                }
                check_commands_follow_transitions(
                    &world.deployment,
                    &next.deployment,
                    target,
                    &commands,
                )
                .map_err(at)?;
                check_no_deploy_after_a_failure(&next, &commands).map_err(at)?;
                let index = next.target_index(target).unwrap();
                next.answered(index, &report);
                // A command to a target already final (told to serve its previous release
                // after its deploy failed) is not waited for.
                let waited: Vec<Command> = commands
                    .iter()
                    .filter(|c| {
                        let index = next.target_index(c.target()).unwrap();
                        !next.deployment.steps[index].state.is_final()
                    })
                    .cloned()
                    .collect();
                next.ask(&waited).map_err(at)?;
                next.path.push(format!("{target} {report:?}"));
                stack.push(next);
            }
        }
        for stop in [Stop::Cancel, Stop::Deadline] {
            let mut next = world.clone();
            let commands = match stop {
                Stop::Cancel => match next.deployment.cancel("lee", "wrong build") {
                    Ok(commands) => commands,
                    Err(_) => continue,
                },
                Stop::Deadline => next.deployment.pass_deadline(DEADLINE),
            };
            if next.deployment == world.deployment {
                continue;
            }
            let at = |error: String| {
                format!(
                    "{:?} after {:?} then {stop:?}: {error}",
                    world.kind, world.path
                )
            };
            check_commands_follow_transitions(&world.deployment, &next.deployment, "", &commands)
                .map_err(at)?;
            check_no_deploy_after_a_failure(&next, &commands).map_err(at)?;
            next.stopped(&world.deployment, &commands).map_err(at)?;
            next.path.push(format!("{stop:?}"));
            stack.push(next);
        }
    }
    Ok(explored)
}

/// Every combination of a previous release (`old-a`, …) or none for `n_targets` targets.
fn previous_releases(n_targets: usize) -> Vec<Vec<Option<String>>> {
    (0..1u32 << n_targets)
        .map(|fresh| {
            (0..n_targets)
                .map(|i| {
                    (fresh & (1 << i) == 0).then(|| format!("old-{}", (b'a' + i as u8) as char))
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_sequence_of_reports_keeps_the_invariants() {
    for kind in [Kind::Rolling, Kind::Parallel, Kind::StageOnly] {
        let mut total = Explored::default();
        for n_targets in 1..=3 {
            for previous in previous_releases(n_targets) {
                let explored = started(kind, &previous)
                    .and_then(explore)
                    .unwrap_or_else(|error| panic!("{previous:?}: {error}"));
                total.n_states += explored.n_states;
                total.succeeded += explored.succeeded;
                total.rolled_back += explored.rolled_back;
                total.failed += explored.failed;
                total.cancelled += explored.cancelled;
            }
        }
        // The checks saw every ending this kind of deployment can have.
        let can_roll_back = kind != Kind::StageOnly;
        assert!(
            total.succeeded > 0
                && (total.rolled_back > 0) == can_roll_back
                && total.failed > 0
                && total.cancelled > 0,
            "{kind:?}: {total:?}"
        );
    }
}
