//! Several servers on one PostgreSQL database, any request going to either: agents are
//! woken by changes made on another server, and a server killed mid-deployment loses
//! nothing. These run on PostgreSQL whatever backend the suite runs on.

use std::fs;
use std::time::{Duration, Instant};

use crate::deployments::{current, release, setup, start_agent};
use crate::harness::{Agent, Run, Server};

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

    // A third server keeping content in a folder of its own would answer agents "missing"
    // for every release: it does not start, and says what to give --blobs.
    let elsewhere = tempfile::tempdir().unwrap();
    let refused = Run::of(&mut first.joining_command(elsewhere.path()));
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("the releases deployed most recently (web 1.0.0) are not there")
            && refused
                .stderr
                .contains("start this server with the same --blobs as the others"),
        "{refused:?}"
    );
}

#[test]
fn a_server_killed_mid_deployment_loses_nothing_and_no_step_runs_twice() {
    let Some(first) = Server::start_on_postgres(&[]) else {
        return;
    };
    let second = first.start_peer(&[]);
    let agents = agents_on(&second, 4);
    let id = rolling_deployment_under_way(&first, &agents);
    first.kill();
    each_switched_once(&second, &id, &agents);
}

/// Enrolls `n` dev targets through `server` (so they talk to it) and starts their agents.
fn agents_on(server: &Server, n: usize) -> Vec<Agent> {
    setup(server);
    (1..=n)
        .map(|n| start_agent(server, "dev", &format!("dev-{n}")))
        .collect()
}

/// Starts a rolling deployment of web 1.0.0 to dev through `server` and returns its id once
/// the first target has switched. Each switch takes a moment and leaves a mark, so the
/// deployment is under way then, and every switch can be counted.
fn rolling_deployment_under_way(server: &Server, agents: &[Agent]) -> String {
    let toml = concat!(
        "shared = [\"data\"]\n",
        "[hooks]\n",
        "after_switch = 'echo \"$FERRY_VERSION\" >> \"$FERRY_SHARED_DIR/data/switches\" && sleep 1'\n",
    );
    release(server, "1.0.0", toml);
    let run = server
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
    let deadline = Instant::now() + Duration::from_secs(60);
    while agents.iter().all(|agent| switches(agent).is_empty()) {
        assert!(Instant::now() < deadline, "no target switched");
        std::thread::sleep(Duration::from_millis(20));
    }
    id
}

/// The versions a target switched to, one per line.
fn switches(agent: &Agent) -> String {
    fs::read_to_string(agent.root.join("apps/web/shared/data/switches")).unwrap_or_default()
}

/// Waits for deployment `id` through `server`: it succeeded, every target switched exactly
/// once, and the trail verifies.
fn each_switched_once(server: &Server, id: &str, agents: &[Agent]) {
    let done = server
        .admin(&["deployment", "show", id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    for agent in agents {
        assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
        assert_eq!(switches(agent), "1.0.0\n", "each target switched once");
    }
    server.admin(&["audit", "verify"]).success();
}

#[test]
fn an_installation_moves_from_sqlite_to_postgres_with_its_history() {
    let Some(database) = crate::harness::postgres_database() else {
        return;
    };
    if crate::harness::on_postgres() {
        // The suite runs on PostgreSQL: there is no SQLite installation to move.
        return;
    }
    // The server comes back at the same address, as agents know it.
    let listen = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let server = Server::start_with(&["--listen", &listen]);
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    // Drift the agent found moves too.
    let drifted = serde_json::json!({"app": "web", "version": "1.0.0", "paths": [
        {"path": "index.html", "change": "content", "first_seen_ms": 1_000}]});
    let credential = crate::harness::agent_credential(&agent.root);
    assert_eq!(
        crate::drift::post_drift(&server, &credential, &drifted),
        204
    );
    let drift = server.admin(&["drift", "--json"]).success().json();
    assert_eq!(drift.as_array().unwrap().len(), 1, "{drift}");
    let trail = server.admin(&["audit", "--json"]).success().json();
    let data = server.data_dir();
    let migrate = |to: &str| {
        crate::harness::Run::of(
            std::process::Command::new(crate::harness::FERRY)
                .args(["server", "migrate", "--from"])
                .arg(&data)
                .args(["--to", to]),
        )
    };
    // Not while a server runs on it: what it changed meanwhile would be lost.
    migrate(&database.url).fails(3, "a server is running on");
    let (_, dir, _) = server.stop();

    let moved = migrate(&database.url).success();
    let events = trail.as_array().unwrap().len();
    assert!(
        moved.stdout.contains(&format!(
            "the audit trail's {events} events verify in PostgreSQL"
        )),
        "{moved:?}"
    );
    // The SQLite database is set aside: a server started without --database refuses
    // rather than serving the old state and sending agents back to it.
    crate::harness::Run::of(
        std::process::Command::new(crate::harness::FERRY)
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data),
    )
    .fails(
        1,
        "moved to PostgreSQL (`ferry server migrate`): start with --database",
    );
    // Nor does the demo, at once and saying why.
    crate::harness::Run::of(
        std::process::Command::new(crate::harness::FERRY)
            .args(["demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data),
    )
    .fails(1, "moved to PostgreSQL (`ferry server migrate`)");
    // Never twice; and the database set aside is one file, nothing left in a journal.
    migrate(&database.url).fails(3, "was moved to PostgreSQL already");
    let set_aside = data.join("ferry.db.moved-to-postgresql");
    assert!(set_aside.is_file());
    for journal in ["-wal", "-shm"] {
        assert!(!data
            .join(format!("ferry.db.moved-to-postgresql{journal}"))
            .exists());
    }

    // The same data directory (admin token, audit key, content) on PostgreSQL: the same
    // history, and the agent goes on with the next release.
    let server = Server::start_in_database(dir, database, &["--listen", &listen], &[]);
    assert_eq!(server.admin(&["audit", "--json"]).success().json(), trail);
    server.admin(&["audit", "verify"]).success();
    assert_eq!(server.admin(&["drift", "--json"]).success().json(), drift);
    release(&server, "1.0.1", "");
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .success();
    assert_eq!(current(&agent.root, "web"), "releases/1.0.1");
    server.admin(&["audit", "verify"]).success();

    // The way back the docs give: renaming that one file back is the state before the move.
    let (_, _dir, _) = server.stop();
    fs::rename(&set_aside, data.join("ferry.db")).unwrap();
    let back = Server::start_on_data(&data, None, &[], &[]);
    assert_eq!(back.admin(&["audit", "--json"]).success().json(), trail);
    back.admin(&["audit", "verify"]).success();
}

#[test]
fn a_move_needs_a_data_directory_and_a_postgres_url() {
    let dir = tempfile::tempdir().unwrap();
    let run = |to: &str| {
        crate::harness::Run::of(
            std::process::Command::new(crate::harness::FERRY)
                .args(["server", "migrate", "--from"])
                .arg(dir.path())
                .args(["--to", to]),
        )
    };
    run("mysql://db/ferry").fails(3, "--to is not a PostgreSQL URL");
    run("postgres://127.0.0.1:1/none").fails(3, "holds no ferry database (ferry.db)");
}

#[test]
fn a_database_restart_mid_deployment_is_ridden_out() {
    let Some(server) = Server::start_on_postgres(&[]) else {
        return;
    };
    let agents = agents_on(&server, 2);
    let id = rolling_deployment_under_way(&server, &agents);
    server.database_outage(Duration::from_secs(3));
    // The server reconnects; the deployment ends, and ends whole.
    each_switched_once(&server, &id, &agents);
    // And the server takes changes again.
    server
        .admin(&["team", "create", "after-the-restart"])
        .success();
}

#[test]
fn concurrent_approvals_on_two_servers_have_exactly_one_outcome() {
    let Some(first) = Server::start_on_postgres(&[]) else {
        return;
    };
    let second = first.start_peer(&[]);
    setup(&first);
    first
        .admin(&["env", "set", "prd", "--approvals", "2"])
        .success();
    let approvers: Vec<String> = ["ann", "bo", "cy"]
        .iter()
        .map(|name| first.create_user(name, "release-manager", &["shop"]))
        .collect();
    let _agents = crate::deployments::start_agent_per_env(&first);
    release(&first, "1.0.0", "");
    for env in ["dev", "pp"] {
        first
            .admin(&["deploy", "web", "1.0.0", "--to", env, "--wait"])
            .success();
    }
    let asked = first
        .admin(&["deploy", "web", "1.0.0", "--to", "prd", "--json"])
        .success()
        .json();
    assert_eq!(asked["status"], "awaiting_approval", "{asked}");
    let id = asked["id"].to_string();

    // Three approvals at once, spread over both servers: two count, the third finds the
    // deployment started and is refused.
    let codes: Vec<i32> = std::thread::scope(|scope| {
        let handles: Vec<_> = approvers
            .iter()
            .enumerate()
            .map(|(n, token)| {
                let server = if n % 2 == 0 { &first } else { &second };
                let id = &id;
                scope.spawn(move || server.ferry(token, &["approve", id]).code)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 0, 3], "{codes:?}");
    let done = second
        .admin(&["deployment", "show", &id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["approvals"].as_array().unwrap().len(), 2, "{done}");
    for server in [&first, &second] {
        server.admin(&["audit", "verify"]).success();
    }
}
