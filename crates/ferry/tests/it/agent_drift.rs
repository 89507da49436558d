//! The agent's periodic drift check, in a real agent process deployed to by a real server:
//! a hand edit under `current` is found, logged once and recorded with when it was first
//! seen; a server that does not take drift reports is told about once, not every check.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::deployments::{release, setup, start_agent_logged_with};
use crate::harness::Server;

#[test]
fn the_agent_finds_a_hand_edit_under_current_and_keeps_when_it_was_first_seen() {
    let server = Server::start();
    setup(&server);
    let (agent, log) =
        start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "300ms"]);
    release(&server, "1.0.0", "");
    let done = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");

    // Someone on the target: chmod u+w, edit, chmod back.
    let index = agent.root.join("apps/web/current/index.html");
    fs::set_permissions(&index, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&index, "<h1>hotfix by hand</h1>\n").unwrap();
    fs::set_permissions(&index, fs::Permissions::from_mode(0o444)).unwrap();

    let said = "drift on web 1.0.0: 1 path differs from the release: index.html (content)";
    wait_until_logged(&log, said);
    let record = agent.root.join(".ferry/drift/web.json");
    let first: serde_json::Value = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert_eq!(first["version"], "1.0.0");
    assert_eq!(first["paths"][0]["path"], "index.html");
    assert_eq!(first["paths"][0]["change"], "content");
    // More checks: the same first sighting, and nothing said again.
    std::thread::sleep(Duration::from_millis(1_200));
    let again: serde_json::Value = serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert_eq!(again, first);
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches(said).count(), 1, "{text}");
    assert!(!text.contains("does not take drift reports"), "{text}");
    assert!(!text.contains("could not check"), "{text}");

    // The server has it: `ferry drift` lists the path, `ferry status` marks the target.
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = server.admin(&["drift", "web", "--json"]).success().json();
        if listed.to_string().contains("index.html") {
            break listed;
        }
        assert!(
            Instant::now() < deadline,
            "the server never heard: {listed}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(listed.to_string().contains("\"content\""), "{listed}");
    let status = server.admin(&["status", "web", "--json"]).success().json();
    let drift = &status["apps"][0]["environments"][0]["targets"][0]["drift"];
    assert_eq!(drift["version"], "1.0.0", "{status}");
    assert_eq!(drift["paths"], 1, "{status}");
    let table = server.admin(&["status", "web"]).success().stdout;
    assert!(table.contains("drift: 1 path"), "{table}");
}

/// Regression guard: `ferry.toml` edited in place while the agent was down shares its inode
/// with the cache's blob, so neither holds the published file; believing the edited one
/// would let `ignore = ["**"]` hide every edit.
#[test]
fn a_ferry_toml_edited_while_the_agent_was_down_does_not_hide_drift() {
    let server = Server::start();
    setup(&server);
    let (mut agent, log) =
        start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "300ms"]);
    release(&server, "1.0.0", "ignore = [\"tmp/**\"]\n");
    let done = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();

    let current = agent.root.join("apps/web/current");
    for (path, content) in [
        ("ferry.toml", "ignore = [\"**\"]\n"),
        ("index.html", "<h1>hidden?</h1>\n"),
    ] {
        let path = current.join(path);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    }
    let log_file = fs::File::create(&log).unwrap();
    agent.child = std::process::Command::new(crate::harness::FERRY)
        .args(["agent", "--hooks-as-root", "--root"])
        .arg(&agent.root)
        .args(["--server", &server.url, "--drift-every", "300ms"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let said = "drift on web 1.0.0: 2 paths differ from the release: ferry.toml (content), index.html (content)";
    wait_until_logged(&log, said);
    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains("could not check"), "{text}");
}

/// Waits until the agent's log at `log` says `said`.
fn wait_until_logged(log: &std::path::Path, said: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(log).unwrap().contains(said) {
        assert!(
            Instant::now() < deadline,
            "the agent never told the drift: {}",
            fs::read_to_string(log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
