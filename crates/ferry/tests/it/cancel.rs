//! `ferry deployment cancel`: a deployment stopped on purpose, through real agents.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deployments::{current, release, setup, start_agent};
use crate::harness::{audit_len, Server};

/// A `before_switch` hook that waits while `$FERRY_SHARED_DIR/hold` exists: the test holds a
/// target in the middle of its switch and lets it go when it wants.
pub(crate) const HELD_HOOK: &str =
    "[hooks]\nbefore_switch = 'while [ -e \"$FERRY_SHARED_DIR/hold\" ]; do sleep 0.05; done'\n";

/// Holds `agent`'s target in the `before_switch` hook of the next release with
/// [`HELD_HOOK`]; removing the file returned lets it go.
pub(crate) fn hold(agent: &crate::harness::Agent) -> std::path::PathBuf {
    let hold = agent.root.join("apps/web/shared/hold");
    fs::create_dir_all(hold.parent().unwrap()).unwrap();
    fs::write(&hold, "").unwrap();
    hold
}

/// On a server with `web` set up: one agent, `dev-1`, serving 1.0.0, and a deployment of
/// 2.0.0 to it held in its `before_switch` hook. Returns the agent, the file that holds it
/// (remove it to let go) and the deployment's id.
pub(crate) fn held_deployment(
    server: &Server,
) -> (crate::harness::Agent, std::path::PathBuf, String) {
    crate::deployments::setup(server);
    let agent = start_agent(server, "dev", "dev-1");
    release(server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let held = hold(&agent);
    release(server, "2.0.0", HELD_HOOK);
    let id = server
        .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--json"])
        .success()
        .json()["id"]
        .to_string();
    show_until(server, &id, "dev-1 in its hook", |d| {
        d["targets"][0]["step"].as_str().is_some()
    });
    (agent, held, id)
}

/// A server whose clock the test moves through the file returned (milliseconds added).
pub(crate) fn clocked_server(flags: &[&str]) -> (Server, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let offset = dir.path().join("clock-offset");
    fs::write(&offset, "0").unwrap();
    let mut args = vec!["--clock-offset-file", offset.to_str().unwrap()];
    args.extend_from_slice(flags);
    let server = Server::start_in_with(dir, &args);
    (server, offset)
}

/// Shows deployment `id` until `done` says it is in the state wanted.
pub(crate) fn show_until(
    server: &Server,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = server
            .admin(&["deployment", "show", id, "--json"])
            .success()
            .json();
        if done(&shown) {
            return shown;
        }
        assert!(Instant::now() < deadline, "never {what}: {shown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn target_state<'a>(deployment: &'a Value, target: &str) -> &'a str {
    deployment["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .and_then(|t| t["state"].as_str())
        .unwrap_or_default()
}

/// The actions of the audit trail about `web`, oldest first.
fn actions(server: &Server) -> Vec<Value> {
    server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_cancelled_deployment_sends_switched_targets_back_and_frees_the_environment() {
    let server = Server::start();
    setup(&server);
    let one = start_agent(&server, "dev", "dev-1");
    let two = start_agent(&server, "dev", "dev-2");
    let vic = server.create_user("vic", "viewer", &["shop"]);
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();

    // dev-1 switches to 2.0.0; dev-2 is held in the middle of its switch.
    let hold = hold(&two);
    release(&server, "2.0.0", HELD_HOOK);
    let started = server
        .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--json"])
        .success()
        .json();
    let id = started["id"].to_string();
    show_until(&server, &id, "dev-1 switched and dev-2 held", |d| {
        target_state(d, "dev-1") == "succeeded" && target_state(d, "dev-2") == "deploying"
    });
    assert_eq!(current(&one.root, "web"), "releases/2.0.0");

    // A viewer cannot cancel it; a developer (deploy level) can.
    let events = audit_len(&server);
    server
        .ferry(&vic, &["deployment", "cancel", &id, "--reason", "no"])
        .fails(3, "this needs deploy");
    assert_eq!(audit_len(&server), events, "a refusal records nothing");
    let cancelling = server
        .ferry(
            &dana,
            &[
                "deployment",
                "cancel",
                &id,
                "--reason",
                "wrong build",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(cancelling["status"], "running", "{cancelling}");
    assert_eq!(target_state(&cancelling, "dev-1"), "rolling_back");
    server
        .admin(&["deployment", "cancel", &id])
        .fails(3, "cancelled already by dana");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--allow-downgrade"])
        .fails(3, &format!("deployment {id} of web to dev is not finished"));

    // dev-2 finishes its switch and is sent back as well; then the deployment ends.
    fs::remove_file(&hold).unwrap();
    let run = server.admin(&["deployment", "show", &id, "--wait", "--json"]);
    assert_eq!(run.code, 1, "it did not succeed: {run:?}");
    let done = run.json();
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["reason"], "cancelled by dana: wrong build", "{done}");
    for (target, agent) in [("dev-1", &one), ("dev-2", &two)] {
        assert_eq!(target_state(&done, target), "reverted", "{done}");
        assert_eq!(current(&agent.root, "web"), "releases/1.0.0", "{target}");
        let index = agent.root.join("apps/web/current/index.html");
        assert_eq!(fs::read_to_string(index).unwrap(), "<h1>1.0.0</h1>\n");
    }
    let trail = actions(&server);
    let cancel = trail
        .iter()
        .find(|e| e["action"] == "deployment.cancel")
        .unwrap_or_else(|| panic!("no cancel event: {trail:?}"));
    assert_eq!(
        (
            cancel["actor"].as_str(),
            cancel["details"]["reason"].as_str(),
            cancel["details"]["was"].as_str()
        ),
        (Some("dana"), Some("wrong build"), Some("running")),
        "{cancel}"
    );
    assert!(
        trail
            .iter()
            .any(|e| e["action"] == "deployment.finish" && e["details"]["status"] == "cancelled"),
        "{trail:?}"
    );

    // The environment is free again; a finished deployment is not cancelled.
    release(&server, "2.0.1", "");
    server
        .admin(&["deploy", "web", "2.0.1", "--to", "dev", "--wait"])
        .success();
    assert_eq!(current(&two.root, "web"), "releases/2.0.1");
    server
        .admin(&["deployment", "cancel", &id])
        .fails(3, "it is cancelled already");
    let last = server
        .admin(&["deployment", "list", "web", "--json"])
        .success()
        .json()[0]["id"]
        .to_string();
    let events = audit_len(&server);
    server
        .admin(&["deployment", "cancel", &last, "--reason", "late"])
        .fails(
            3,
            "it is succeeded already: only a deployment awaiting approval or running",
        );
    assert_eq!(audit_len(&server), events);
    server
        .admin(&["deployment", "cancel", "999"])
        .fails(1, "no deployment 999");
}

#[test]
fn a_deployment_awaiting_approval_is_cancelled_at_once_and_switches_nothing() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["env", "set", "dev", "--approvals", "1"])
        .success();
    let asked = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--json"])
        .success()
        .json();
    assert_eq!(asked["status"], "awaiting_approval", "{asked}");
    let id = asked["id"].to_string();
    let cancelled = server
        .admin(&[
            "deployment",
            "cancel",
            &id,
            "--reason",
            "not this week",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["reason"].as_str()),
        (Some("cancelled"), Some("cancelled by admin: not this week")),
        "{cancelled}"
    );
    assert_eq!(target_state(&cancelled, "dev-1"), "skipped");
    assert_eq!(current(&agent.root, "web"), "");
    server
        .admin(&["approve", &id])
        .fails(3, "its status is cancelled");
    // Free again: the next request waits for its approval as usual.
    let again = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--json"])
        .success()
        .json();
    assert_eq!(again["status"], "awaiting_approval", "{again}");
}
