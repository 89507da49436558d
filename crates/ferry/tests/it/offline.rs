//! Offline targets, with real agents stopped by SIGSTOP: shown offline once their agent
//! missed three heartbeats, refused (or left out) by new deployments, and failed by a
//! deployment waiting on them after the heartbeat grace rather than after `--deploy-timeout`.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cancel::{clocked_server, held_deployment, show_until, target_state};
use crate::deployments::{current, release, setup, start_agent};
use crate::harness::{agent_credential, changes_len, Agent, Run, Server, FERRY};

fn signal(agent: &Agent, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(agent.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until `ferry target list` shows each target with the health given.
pub(crate) fn wait_for_health(server: &Server, wanted: &[(&str, &str)]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let targets = server.admin(&["target", "list", "--json"]).success().json();
        let health = |name: &str| {
            targets
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == name)
                .and_then(|t| t["health"].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        if wanted.iter().all(|(name, h)| health(name) == *h) {
            return targets;
        }
        assert!(Instant::now() < deadline, "never {wanted:?}: {targets}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn offline_targets_are_shown_and_new_deployments_refuse_them_or_leave_them_out() {
    let server = Server::start_with(&["--heartbeat-every", "1s"]);
    setup(&server);
    let one = start_agent(&server, "dev", "dev-1");
    let two = start_agent(&server, "dev", "dev-2");
    release(&server, "1.0.0", "");
    wait_for_health(&server, &[("dev-1", "online"), ("dev-2", "online")]);

    signal(&two, "STOP");
    let targets = wait_for_health(&server, &[("dev-1", "online"), ("dev-2", "offline")]);
    assert!(targets[1]["last_seen"].is_string(), "{targets}");
    let events = changes_len(&server);
    let refused = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--json"])
        .fails(3, "dev-2 (last seen ");
    assert!(
        refused.stderr.contains("is offline") && refused.stderr.contains("--skip-offline"),
        "{refused:?}"
    );
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "offline", "{error}");
    assert_eq!(error["details"]["offline"][0]["target"], "dev-2", "{error}");
    assert_eq!(changes_len(&server), events, "a refusal changes nothing");

    // --skip-offline deploys to the others, and the audit trail says who was left out.
    let done = server
        .admin(&[
            "deploy",
            "web",
            "1.0.0",
            "--to",
            "dev",
            "--skip-offline",
            "--wait",
            "--json",
        ])
        .success()
        .json();
    let targets: Vec<&str> = done["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["dev-1"], "{done}");
    assert_eq!(current(&one.root, "web"), "releases/1.0.0");
    assert_eq!(current(&two.root, "web"), "");
    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let asked = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "deployment.deploy")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(
        asked["details"]["skipped_offline"],
        serde_json::json!(["dev-2"])
    );

    // With every target offline there is nothing to deploy to.
    signal(&one, "STOP");
    wait_for_health(&server, &[("dev-1", "offline"), ("dev-2", "offline")]);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--skip-offline"])
        .fails(3, "every target of web in dev is offline: dev-1 (last seen");
    // `ferry status` marks the target that runs web but no longer answers.
    let status = server.admin(&["status", "web"]).success();
    assert!(
        status.stdout.contains("dev-1=1.0.0(succeeded, offline)")
            && status.stdout.contains("dev-1 is offline (last seen "),
        "{status:?}"
    );

    // Back online, both are deployed to again.
    signal(&one, "CONT");
    signal(&two, "CONT");
    wait_for_health(&server, &[("dev-1", "online"), ("dev-2", "online")]);
    let done = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["targets"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(current(&two.root, "web"), "releases/1.0.0");
}

/// A target whose agent stops in the middle of its switch fails its step once it missed its
/// heartbeats, on the server's clock (moved by the test), long before `--deploy-timeout`.
#[test]
fn a_target_going_offline_mid_deployment_fails_its_step_after_the_heartbeat_grace() {
    let (server, offset) = clocked_server(&["--heartbeat-every", "2s", "--deploy-timeout", "1h"]);
    let (agent, hold, id) = held_deployment(&server);

    signal(&agent, "STOP");
    // A minute later on the server's clock: past the heartbeat grace (and the server's own
    // start, after which agents get time to come back), far from the hour of
    // --deploy-timeout.
    fs::write(&offset, "60000").unwrap();
    let run = server.admin(&["deployment", "show", &id, "--wait", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let done = run.json();
    assert_eq!(done["status"], "failed", "{done}");
    let reason = done["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("dev-1: went offline: its agent missed 3 heartbeats, last seen "),
        "{done}"
    );
    assert_eq!(target_state(&done, "dev-1"), "failed");
    wait_for_health(&server, &[("dev-1", "offline")]);
    // Whatever it did meanwhile, the target is told to serve 1.0.0 again: an agent that
    // comes back (or restarts) never puts the failed release live.
    assert_eq!(
        desired_version(&server, &agent, "web"),
        Some("1.0.0".to_owned())
    );
    signal(&agent, "CONT");
    fs::remove_file(&hold).unwrap();
}

/// The version `agent`'s target is told to serve of `app`, asked with its own credential.
fn desired_version(server: &Server, agent: &Agent, app: &str) -> Option<String> {
    let credential = agent_credential(&agent.root);
    let desired: Value = Run::of(Command::new("curl").args([
        "-sf",
        "-H",
        &format!("Authorization: Bearer {credential}"),
        &format!("{}/api/v1/agent/desired", server.url),
    ]))
    .success()
    .json();
    desired["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == app)
        .and_then(|a| a["version"].as_str().map(str::to_owned))
}

#[test]
fn sending_again_the_release_a_target_runs_ends_at_once_when_another_target_fails() {
    let (server, offset) = clocked_server(&["--heartbeat-every", "2s", "--deploy-timeout", "1h"]);
    setup(&server);
    let _one = start_agent(&server, "dev", "dev-1");
    let two = start_agent(&server, "dev", "dev-2");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    // The same release again, in parallel, while dev-2 has just stopped answering: dev-1,
    // which runs it already, succeeds at once; when dev-2 fails, dev-1 "goes back" to the
    // release it runs, which needs nothing from it.
    signal(&two, "STOP");
    let id = server
        .admin(&[
            "deploy",
            "web",
            "1.0.0",
            "--to",
            "dev",
            "--strategy",
            "parallel",
            "--json",
        ])
        .success()
        .json()["id"]
        .to_string();
    show_until(&server, &id, "dev-1 done", |d| {
        target_state(d, "dev-1") == "succeeded"
    });
    fs::write(&offset, "60000").unwrap();
    let done = show_until(&server, &id, "the end", |d| d["status"] != "running");
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(target_state(&done, "dev-1"), "reverted", "{done}");
    assert_eq!(target_state(&done, "dev-2"), "failed", "{done}");
    signal(&two, "CONT");
}

/// `ferry deploy --wait` says which deployment it follows before anything else; on a
/// terminal it shows each target's step as it changes, and in a script only the end.
#[test]
fn deploy_wait_prints_the_id_first_and_steps_only_on_a_terminal() {
    let server = Server::start();
    setup(&server);
    let _agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");

    let piped = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let first = piped.stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("deployment 1: deploy web 1.0.0 to dev, running; following it")
            && first.contains("`ferry deployment cancel 1` stops it"),
        "{piped:?}"
    );
    assert!(
        !piped.stdout.contains("  dev-1: "),
        "no step lines in a script: {piped:?}"
    );
    let json = server.admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait", "--json"]);
    assert_eq!(json.success().json()["status"], "succeeded");

    // On a terminal (`script` gives the command one), the steps follow the first line.
    let command = format!("{FERRY} rollback web --env dev --wait",);
    let tty = Run::of(
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_TOKEN", &server.admin_token)
            .env("FERRY_CONFIG", server.dir.path().join("config.toml")),
    )
    .success();
    let lines: Vec<&str> = tty
        .stdout
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .collect();
    assert!(
        lines[0].starts_with("deployment 3: rollback web 1.0.0 to dev"),
        "{tty:?}"
    );
    assert!(
        lines.contains(&"  dev-1: succeeded"),
        "each target's state as it changes: {tty:?}"
    );
}
