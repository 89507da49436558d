//! A machine's clock set forward or back while ferry runs on it. The server times running
//! deployments, heartbeats and escalations on a steady clock, so a jump neither fails nor
//! escalates anything; an agent keeps its newest releases whatever its clock says. The
//! clocks jump for real, in one process each: libfaketime (Debian's `faketime`) sets the
//! wall clock of the process it is loaded into and leaves its monotonic clock alone.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cancel::{held_deployment, target_state};
use crate::deployments::{current, release, releases_on_disk, start_agent_with_env};
use crate::harness::Server;
use crate::offline::wait_for_health;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// A wall clock the test sets, for the processes started with [`JumpingClock::vars`].
struct JumpingClock {
    _dir: tempfile::TempDir,
    offset: PathBuf,
}

impl JumpingClock {
    /// A clock at the real time, or `None` (said on stderr) where libfaketime is missing
    /// and `FERRY_TEST_REQUIRE_FAKETIME` is not set (`.ci/run` sets it).
    fn new() -> Option<JumpingClock> {
        if !std::path::Path::new(LIBFAKETIME).exists() {
            assert!(
                std::env::var_os("FERRY_TEST_REQUIRE_FAKETIME").is_none(),
                "FERRY_TEST_REQUIRE_FAKETIME is set, but {LIBFAKETIME} is missing (apt-get install faketime)"
            );
            eprintln!("skipped: jumping clocks need libfaketime (apt-get install faketime)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let offset = dir.path().join("offset");
        fs::write(&offset, "+0\n").unwrap();
        Some(JumpingClock { _dir: dir, offset })
    }

    /// The environment that puts a process on this clock.
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("LD_PRELOAD", LIBFAKETIME.to_owned()),
            ("FAKETIME_TIMESTAMP_FILE", self.offset.display().to_string()),
            ("FAKETIME_NO_CACHE", "1".to_owned()),
            ("DONT_FAKE_MONOTONIC", "1".to_owned()),
            ("NO_FAKE_STAT", "1".to_owned()),
        ]
    }

    /// Sets the clock `offset` (`+2h`, `-1d`) away from the real time.
    fn set(&self, offset: &str) {
        fs::write(&self.offset, format!("{offset}\n")).unwrap();
    }
}

/// Waits until the server's log says `what`.
fn wait_for_log(server: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log().contains(what) {
        assert!(
            Instant::now() < deadline,
            "the server never logged {what:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_server_whose_clock_jumps_keeps_its_deployments_targets_and_incidents_as_they_were() {
    let Some(clock) = JumpingClock::new() else {
        return;
    };
    let server = Server::start_with_env(&["--heartbeat-every", "2s"], &clock.vars());
    let (agent, held, id) = held_deployment(&server);
    let incident = server
        .admin(&[
            "incident",
            "open",
            "web",
            "--env",
            "dev",
            "--severity",
            "critical",
            "--title",
            "site down",
            "--json",
        ])
        .success()
        .json()["id"]
        .to_string();
    // The watchers look at what they time once a second: let them see it as it is.
    std::thread::sleep(Duration::from_secs(2));

    // Two hours forward (by the wall clock: every target silent, every deployment past its
    // deadline, the incident past eight escalation times), then four back.
    for (offset, direction) in [("+2h", "forward"), ("-2h", "back")] {
        clock.set(offset);
        wait_for_log(&server, &format!("the server's clock jumped {direction}"));
        // Passes of the watchers on the clock as it is now.
        std::thread::sleep(Duration::from_secs(3));
        let shown = server
            .admin(&["deployment", "show", &id, "--json"])
            .success()
            .json();
        assert_eq!(shown["status"], "running", "{direction}: {shown}");
        assert!(
            shown["targets"][0]["step"].as_str().is_some(),
            "{direction}: {shown}"
        );
        let open = server
            .admin(&["incident", "show", &incident, "--json"])
            .success()
            .json();
        assert_eq!(open["escalation_level"], 0, "{direction}: {open}");
    }

    // Let go, the deployment ends as it would have; heartbeats stored by the clock as it is
    // now keep the target online, and the next deployment runs.
    fs::remove_file(&held).unwrap();
    let done = server
        .admin(&["deployment", "show", &id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(target_state(&done, "dev-1"), "succeeded");
    wait_for_health(&server, &[("dev-1", "online")]);
    server
        .admin(&["rollback", "web", "--env", "dev", "--wait"])
        .success();
    assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
}

#[test]
fn an_agent_whose_clock_is_set_back_keeps_its_newest_releases() {
    let Some(clock) = JumpingClock::new() else {
        return;
    };
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "2"])
        .success();
    let (agent, _log) = start_agent_with_env(&server, "dev", "dev-1", &clock.vars());
    let deploy = |version: &str| {
        release(&server, version, "");
        server
            .admin(&["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
    };
    deploy("1.0.0");
    deploy("2.0.0");
    clock.set("-1d");
    deploy("3.0.0");
    deploy("4.0.0");
    // Old releases are removed after the report: wait for it. Ranked by the agent's clock,
    // 1.0.0 and 2.0.0 would look newer than 3.0.0, which would go.
    let deadline = Instant::now() + Duration::from_secs(30);
    while releases_on_disk(&agent.root, "web") != ["3.0.0", "4.0.0"] {
        assert!(
            Instant::now() < deadline,
            "kept {:?}",
            releases_on_disk(&agent.root, "web")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
        .admin(&["rollback", "web", "--env", "dev", "--wait"])
        .success();
    assert_eq!(current(&agent.root, "web"), "releases/3.0.0");
}
