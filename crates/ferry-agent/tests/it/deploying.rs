//! Deploys end to end: steps, hooks, failures before and after the switch, rollback.

use std::fs;

use ferry_agent::journal::Journal;
use ferry_agent::{AgentError, DeployEvent, DeployOutcome, StepKind};
use ferry_domain::step_log::StepLog;

use crate::fixture::*;

fn kinds(steps: &[ferry_agent::Step]) -> Vec<StepKind> {
    steps.iter().map(|s| s.kind).collect()
}

fn rolled_back(outcome: DeployOutcome) -> (String, String) {
    match outcome {
        DeployOutcome::RolledBack {
            reason,
            output_tail,
        } => (reason, output_tail),
        other => panic!("expected a rollback, got {other:?}"),
    }
}

/// A deploy that failed before anything switched: nothing to roll back.
fn failed(outcome: DeployOutcome) -> (String, String) {
    match outcome {
        DeployOutcome::Failed {
            reason,
            output_tail,
        } => (reason, output_tail),
        other => panic!("expected a failure before the switch, got {other:?}"),
    }
}

#[test]
fn a_deploy_reports_every_step_and_hooks_see_the_ferry_variables() {
    let target = Target::new();
    let config = r#"
[hooks]
before_switch = "{ env | grep -E '^FERRY_(APP|ENV|VERSION|PREVIOUS_VERSION|RELEASE_DIR|SHARED_DIR)=' | LC_ALL=C sort; pwd; readlink ../../current || echo none; } > \"$FERRY_SHARED_DIR/before-$FERRY_VERSION\""
after_switch = "readlink ../../current > \"$FERRY_SHARED_DIR/after-$FERRY_VERSION\""
[health]
command = "test -f index.html"
"#;
    let v1 = target.release(&[ferry_toml(config), file("index.html", "1")]);
    let v2 = target.release(&[ferry_toml(config), file("index.html", "2")]);
    target.deploy_ok("1.0", &v1);
    let (outcome, steps) = target.deploy("2.0", &v2);
    assert!(
        matches!(outcome, DeployOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        kinds(&steps),
        [
            StepKind::Staged,
            StepKind::SharedLinked,
            StepKind::BeforeSwitch,
            StepKind::Switched,
            StepKind::AfterSwitch,
            StepKind::HealthChecked
        ]
    );
    assert!(steps[2].detail.contains("before_switch hook"), "{steps:?}");
    assert!(
        steps[5].detail.contains("healthy after 1 attempt"),
        "{steps:?}"
    );

    let shared = target.layout().shared_dir();
    let release = target.release_dir("2.0");
    let before = fs::read_to_string(shared.join("before-2.0")).unwrap();
    let expected = format!(
        "FERRY_APP=shop\nFERRY_ENV=prd\nFERRY_PREVIOUS_VERSION=1.0\nFERRY_RELEASE_DIR={}\nFERRY_SHARED_DIR={}\nFERRY_VERSION=2.0\n{}\nreleases/1.0\n",
        release.display(),
        shared.display(),
        release.canonicalize().unwrap().display()
    );
    assert_eq!(before, expected);
    assert_eq!(
        fs::read_to_string(shared.join("after-2.0")).unwrap(),
        "releases/2.0\n"
    );
    let first = fs::read_to_string(shared.join("before-1.0")).unwrap();
    assert!(first.contains("FERRY_PREVIOUS_VERSION=\n"), "{first}");
    let journal = Journal::load(target.root(), APP).unwrap();
    assert_eq!(journal.last_succeeded, Some(v("2.0")));
}

/// Each step is told when it starts, so a slow one shows what the target is doing; each
/// hook and the health check is logged with its command, how it ended and its output,
/// also when it fails.
#[test]
fn steps_are_told_as_they_start_and_hooks_and_health_checks_are_logged() {
    let target = Target::new();
    let config = concat!(
        "[hooks]\n",
        "before_switch = \"echo migrating\"\n",
        "after_switch = \"echo restarting >&2\"\n",
        "[health]\n",
        "command = \"echo probing; test -e \\\"$FERRY_SHARED_DIR/up\\\"\"\n",
        "timeout = \"1s\"\n",
    );
    let v1 = target.release(&[ferry_toml(config), file("index.html", "1")]);
    fs::create_dir_all(target.layout().shared_dir()).unwrap();
    fs::write(target.layout().shared_dir().join("up"), "").unwrap();
    let (outcome, events) = target.deploy_telling("1.0", &v1);
    assert!(
        matches!(outcome, DeployOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    let told: Vec<String> = events
        .iter()
        .map(|event| match event {
            DeployEvent::Started(what) => format!("start {what}"),
            DeployEvent::Completed(step) => format!("done {}", step.kind.label()),
            DeployEvent::Logged(log) => format!("log {}: {}", log.step, log.ended),
        })
        .map(|line| {
            line.split(" in ")
                .next()
                .unwrap()
                .split(" (")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        told,
        [
            "start staging 1.0",
            "done staged",
            "done shared paths",
            "start running before_switch: echo migrating",
            "log hook before_switch: exited with status 0",
            "done before_switch",
            "start switching to 1.0",
            "done switched",
            "start running after_switch: echo restarting >&2",
            "log hook after_switch: exited with status 0",
            "done after_switch",
            "start checking health: echo probing; test -e \"$FERRY_SHARED_DIR/up\"",
            "log health check: healthy: exited with status 0",
            "done health check",
        ]
    );
    let logs: Vec<&StepLog> = events
        .iter()
        .filter_map(|event| match event {
            DeployEvent::Logged(log) => Some(log),
            _ => None,
        })
        .collect();
    assert_eq!(logs[0].command, "echo migrating");
    assert_eq!(logs[0].output, "migrating\n");
    assert_eq!(logs[1].output, "restarting\n");
    assert_eq!(logs[2].output, "attempt 1: exited with status 0\nprobing\n");
    assert!(logs.iter().all(|log| log.succeeded));

    // Unhealthy: the health check is logged with every attempt, and the failure names it.
    fs::remove_file(target.layout().shared_dir().join("up")).unwrap();
    let v2 = target.release(&[ferry_toml(config), file("index.html", "2")]);
    let (outcome, events) = target.deploy_telling("2.0", &v2);
    let (reason, output_tail) = rolled_back(outcome);
    assert!(
        reason.starts_with(
            "health check `echo probing; test -e \"$FERRY_SHARED_DIR/up\"` failed after"
        ),
        "{reason}"
    );
    assert!(reason.ends_with("exited with status 1"), "{reason}");
    assert_eq!(output_tail, "probing\n");
    let health = events
        .iter()
        .find_map(|event| match event {
            DeployEvent::Logged(log) if log.step == "health check" => Some(log),
            _ => None,
        })
        .unwrap();
    assert!(!health.succeeded);
    assert!(
        health.ended.starts_with("unhealthy: exited with status 1"),
        "{health:?}"
    );
    // Every attempt ended the same way: the first in full, the rest as one line.
    assert!(
        health
            .output
            .starts_with("attempt 1: exited with status 1\nprobing\nattempt"),
        "{health:?}"
    );
    let lines: Vec<&str> = health.output.lines().collect();
    assert!(
        lines.len() <= 3 && lines[2..].iter().all(|l| l.ends_with(": the same again")),
        "{health:?}"
    );
}

#[test]
fn a_failing_before_switch_hook_leaves_current_untouched() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "1")]);
    let v2 = target.release(&[
        ferry_toml("[hooks]\nbefore_switch = \"echo migrating; echo 'no such table' >&2; exit 4\""),
        file("index.html", "2"),
    ]);
    target.deploy_ok("1.0", &v1);
    let (outcome, steps) = target.deploy("2.0", &v2);
    let (reason, output_tail) = failed(outcome);
    assert!(
        reason.contains("before_switch") && reason.contains("exited with status 4"),
        "{reason}"
    );
    assert_eq!(output_tail, "migrating\nno such table\n");
    assert_eq!(kinds(&steps), [StepKind::Staged, StepKind::SharedLinked]);
    assert_eq!(target.current().as_deref(), Some("1.0"));
    let journal = Journal::load(target.root(), APP).unwrap();
    assert_eq!(journal.last_succeeded, Some(v("1.0")));
    assert_eq!(journal.bad, [v("2.0")]);
}

#[test]
fn a_failing_first_deploy_fails_and_serves_nothing() {
    let target = Target::new();
    let v1 = target.release(&[
        ferry_toml("[hooks]\nbefore_switch = \"exit 1\""),
        file("a", "1"),
    ]);
    let (outcome, _) = target.deploy("1.0", &v1);
    assert!(
        matches!(outcome, DeployOutcome::Failed { .. }),
        "{outcome:?}"
    );
    assert_eq!(target.current(), None);
}

#[test]
fn a_failing_after_switch_hook_switches_back() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "1")]);
    let v2 = target.release(&[
        ferry_toml("[hooks]\nafter_switch = \"echo reload failed; exit 1\""),
        file("index.html", "2"),
    ]);
    target.deploy_ok("1.0", &v1);
    let (outcome, steps) = target.deploy("2.0", &v2);
    let (reason, output_tail) = rolled_back(outcome);
    assert!(reason.contains("after_switch"), "{reason}");
    assert_eq!(output_tail, "reload failed\n");
    assert_eq!(kinds(&steps).last(), Some(&StepKind::Switched));
    assert_eq!(target.current().as_deref(), Some("1.0"));
}

#[test]
fn an_unhealthy_release_is_switched_back() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "1")]);
    let v2 = target.release(&[
        ferry_toml("[health]\ncommand = \"echo not ready; exit 1\"\ntimeout = \"700ms\""),
        file("index.html", "2"),
    ]);
    target.deploy_ok("1.0", &v1);
    let (outcome, steps) = target.deploy("2.0", &v2);
    let (reason, output_tail) = rolled_back(outcome);
    // The failure names the command, as a hook's does.
    assert!(
        reason.starts_with("health check `echo not ready; exit 1` failed after"),
        "{reason}"
    );
    assert!(!reason.contains("after 1 attempt"), "{reason}");
    assert_eq!(output_tail, "not ready\n");
    assert_eq!(kinds(&steps).last(), Some(&StepKind::AfterSwitch));
    assert_eq!(target.current().as_deref(), Some("1.0"));
    // The failed release stays on disk for inspection; cleanup removes it later.
    assert!(target.layout().has_release(&v("2.0")));
}

#[test]
fn an_unhealthy_first_release_is_unpublished() {
    let target = Target::new();
    let v1 = target.release(&[
        ferry_toml("[health]\ncommand = \"false\"\ntimeout = \"100ms\""),
        file("index.html", "1"),
    ]);
    let (reason, _) = rolled_back(target.deploy("1.0", &v1).0);
    assert!(reason.contains("health check `false` failed"), "{reason}");
    assert_eq!(target.current(), None);
    assert!(fs::symlink_metadata(target.layout().current_link()).is_err());
}

#[test]
fn a_bad_ferry_toml_is_refused_before_anything_is_staged() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "1")]);
    let v2 = target.release(&[ferry_toml("shared = [\"../etc\"]"), file("index.html", "2")]);
    target.deploy_ok("1.0", &v1);
    let (reason, _) = failed(target.deploy("2.0", &v2).0);
    assert!(
        reason.starts_with("ferry.toml line 1, column 11: shared[0]:"),
        "{reason}"
    );
    assert!(!target.layout().has_release(&v("2.0")));
    assert_eq!(target.current().as_deref(), Some("1.0"));
}

#[test]
fn rollback_switches_to_a_release_on_disk_and_refuses_others() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "1")]);
    let v2 = target.release(&[file("index.html", "2")]);
    target.deploy_ok("1.0", &v1);
    target.deploy_ok("2.0", &v2);
    assert!(target.rollback("1.0", &v1).unwrap().reused);
    assert_eq!(target.current().as_deref(), Some("1.0"));
    let current = target.layout().current_link();
    assert_eq!(
        fs::read_link(&current).unwrap().to_str(),
        Some("releases/1.0")
    );
    assert_eq!(fs::read_to_string(current.join("index.html")).unwrap(), "1");
    let error = target.rollback("3.0", &v1).unwrap_err();
    assert!(matches!(error, AgentError::Refused(_)), "{error}");
    assert!(error.to_string().contains("not on this target"), "{error}");
    assert!(target.rollback("../1.0", &v1).is_err());
    assert_eq!(target.current().as_deref(), Some("1.0"));
    let journal = Journal::load(target.root(), APP).unwrap();
    assert_eq!(journal.history.last().unwrap().version, v("1.0"));
    assert_eq!(journal.last_succeeded, Some(v("2.0")));
}
