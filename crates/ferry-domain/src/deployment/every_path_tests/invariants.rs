//! The invariants of a deployment, checked on every state the exploration reaches, on
//! every transition, and on every finished deployment. Each is one function, so a broken
//! one names itself.

use super::*;

pub(super) type Check = Result<(), String>;

pub(super) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Check {
    if condition {
        Ok(())
    } else {
        Err(message())
    }
}

// Invariants of every state reached.

/// Rolling: at most one target deploys at a time.
pub(super) fn check_rolling_deploys_one_target_at_a_time(world: &World) -> Check {
    let n_deploying = world
        .deployment
        .steps
        .iter()
        .filter(|s| s.state == TargetState::Deploying)
        .count();
    ensure(world.kind != Kind::Rolling || n_deploying <= 1, || {
        format!("{n_deploying} targets deploy at once")
    })
}

/// Rolling: targets take their turn in order: no target is left pending before one that
/// was asked.
pub(super) fn check_rolling_goes_in_order(world: &World) -> Check {
    if world.kind != Kind::Rolling {
        return Ok(());
    }
    let steps = &world.deployment.steps;
    let last_asked = steps
        .iter()
        .rposition(|s| !matches!(s.state, TargetState::Pending | TargetState::Skipped));
    let first_waiting = steps
        .iter()
        .position(|s| matches!(s.state, TargetState::Pending | TargetState::Skipped));
    ensure(
        matches!((last_asked, first_waiting), (Some(a), Some(w)) if a < w)
            || last_asked.is_none()
            || first_waiting.is_none(),
        || "a target deployed before an earlier one had its turn".into(),
    )
}

/// The machine waits on exactly the targets that were asked something and have not
/// answered, so the timeout pass covers every open question and no other.
pub(super) fn check_waiting_on_is_what_was_asked(world: &World) -> Check {
    let asked: Vec<&str> = world
        .deployment
        .steps
        .iter()
        .zip(&world.asked)
        .filter(|(_, asked)| asked.is_some())
        .map(|(s, _)| s.target.as_str())
        .collect();
    let waiting = world.deployment.waiting_on();
    ensure(waiting == asked, || {
        format!("waiting on {waiting:?}, but asked {asked:?}")
    })
}

/// After a failure (or a cancel) no target is left pending (the rest are skipped) and none stays on the
/// new release: every target that switched is going back, went back, or failed.
pub(super) fn check_a_failure_skips_the_rest_and_rolls_back(world: &World) -> Check {
    if !world.has_failure() && world.deployment.cancelled.is_none() {
        return Ok(());
    }
    let left = world
        .deployment
        .steps
        .iter()
        .find(|s| matches!(s.state, TargetState::Pending | TargetState::Succeeded));
    ensure(left.is_none(), || {
        format!(
            "after a failure {} is still {}",
            left.unwrap().target,
            short(&left.unwrap().state)
        )
    })
}

/// A target asked nothing that switches serves its previous release.
pub(super) fn check_untouched_targets_serve_their_previous_release(world: &World) -> Check {
    for (index, step) in world.deployment.steps.iter().enumerate() {
        if matches!(
            step.state,
            TargetState::Pending
                | TargetState::Skipped
                | TargetState::Staging
                | TargetState::Staged
        ) {
            ensure(world.serving[index] == world.previous(index), || {
                format!(
                    "{} is {} but serves {:?}",
                    step.target,
                    short(&step.state),
                    world.serving[index]
                )
            })?;
        }
    }
    Ok(())
}

/// A deployment runs exactly as long as some target is not final, and a running one always
/// waits on a target, so a timeout can move it on.
pub(super) fn check_running_until_every_target_is_final(world: &World) -> Check {
    let all_final = world.deployment.steps.iter().all(|s| s.state.is_final());
    let running = world.deployment.status == Status::Running;
    ensure(running != all_final, || {
        format!(
            "status {:?} with every target final: {all_final}",
            world.deployment.status
        )
    })?;
    ensure(
        !running || !world.deployment.waiting_on().is_empty(),
        || "running, but waiting on no target".into(),
    )
}

/// Staging ahead asks only targets not asked yet, and none once a failure stopped the
/// deployment.
pub(super) fn check_stage_ahead_asks_only_targets_not_asked_yet(world: &World) -> Check {
    for command in world.deployment.stage_ahead() {
        let index = world.target_index(command.target()).unwrap();
        let state = &world.deployment.steps[index].state;
        ensure(
            matches!(command, Command::Stage { .. }) && *state == TargetState::Pending,
            || format!("stage ahead asks {command:?} of a target {}", short(state)),
        )?;
    }
    ensure(
        !world.has_failure() || world.deployment.stage_ahead().is_empty(),
        || "stage ahead after a failure".into(),
    )
}

/// A stage-only deployment never switches a target: its targets only stage (or stop
/// staging, cancelled).
pub(super) fn check_stage_only_switches_nothing(world: &World) -> Check {
    if world.kind != Kind::StageOnly {
        return Ok(());
    }
    for step in &world.deployment.steps {
        ensure(
            matches!(
                step.state,
                TargetState::Staging
                    | TargetState::Staged
                    | TargetState::Failed { .. }
                    | TargetState::Skipped
            ),
            || {
                format!(
                    "stage-only target {} is {}",
                    step.target,
                    short(&step.state)
                )
            },
        )?;
    }
    Ok(())
}

// Invariants of every transition.

/// A target that owes an answer is not asked something else before it answers.
pub(super) fn check_one_question_at_a_time(asked: &Option<Command>, command: &Command) -> Check {
    ensure(asked.is_none(), || {
        format!("{command:?} while {asked:?} is unanswered")
    })
}

/// A report moves its target exactly as the report says, or, when it does not fit the
/// target's state (not waited on, wrong report, unknown target), changes nothing and
/// asks nothing.
pub(super) fn check_reports_land_as_they_say(
    before: &World,
    after: &Deployment,
    target: &str,
    report: &Report,
    commands: &[Command],
) -> Check {
    let Some(index) = before.target_index(target) else {
        return ensure(*after == before.deployment && commands.is_empty(), || {
            format!("a report for unknown {target} changed the deployment")
        });
    };
    let was = &before.deployment.steps[index].state;
    let now = &after.steps[index].state;
    match expected_answer(was, report) {
        None => ensure(*after == before.deployment && commands.is_empty(), || {
            format!(
                "{report:?} for {target} while {} changed the deployment",
                short(was)
            )
        }),
        // A target that succeeds after another failed is sent back at once.
        Some("ok") if *now == TargetState::RollingBack => Ok(()),
        Some(expected) => ensure(short(now) == expected, || {
            format!(
                "{report:?} for {target} while {} made it {}",
                short(was),
                short(now)
            )
        }),
    }
}

/// Besides the reported target, a report (or the start) moves other targets only to deploy
/// or stage (with that command), to be skipped, or to go back from a switch (with a
/// rollback to the release it served before); a stop (`target` empty) also stops staging
/// targets and fails switching ones, sending them back. Every command stands for one such
/// move.
pub(super) fn check_commands_follow_transitions(
    before: &Deployment,
    after: &Deployment,
    target: &str,
    commands: &[Command],
) -> Check {
    // No target reported: a cancel or the deadline.
    let stop = target.is_empty();
    let mut expected = Vec::new();
    for (was, now) in before.steps.iter().zip(&after.steps) {
        let moved_by_report = was.target == target;
        match (&was.state, &now.state) {
            (TargetState::Pending, TargetState::Deploying) => expected.push(Command::Deploy {
                target: now.target.clone(),
            }),
            // The reported target may succeed and be sent back in one report.
            (TargetState::Succeeded, TargetState::RollingBack)
            | (TargetState::Deploying, TargetState::RollingBack)
                if was.state == TargetState::Succeeded || moved_by_report =>
            {
                expected.push(Command::RollBack {
                    target: now.target.clone(),
                    to: now.previous.clone(),
                })
            }
            (TargetState::Pending, TargetState::Staging) => expected.push(Command::Stage {
                target: now.target.clone(),
            }),
            (TargetState::Pending, TargetState::Skipped) => {}
            // A cancel stops staging, which changed nothing served.
            (TargetState::Staging, TargetState::Skipped) if stop => {}
            // The deadline fails a target still switching and tells it to go back.
            (TargetState::Deploying, TargetState::Failed { .. }) if stop => {
                expected.push(Command::RollBack {
                    target: now.target.clone(),
                    to: now.previous.clone(),
                })
            }
            (TargetState::Staging, TargetState::Failed { .. }) if stop => {}
            // A target whose deploy ended without the new release is told to serve its
            // previous one (not waited for), so it never puts the failed release live later.
            (
                TargetState::Deploying,
                TargetState::Failed { .. } | TargetState::RolledBack { .. },
            ) if moved_by_report => expected.push(Command::RollBack {
                target: now.target.clone(),
                to: now.previous.clone(),
            }),
            (a, b) if a == b || moved_by_report => {}
            (a, b) => {
                return Err(format!(
                    "{} moved from {} to {} on a report for {target}",
                    now.target,
                    short(a),
                    short(b)
                ))
            }
        }
    }
    ensure(commands == expected, || {
        format!("commands {commands:?}, but the moves call for {expected:?}")
    })
}

/// No target is asked to deploy once a target failed or the deployment was cancelled.
pub(super) fn check_no_deploy_after_a_failure(after: &World, commands: &[Command]) -> Check {
    ensure(
        !(after.has_failure() || after.deployment.cancelled.is_some())
            || !commands.iter().any(|c| matches!(c, Command::Deploy { .. })),
        || format!("asked to deploy after a failure: {commands:?}"),
    )
}

/// A failed target's reason names it, so people see which target failed.
pub(super) fn check_failure_reasons_name_their_target(world: &World) -> Check {
    for step in &world.deployment.steps {
        if let Some(reason) = step.state.failure() {
            ensure(reason.starts_with(&format!("{}: ", step.target)), || {
                format!("{}'s reason does not name it: {reason}", step.target)
            })?;
        }
    }
    Ok(())
}

/// Every path ends within two reports per target (an answer to the deploy, and one to the
/// rollback), besides a cancel and the deadline: the deployment cannot run forever.
pub(super) fn check_bounded_number_of_reports(world: &World) -> Check {
    // A cancel and the deadline stop it at most once each.
    let bound = 2 * world.deployment.steps.len() + 2;
    ensure(world.path.len() <= bound, || {
        format!(
            "{} reports and still going (bound {bound})",
            world.path.len()
        )
    })
}

/// A running deployment always has a report that moves it on (at least a timeout of a
/// target it waits on).
pub(super) fn check_every_waited_on_target_can_time_out(world: &World) -> Check {
    for target in world.deployment.waiting_on() {
        let mut next = world.deployment.clone();
        next.apply(
            target,
            Report::TimedOut {
                reason: "no answer".into(),
            },
        );
        ensure(next != world.deployment, || {
            format!("a timeout of {target} does not move the deployment")
        })?;
    }
    Ok(())
}

// Invariants of every finished deployment.

/// The status says what the targets say: succeeded only if every target succeeded
/// (staged, for stage-only); rolled back if some target failed and every target is back
/// or was skipped; failed if some target could not be put back (or the deadline passed);
/// cancelled if it was, with nothing left switched; a reason unless it succeeded.
pub(super) fn check_final_status_matches_targets(world: &World) -> Check {
    let deployment = &world.deployment;
    let states: Vec<&str> = deployment.steps.iter().map(|s| short(&s.state)).collect();
    let all = |allowed: &[&str]| states.iter().all(|s| allowed.contains(s));
    let fine = match deployment.status {
        Status::AwaitingApproval | Status::Running | Status::Rejected | Status::Withdrawn => false,
        Status::Succeeded => {
            deployment.reason.is_none()
                && all(if world.kind == Kind::StageOnly {
                    &["staged"]
                } else {
                    &["ok"]
                })
        }
        Status::RolledBack => {
            states.contains(&"rolledback") && all(&["rolledback", "reverted", "skipped"])
        }
        Status::Failed => states.contains(&"failed"),
        // Nothing is left switched: every target is back, never switched, or failed.
        Status::Cancelled => {
            deployment.cancelled.is_some()
                && all(&["rolledback", "reverted", "skipped", "failed", "staged"])
        }
    };
    ensure(fine, || {
        format!("finished {:?} with targets {states:?}", deployment.status)
    })?;
    ensure(
        deployment.status == Status::Succeeded || deployment.reason.is_some(),
        || format!("{:?} without a reason", deployment.status),
    )
}

/// The reason of a deployment that did not succeed is the failure that stopped it: the
/// first target to fail, not a later one (a failed rollback, another parallel target).
pub(super) fn check_reason_is_the_first_failure(world: &World) -> Check {
    let expected = match world.deployment.status {
        // Who cancelled it and why, then the first failure, if any.
        Status::Cancelled => Some(
            ["cancelled by lee: wrong build"]
                .into_iter()
                .chain(world.first_failure.as_deref())
                .collect::<Vec<_>>()
                .join("; "),
        ),
        _ => world.first_failure.clone(),
    };
    ensure(
        world.deployment.status == Status::Succeeded || world.deployment.reason == expected,
        || {
            format!(
                "reason {:?}, but expected {expected:?}",
                world.deployment.reason
            )
        },
    )
}

/// What each target ends up serving: the new release on success, its previous release
/// after a rollback, and after a failure its previous release unless it is the one that
/// failed. Stage-only switches nothing.
pub(super) fn check_targets_serve_what_the_status_says(world: &World) -> Check {
    for (index, step) in world.deployment.steps.iter().enumerate() {
        let serving = &world.serving[index];
        let expected = match (world.kind, world.deployment.status) {
            (Kind::StageOnly, _) => world.previous(index),
            (_, Status::Succeeded) => Serving::Release(Some(NEW.to_owned())),
            (_, Status::Failed | Status::Cancelled)
                if matches!(step.state, TargetState::Failed { .. }) =>
            {
                continue
            }
            _ => world.previous(index),
        };
        ensure(*serving == expected, || {
            format!(
                "{:?}: {} ({}) serves {serving:?}, expected {expected:?}",
                world.deployment.status,
                step.target,
                short(&step.state)
            )
        })?;
    }
    Ok(())
}

/// A finished deployment ignores every report.
pub(super) fn check_finished_deployment_ignores_reports(world: &World) -> Check {
    for target in world.deployment.steps.iter().map(|s| s.target.as_str()) {
        for report in every_report() {
            let mut next = world.deployment.clone();
            let commands = next.apply(target, report.clone());
            ensure(next == world.deployment && commands.is_empty(), || {
                format!("finished, yet {report:?} for {target} changed it")
            })?;
        }
    }
    Ok(())
}

pub(super) fn check_state(world: &World) -> Check {
    check_rolling_deploys_one_target_at_a_time(world)?;
    check_rolling_goes_in_order(world)?;
    check_waiting_on_is_what_was_asked(world)?;
    check_a_failure_skips_the_rest_and_rolls_back(world)?;
    check_untouched_targets_serve_their_previous_release(world)?;
    check_running_until_every_target_is_final(world)?;
    check_stage_ahead_asks_only_targets_not_asked_yet(world)?;
    check_stage_only_switches_nothing(world)?;
    check_failure_reasons_name_their_target(world)?;
    check_bounded_number_of_reports(world)?;
    check_every_waited_on_target_can_time_out(world)
}

pub(super) fn check_finished(world: &World) -> Check {
    check_final_status_matches_targets(world)?;
    check_reason_is_the_first_failure(world)?;
    check_targets_serve_what_the_status_says(world)?;
    check_finished_deployment_ignores_reports(world)
}
