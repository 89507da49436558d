//! Several servers on one PostgreSQL database, any request going to either: agents are
//! woken by changes made on another server, and a server killed mid-deployment loses
//! nothing. These run on PostgreSQL whatever backend the suite runs on.

use std::fs;
use std::time::{Duration, Instant};

use crate::deployments::{current, release, setup, start_agent};
use crate::harness::Server;

/// Agents long-poll for up to 25 s when the heartbeat is a minute: a change that wakes them
/// is seen in milliseconds, one that does not only when the poll's hold runs out.
const LONG_HEARTBEAT: &[&str] = &["--heartbeat-every", "1m"];

#[test]
fn two_servers_on_one_database_serve_any_request_and_wake_each_others_agents() {
    let Some(first) = Server::start_on_postgres(LONG_HEARTBEAT) else {
        return;
    };
    let second = first.start_peer(LONG_HEARTBEAT);
    setup(&first);
    // Enrolled through the second server, the agent long-polls it.
    let agent = start_agent(&second, "dev", "dev-1");
    release(&first, "1.0.0", "");

    // Requested on the first server: the second wakes its agent, and the first hears the
    // agent's report through the second, long before the agent's poll would have ended.
    let started = Instant::now();
    first
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "the agent was not woken by the other server's change: it took {took:?}, as long as its poll's hold"
    );
    assert_eq!(current(&agent.root, "web"), "releases/1.0.0");

    // Both servers see the same state and one audit chain.
    for server in [&first, &second] {
        let status = server.admin(&["status", "--json"]).success().json();
        let targets = status.to_string();
        assert!(targets.contains("\"1.0.0\""), "{status}");
        server.admin(&["audit", "verify"]).success();
    }
    let first_trail = first.admin(&["audit", "--json"]).success().json();
    let second_trail = second.admin(&["audit", "--json"]).success().json();
    assert_eq!(first_trail, second_trail);
}

#[test]
fn a_server_killed_mid_deployment_loses_nothing_and_no_step_runs_twice() {
    let Some(first) = Server::start_on_postgres(&[]) else {
        return;
    };
    let second = first.start_peer(&[]);
    setup(&first);
    let agents: Vec<_> = (1..=4)
        .map(|n| start_agent(&second, "dev", &format!("dev-{n}")))
        .collect();
    // Each switch takes a moment and leaves a mark, so the deployment is under way when
    // the first server dies, and every switch can be counted.
    let toml = concat!(
        "shared = [\"data\"]\n",
        "[hooks]\n",
        "after_switch = 'echo \"$FERRY_VERSION\" >> \"$FERRY_SHARED_DIR/data/switches\" && sleep 1'\n",
    );
    release(&first, "1.0.0", toml);
    let run = first
        .admin(&[
            "deploy",
            "web",
            "1.0.0",
            "--to",
            "dev",
            "--strategy",
            "rolling",
            "--json",
        ])
        .success();
    let id = run.json()["id"].to_string();
    let switches = |agent: &crate::harness::Agent| {
        fs::read_to_string(agent.root.join("apps/web/shared/data/switches")).unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while agents.iter().all(|agent| switches(agent).is_empty()) {
        assert!(Instant::now() < deadline, "no target switched");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill();

    let done = second
        .admin(&["deployment", "show", &id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    for agent in &agents {
        assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
        assert_eq!(switches(agent), "1.0.0\n", "each target switched once");
    }
    second.admin(&["audit", "verify"]).success();
}
