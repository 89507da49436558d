//! Deploys end to end: steps, hooks, failures before and after the switch, rollback.

use std::fs;

use ferry_agent::journal::Journal;
use ferry_agent::{AgentError, DeployOutcome, StepKind};

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
    assert_eq!(journal.last_succeeded.as_deref(), Some("2.0"));
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
    assert_eq!(journal.last_succeeded.as_deref(), Some("1.0"));
    assert_eq!(journal.bad, ["2.0"]);
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
    assert!(reason.starts_with("health check failed after"), "{reason}");
    assert!(!reason.contains("after 1 attempts"), "{reason}");
    assert_eq!(output_tail, "not ready\n");
    assert_eq!(kinds(&steps).last(), Some(&StepKind::AfterSwitch));
    assert_eq!(target.current().as_deref(), Some("1.0"));
    // The failed release stays on disk for inspection; cleanup removes it later.
    assert!(target.layout().has_release("2.0"));
}

#[test]
fn an_unhealthy_first_release_is_unpublished() {
    let target = Target::new();
    let v1 = target.release(&[
        ferry_toml("[health]\ncommand = \"false\"\ntimeout = \"100ms\""),
        file("index.html", "1"),
    ]);
    let (reason, _) = rolled_back(target.deploy("1.0", &v1).0);
    assert!(reason.contains("health check failed"), "{reason}");
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
    assert!(!target.layout().has_release("2.0"));
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
    assert_eq!(journal.history.last().unwrap().version, "1.0");
    assert_eq!(journal.last_succeeded.as_deref(), Some("2.0"));
}
