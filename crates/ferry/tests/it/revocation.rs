//! Taking access away: rotated tokens, disabled users and removed targets are refused at
//! once, by every server sharing the database, and every change is audited.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::deployments::{current, release, setup, start_agent_at, start_agent_logged};
use crate::harness::{audit_len, audit_summary, Run, Server, FERRY};

/// The status and error message of `GET url` with `token`, as any HTTP client sees them.
async fn get(url: &str, token: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    (status, message.to_owned())
}

/// The credential an enrolled agent keeps in `ROOT/.ferry/agent.toml`.
fn credential_of(root: &Path) -> String {
    let text = std::fs::read_to_string(root.join(".ferry/agent.toml")).unwrap();
    let state: toml::Value = toml::from_str(&text).unwrap();
    state["credential"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_rotated_token_is_refused_at_once_and_the_new_one_works() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let dana = server.create_user("dana", "developer", &["shop"]);
    let lee = server.create_user("lee", "developer", &["shop"]);
    let before = audit_len(&server);

    // An admin rotates anyone's token: the old one is refused from the next request on.
    let rotated = server.admin(&["user", "rotate-token", "dana"]).success();
    let dana_2 = rotated.stdout.trim().to_owned();
    assert!(
        rotated.stderr.contains("the old one no longer works"),
        "{rotated:?}"
    );
    assert_ne!(dana_2, dana);
    server
        .ferry(&dana, &["whoami"])
        .fails(3, "unknown API token");
    let (status, _) = get(&format!("{}/api/v1/me", server.url), &dana).await;
    assert_eq!(status, 401);
    assert_eq!(
        server
            .ferry(&dana_2, &["whoami", "--json"])
            .success()
            .json()["user"],
        "dana"
    );

    // Anyone rotates their own, named or not; nobody else's.
    let dana_3 = server
        .ferry(&dana_2, &["user", "rotate-token", "--json"])
        .success()
        .json();
    assert_eq!(dana_3["user"], "dana");
    let dana_3 = dana_3["token"].as_str().unwrap().to_owned();
    server
        .ferry(&dana_2, &["whoami"])
        .fails(3, "unknown API token");
    let dana_4 = server
        .ferry(&dana_3, &["user", "rotate-token", "dana"])
        .success()
        .stdout
        .trim()
        .to_owned();
    server
        .ferry(&dana_4, &["user", "rotate-token", "lee"])
        .fails(3, "another user's needs the admin role");
    server.ferry(&lee, &["whoami"]).success();
    server
        .admin(&["user", "rotate-token", "nobody"])
        .fails(1, "no user \"nobody\"");
    server
        .admin(&["user", "rotate-token", "Not-A-Name"])
        .fails(3, "user name");
    assert_eq!(
        audit_summary(&server, before),
        [
            "admin user.rotate-token user/dana",
            "dana user.rotate-token user/dana",
            "dana user.rotate-token user/dana",
        ]
    );
}

#[test]
fn rotating_the_token_stored_by_login_updates_the_stored_one() {
    let server = Server::start();
    let dana = server.create_user("dana", "viewer", &[]);
    let config = server.dir.path().join("dana.toml");
    let as_stored = |args: &[&str]| {
        Run::of(
            Command::new(FERRY)
                .args(args)
                .env("FERRY_CONFIG", &config)
                .env_remove("FERRY_SERVER")
                .env_remove("FERRY_TOKEN"),
        )
    };
    as_stored(&["login", "--server", &server.url, "--token", &dana]).success();
    let run = as_stored(&["user", "rotate-token"]).success();
    assert!(run.stderr.contains("saved to"), "{run:?}");
    let new_token = run.stdout.trim();
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains(new_token));
    assert_eq!(
        as_stored(&["whoami", "--json"]).success().json()["user"],
        "dana"
    );
    server
        .ferry(&dana, &["whoami"])
        .fails(3, "unknown API token");
}

#[tokio::test]
async fn a_disabled_user_is_refused_until_an_admin_enables_them() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let dana = server.create_user("dana", "developer", &["shop"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let before = audit_len(&server);

    server
        .ferry(&lee, &["user", "disable", "dana"])
        .fails(3, "disabling users needs the admin role");
    let disabled = server
        .admin(&["user", "disable", "dana", "--json"])
        .success()
        .json();
    assert_eq!(disabled["disabled"], true, "{disabled}");
    // Every request of theirs is refused, 401, saying why and what to do.
    let (status, message) = get(&format!("{}/api/v1/me", server.url), &dana).await;
    assert_eq!(status, 401);
    assert_eq!(
        message,
        "user \"dana\" is disabled: ask an admin to enable them (`ferry user enable dana`)"
    );
    server
        .ferry(&dana, &["app", "list"])
        .fails(3, "user \"dana\" is disabled");
    let list = server.admin(&["user", "list"]).success();
    let row = list.stdout.lines().find(|l| l.starts_with("dana")).unwrap();
    assert!(row.ends_with("disabled"), "{list:?}");
    // Disabling again changes and records nothing.
    server.admin(&["user", "disable", "dana"]).success();

    server
        .ferry(&lee, &["user", "enable", "dana"])
        .fails(3, "admin role");
    server.admin(&["user", "enable", "dana"]).success();
    assert_eq!(
        server.ferry(&dana, &["whoami", "--json"]).success().json()["user"],
        "dana"
    );

    // An admin cannot lock themselves out.
    server.admin(&["user", "disable", "admin"]).fails(
        3,
        "user \"admin\" cannot disable themselves: ask another admin",
    );
    server.admin(&["whoami"]).success();
    assert_eq!(
        audit_summary(&server, before),
        [
            "admin user.disable user/dana",
            "admin user.enable user/dana"
        ]
    );
}

#[test]
fn two_admins_disabling_each_other_at_once_leave_one_enabled() {
    let server = Server::start();
    let root = server.create_user("root", "admin", &[]);
    // Both at once: whichever commits second finds itself disabled, or the last admin.
    let spawn = |token: &str, whom: &str| {
        Command::new(FERRY)
            .args(["user", "disable", whom])
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_TOKEN", token)
            .env("FERRY_CONFIG", server.dir.path().join("none.toml"))
            .output()
            .unwrap()
    };
    let admin_token = server.admin_token.clone();
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| spawn(&admin_token, "root"));
        let second = scope.spawn(|| spawn(&root, "admin"));
        (first.join().unwrap(), second.join().unwrap())
    });
    let outcomes = [&first, &second];
    assert_eq!(
        outcomes.iter().filter(|o| o.status.success()).count(),
        1,
        "{first:?} {second:?}"
    );
    let refused = outcomes.iter().find(|o| !o.status.success()).unwrap();
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("is disabled") || why.contains("the last enabled admin"),
        "{why}"
    );
    let enabled: Vec<Value> = server
        .ferry(
            if first.status.success() {
                &server.admin_token
            } else {
                &root
            },
            &["user", "list", "--json"],
        )
        .success()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "admin" && u["disabled"] == false)
        .cloned()
        .collect();
    assert_eq!(enabled.len(), 1, "{enabled:?}");
}

#[tokio::test]
async fn a_removed_targets_agent_is_refused_and_a_new_server_takes_over_its_name() {
    let server = Server::start();
    setup(&server);
    let dana = server.create_user("dana", "developer", &["shop"]);
    let rm = server.create_user("rita", "release-manager", &[]);
    release(&server, "1.0.0", "");
    release(&server, "1.1.0", "");
    let (old, old_log) = start_agent_logged(&server, "dev", "web-1");
    let old_root = old.root.clone();
    let first = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(current(&old_root, "web"), "releases/1.0.0");
    let old_credential = credential_of(&old_root);
    let desired = format!("{}/api/v1/agent/desired", server.url);
    assert_eq!(get(&desired, &old_credential).await.0, 200);
    let before = audit_len(&server);

    // Only release managers and admins remove targets, as only they enroll them.
    server
        .ferry(&dana, &["target", "remove", "web-1"])
        .fails(3, "release-manager");
    let removed = server
        .ferry(&rm, &["target", "remove", "web-1", "--json"])
        .success()
        .json();
    assert_eq!(
        (&removed["name"], &removed["health"]),
        (&Value::from("web-1"), &Value::from("removed"))
    );
    server
        .ferry(&rm, &["target", "remove", "web-1"])
        .fails(1, "no target \"web-1\" in service");

    // The old agent's credential is refused from the next request on.
    let (status, message) = get(&desired, &old_credential).await;
    assert_eq!(status, 401, "{message}");
    assert!(message.contains("the target was removed"), "{message}");
    // The old agent stops, saying why, rather than retrying for ever.
    let mut old = old;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let exited = loop {
        if let Some(status) = old.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the removed target's agent runs on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(!exited.success(), "{exited:?}");
    let said = std::fs::read_to_string(&old_log).unwrap();
    assert!(
        said.contains("the server refused this target's credential: unknown agent credential")
            && !said.contains("{\""),
        "{said}"
    );
    drop(old);
    let targets = server.admin(&["target", "list", "--json"]).success().json();
    assert_eq!(targets, Value::Array(vec![]));
    let status = server.admin(&["status", "--json"]).success().json();
    let dev = &status["apps"][0]["environments"][0];
    assert_eq!(
        (&dev["env"], &dev["targets"]),
        (&Value::from("dev"), &Value::Array(vec![])),
        "{status}"
    );
    // Nowhere to deploy now; the history stays.
    server
        .admin(&["deploy", "web", "1.1.0", "--to", "dev"])
        .fails(3, "web has no target in dev");
    let shown = server
        .admin(&["deployment", "show", &first["id"].to_string(), "--json"])
        .success()
        .json();
    assert_eq!(shown["targets"][0]["target"], "web-1", "{shown}");

    // A replaced server enrolls under the same name and takes over what it ran.
    let new_root = server.dir.path().join("new-server");
    let _new = start_agent_at(&server, "dev", "web-1", &new_root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while current(&new_root, "web") != "releases/1.0.0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the new agent never took over 1.0.0"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let done = server
        .admin(&["deploy", "web", "1.1.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(current(&new_root, "web"), "releases/1.1.0");
    assert_eq!(get(&desired, &old_credential).await.0, 401);
    assert_eq!(
        audit_summary(&server, before)[..3],
        [
            "rita target.remove target/web-1",
            "admin target.enroll-token target/web-1",
            "agent target.enroll target/web-1",
        ]
    );
}

#[tokio::test]
async fn revocations_are_refused_at_once_by_every_server_sharing_the_database() {
    let first = Server::start();
    let second = first.start_sharing();
    first.admin(&["team", "create", "shop"]).success();
    let dana = first.create_user("dana", "developer", &["shop"]);
    let lee = first.create_user("lee", "developer", &["shop"]);
    let root = first.dir.path().join("target-dev-1");
    let _agent = start_agent_at(&first, "dev", "dev-1", &root);
    let credential = credential_of(&root);
    let me = format!("{}/api/v1/me", second.url);
    let desired = format!("{}/api/v1/agent/desired", second.url);
    // Each credential works on the second server, so it is known there...
    assert_eq!(get(&me, &dana).await.0, 200);
    assert_eq!(get(&me, &lee).await.0, 200);
    assert_eq!(get(&desired, &credential).await.0, 200);

    // ...and refused there right after the first server revokes it: no pause in between.
    let dana_2 = first
        .admin(&["user", "rotate-token", "dana"])
        .success()
        .stdout;
    assert_eq!(get(&me, &dana).await.0, 401);
    assert_eq!(get(&me, dana_2.trim()).await.0, 200);
    first.admin(&["user", "disable", "lee"]).success();
    let (status, message) = get(&me, &lee).await;
    assert_eq!(
        (status, message.contains("is disabled")),
        (401, true),
        "{message}"
    );
    first.admin(&["target", "remove", "dev-1"]).success();
    assert_eq!(get(&desired, &credential).await.0, 401);
}
