//! Drift on demand and the first-drift notification, with real agents whose periodic check
//! is off: `ferry drift --refresh` asks the agents (an agent task each) and shows what they
//! find now; the first drift on a release tells the maintaining team once; an offline
//! target cannot be asked; another team neither sees nor asks.

use std::time::Duration;

use crate::deployments::{release, setup, start_agent_logged_with};
use crate::harness::{write_over, Server};
use crate::notifications::add_webhook;
use crate::receivers::WebhookReceiver;

#[test]
fn refresh_asks_the_agents_and_the_first_drift_is_told_once() {
    let server = Server::start_with(&["--heartbeat-every", "1s"]);
    setup(&server);
    let hook = WebhookReceiver::start(200);
    add_webhook(&server, "shop", &hook.url());
    // Periodic checks off: only --refresh finds anything.
    let (agent, _log) = start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "0s"]);
    release(&server, "1.0.0", "");
    let done = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");

    let clean = server.admin(&["drift", "web", "--refresh"]).success();
    assert!(clean.stdout.contains("No drift"), "{clean:?}");

    let current = agent.root.join("apps/web/current");
    write_over(&current.join("index.html"), "<h1>edited on the box</h1>\n");
    // Before a refresh the server has not heard: the agent does not check by itself.
    let stale = server.admin(&["drift", "web", "--json"]).success().json();
    assert_eq!(stale, serde_json::json!([]), "{stale}");
    let found = server
        .admin(&["drift", "web", "--refresh", "--json"])
        .success()
        .json();
    assert_eq!(found[0]["target"], "dev-1", "{found}");
    assert_eq!(found[0]["paths"][0]["path"], "index.html", "{found}");
    assert_eq!(found[0]["paths"][0]["change"], "content", "{found}");

    // The maintaining team hears of it once, with the path and what to do.
    let told = hook.wait_for(1, Duration::from_secs(30));
    let body: serde_json::Value = serde_json::from_slice(&told[0].body).unwrap();
    assert_eq!(body["event"], "drift.detected", "{body}");
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("index.html (content)"), "{text}");
    assert!(text.contains("ferry drift capture dev-1 web"), "{text}");

    // More drift on the same release is no news.
    // The release's directories are read-only: adding a file takes a chmod first.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&current, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(current.join("debug.php"), "<?php phpinfo();").unwrap();
    let more = server
        .admin(&["drift", "--target", "dev-1", "--refresh", "--json"])
        .success()
        .json();
    let paths: Vec<&str> = more[0]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"debug.php"), "{more}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hook.requests().len(), 1, "told once");
    let audit = crate::harness::audit_summary(&server, 0);
    let count = |action: &str| audit.iter().filter(|e| e.contains(action)).count();
    assert_eq!(count(" drift.detected target/dev-1"), 1, "{audit:?}");
    assert_eq!(count("admin drift.check target/dev-1"), 3, "{audit:?}");

    // A target that is not there, or not in the environment named, is refused.
    server
        .admin(&["drift", "web", "--target", "nosuch-1"])
        .fails(1, "no target \"nosuch-1\"");
    server
        .admin(&[
            "drift",
            "web",
            "--target",
            "dev-1",
            "--env",
            "prd",
            "--refresh",
        ])
        .fails(3, "target dev-1 is in dev, not prd");

    // Another team sees no such application, and cannot ask.
    let other = server.create_user("otto", "developer", &[]);
    server
        .ferry(&other, &["drift", "web", "--refresh"])
        .fails(1, "no application named \"web\"");

    // An offline target cannot be asked: the refusal says since when, and nothing is asked.
    drop(agent);
    std::thread::sleep(Duration::from_secs(4));
    let before = crate::harness::audit_len(&server);
    let refused = server
        .admin(&["drift", "web", "--refresh"])
        .fails(3, "offline");
    assert!(refused.stderr.contains("dev-1"), "{refused:?}");
    assert_eq!(crate::harness::audit_len(&server), before);
}
