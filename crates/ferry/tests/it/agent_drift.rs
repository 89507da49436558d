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
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(&log).unwrap().contains(said) {
        assert!(
            Instant::now() < deadline,
            "the agent never told the drift: {}",
            fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    // A server without the drift endpoint is told about at most once.
    assert!(
        text.matches("does not take drift reports").count() <= 1,
        "{text}"
    );
    assert!(!text.contains("could not check"), "{text}");
}
