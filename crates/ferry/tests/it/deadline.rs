//! No deployment runs forever: a release cannot ask for checks or hooks longer than ferry
//! allows, and a deployment past its deadline is stopped although its target keeps
//! reporting progress.

use std::fs;

use crate::deployments::{current, release, setup, site, start_agent};
use crate::harness::Server;

#[test]
fn a_release_asking_for_a_check_or_hook_longer_than_ten_minutes_is_refused_naming_the_key_and_where(
) {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    for (version, toml, at) in [
        (
            "2.0.0",
            "[health]\ncommand = \"true\"\ntimeout = \"11m\"\n",
            "line 3, column 11: health.timeout",
        ),
        (
            "2.0.1",
            "[hooks]\nbefore_switch = \"true\"\ntimeout = \"1h\"\n",
            "line 3, column 11: hooks.timeout",
        ),
    ] {
        // Refused when the release is made: it could never deploy.
        let site = site(server.dir.path(), version, toml);
        server
            .admin(&[
                "release",
                "create",
                "web",
                version,
                "--from",
                site.to_str().unwrap(),
            ])
            .fails(3, &format!("ferry.toml {at}"))
            .fails(3, "longer than ferry allows for one step, 10m");
        server
            .admin(&["release", "show", "web", version])
            .fails(1, "no release");
    }
    // Within the bound, a hook timeout is honoured: a hook past it fails the deploy.
    release(
        &server,
        "2.0.2",
        "[hooks]\nbefore_switch = \"sleep 30\"\ntimeout = \"300ms\"\n",
    );
    let run = server.admin(&["deploy", "web", "2.0.2", "--to", "dev", "--wait", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("before_switch hook"),
        "{run:?}"
    );
    assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
}

/// A target held in its `before_switch` hook keeps reporting progress, so the silent-target
/// timeout never fires; the deadline does, on the server's clock (moved by the test), and
/// the target that had switched goes back.
#[test]
fn a_deployment_past_its_deadline_fails_and_switched_targets_go_back_despite_progress() {
    let (server, offset) = crate::cancel::clocked_server(&["--deployment-deadline", "10m"]);
    setup(&server);
    let one = start_agent(&server, "dev", "dev-1");
    let two = start_agent(&server, "dev", "dev-2");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let hold = crate::cancel::hold(&two);
    release(&server, "2.0.0", crate::cancel::HELD_HOOK);
    let id = server
        .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--json"])
        .success()
        .json()["id"]
        .to_string();
    crate::cancel::show_until(&server, &id, "dev-2 held reporting its step", |d| {
        crate::cancel::target_state(d, "dev-1") == "succeeded"
            && d["targets"][1]["step"].as_str().is_some()
    });

    // Eleven minutes later on the server's clock: past the deadline. Agents keep their
    // heartbeat meanwhile, so nothing else than the deadline stops it.
    fs::write(&offset, (11 * 60 * 1000).to_string()).unwrap();
    let run = server.admin(&["deployment", "show", &id, "--wait", "--json"]);
    assert_eq!(run.code, 1, "{run:?}");
    let done = run.json();
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        done["reason"],
        "the deployment did not finish within its deadline of 10m (`ferry server --deployment-deadline`)",
        "{done}"
    );
    assert_eq!(crate::cancel::target_state(&done, "dev-1"), "reverted");
    assert_eq!(crate::cancel::target_state(&done, "dev-2"), "failed");
    assert_eq!(current(&one.root, "web"), "releases/1.0.0");
    // dev-2 was told to go back too: once its hook lets go, it ends where it was.
    fs::remove_file(&hold).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while current(&two.root, "web") != "releases/1.0.0"
        || !two.root.join("apps/web/releases/2.0.0").exists()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "dev-2 serves {}",
            current(&two.root, "web")
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let finish = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    assert!(
        finish
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "deployment.finish"
                && e["details"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("deadline"))),
        "{finish}"
    );
}

#[test]
fn server_limits_that_cannot_work_are_refused() {
    for (flag, value, message) in [
        (
            "--deployment-deadline",
            "0s",
            "--deployment-deadline must be more than zero",
        ),
        (
            "--heartbeat-every",
            "10ms",
            "--heartbeat-every must be between 500ms and 1m",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let run = crate::harness::Run::of(
            std::process::Command::new(crate::harness::FERRY)
                .args(["server", "--listen", "127.0.0.1:0", "--data"])
                .arg(dir.path().join("data"))
                .args([flag, value]),
        );
        run.fails(2, message);
        assert!(!dir.path().join("data").exists(), "nothing created");
    }
}
