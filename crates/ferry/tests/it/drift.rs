//! Drift on the server: an agent's findings (`POST /api/v1/agent/drift`, sent here with a
//! real agent's credential), shown by `ferry drift` and in `ferry status`, only to those who
//! may see the application, and only while they are about the release the target runs.

use serde_json::{json, Value};

use crate::deployments::{release, setup, start_agent};
use crate::harness::{agent_credential, Server};

/// 2026-12-05T01:00:00Z and ten minutes later, in milliseconds.
const FIRST_SEEN: i64 = 1_796_432_400_000;
const LATER: i64 = FIRST_SEEN + 600_000;

/// Sends `body` as an agent's drift report with `credential`, from a test that runs no
/// runtime of its own; the answer's status.
pub(crate) fn post_drift(server: &Server, credential: &str, body: &Value) -> u16 {
    let request = reqwest::Client::new()
        .post(format!("{}/api/v1/agent/drift", server.url))
        .bearer_auth(credential)
        .json(body);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { request.send().await.unwrap().status().as_u16() })
}

/// The drift of `dev-1` in `web`'s status, as `ferry status --json` shows it.
fn status_drift(server: &Server) -> Value {
    let status = server.admin(&["status", "--json"]).success().json();
    let web = status["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["app"] == "web")
        .unwrap();
    let dev = web["environments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["env"] == "dev")
        .unwrap()
        .clone();
    assert_eq!(dev["targets"][0]["target"], "dev-1", "{dev}");
    dev["targets"][0]["drift"].clone()
}

#[tokio::test]
async fn an_agents_drift_report_shows_in_ferry_drift_and_status() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");
    for version in ["1.0.0", "1.0.1"] {
        server
            .admin(&["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
    }
    server
        .admin(&["app", "create", "blog", "--team", "shop"])
        .success();
    let credential = agent_credential(&agent.root);
    // The reports below are the only ones: the agent's own checks stay out of the way.
    drop(agent);
    let http = reqwest::Client::new();
    let post = |body: Value| {
        let request = http
            .post(format!("{}/api/v1/agent/drift", server.url))
            .bearer_auth(&credential)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };

    // Nothing reported yet: no drift, said plainly, exit 0.
    let none = server.admin(&["drift"]).success();
    assert!(none.stdout.contains("No drift"), "{}", none.stdout);
    assert_eq!(
        server.admin(&["drift", "--json"]).success().json(),
        json!([])
    );
    assert_eq!(status_drift(&server), Value::Null);

    let edited = json!({"app": "web", "version": "1.0.1", "paths": [
        {"path": "index.html", "change": "content", "first_seen_ms": LATER},
        {"path": "css/hotfix.css", "change": "added", "first_seen_ms": FIRST_SEEN},
    ]});
    assert_eq!(post(edited.clone()).await, (204, String::new()));
    // The status document follows at once (its revision moved).
    assert_eq!(
        status_drift(&server),
        json!({"version": "1.0.1", "paths": 2, "since": "2026-12-05T01:00:00Z"})
    );
    let table = server.admin(&["status"]).success();
    // (`offline` may come between: the agent is stopped.)
    let line = table.stdout.lines().find(|l| l.contains("dev-1=")).unwrap();
    assert!(
        line.contains("dev-1=1.0.1(succeeded") && line.contains(", drift: 2 paths)"),
        "{}",
        table.stdout
    );
    let listed = server.admin(&["drift", "web", "--env", "dev"]).success();
    for expected in [
        "web on dev-1 (dev): 2 paths differ from 1.0.1",
        "css/hotfix.css",
        "added",
        "2026-12-05T01:00:00Z",
        "index.html",
        "content",
        "2026-12-05T01:10:00Z",
    ] {
        assert!(
            listed.stdout.contains(expected),
            "{expected}: {}",
            listed.stdout
        );
    }
    let listed = server.admin(&["drift", "--json"]).success().json();
    assert_eq!(listed[0]["target"], "dev-1");
    assert_eq!(listed[0]["env"], "dev");
    assert_eq!(listed[0]["version"], "1.0.1");
    assert_eq!(listed[0]["count"], 2);
    assert_eq!(
        listed[0]["paths"],
        json!([
            {"path": "css/hotfix.css", "change": "added", "first_seen_ms": FIRST_SEEN},
            {"path": "index.html", "change": "content", "first_seen_ms": LATER},
        ]),
        "sorted by path"
    );
    assert_eq!(
        server
            .admin(&["drift", "--env", "pp", "--json"])
            .success()
            .json(),
        json!([])
    );

    // An application the target does not run, and reports that are not well formed.
    let (status, text) = post(json!({"app": "blog", "version": "1.0.0", "paths": []})).await;
    assert_eq!(status, 404, "{text}");
    // A path like no manifest's, a path named twice (422); a field or a change ferry does
    // not know (400, a malformed body).
    for (bad, expected) in [
        (
            json!({"app": "web", "version": "1.0.1", "paths": [
                {"path": "../etc/passwd", "change": "content", "first_seen_ms": 1}]}),
            422,
        ),
        (
            json!({"app": "web", "version": "1.0.1", "paths": [
                {"path": "a", "change": "content", "first_seen_ms": 1},
                {"path": "a", "change": "mode", "first_seen_ms": 1}]}),
            422,
        ),
        (
            json!({"app": "web", "version": "1.0.1", "paths": [], "more": 1}),
            400,
        ),
        (
            json!({"app": "web", "version": "1.0.1", "paths": [
                {"path": "a", "change": "renamed", "first_seen_ms": 1}]}),
            400,
        ),
    ] {
        let (status, text) = post(bad.clone()).await;
        assert_eq!(status, expected, "{bad}: {text}");
    }
    assert_eq!(status_drift(&server)["paths"], 2, "refusals change nothing");

    // Another team's user sees none of it.
    server.admin(&["team", "create", "other"]).success();
    let outsider = server.create_user("olga", "viewer", &["other"]);
    assert_eq!(
        server
            .ferry(&outsider, &["drift", "--json"])
            .success()
            .json(),
        json!([])
    );
    server
        .ferry(&outsider, &["drift", "web"])
        .fails(1, "no application named \"web\"");
    // A viewer of shop does.
    let viewer = server.create_user("vic", "viewer", &["shop"]);
    let seen = server.ferry(&viewer, &["drift", "--json"]).success().json();
    assert_eq!(seen[0]["count"], 2);

    // Findings about the release the target ran before are not drift of the one it runs.
    let old = json!({"app": "web", "version": "1.0.0", "paths": [
        {"path": "index.html", "change": "content", "first_seen_ms": LATER}]});
    assert_eq!(post(old).await.0, 204);
    assert_eq!(status_drift(&server), Value::Null);
    assert_eq!(
        server.admin(&["drift", "--json"]).success().json(),
        json!([])
    );

    // Drift again, then an empty report clears it.
    assert_eq!(post(edited).await.0, 204);
    assert_eq!(status_drift(&server)["paths"], 2);
    let clean = json!({"app": "web", "version": "1.0.1", "paths": []});
    assert_eq!(post(clean).await, (204, String::new()));
    assert_eq!(status_drift(&server), Value::Null);
    let none = server.admin(&["drift", "web"]).success();
    assert!(none.stdout.contains("No drift"), "{}", none.stdout);
    let table = server.admin(&["status"]).success();
    assert!(!table.stdout.contains("drift"), "{}", table.stdout);
}

/// Removing a target forgets its drift; its old credential reports nothing any more.
#[tokio::test]
async fn a_removed_targets_drift_is_gone() {
    let server = Server::start();
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let credential = agent_credential(&agent.root);
    drop(agent);
    let http = reqwest::Client::new();
    let report = json!({"app": "web", "version": "1.0.0", "paths": [
        {"path": "index.html", "change": "mode", "first_seen_ms": FIRST_SEEN}]});
    let send = || {
        http.post(format!("{}/api/v1/agent/drift", server.url))
            .bearer_auth(&credential)
            .json(&report)
            .send()
    };
    assert_eq!(send().await.unwrap().status().as_u16(), 204);
    let listed = server.admin(&["drift", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let table = server.admin(&["status"]).success();
    assert!(
        table.stdout.contains(", drift: 1 path)"),
        "{}",
        table.stdout
    );
    server.admin(&["target", "remove", "dev-1"]).success();
    assert_eq!(
        server.admin(&["drift", "--json"]).success().json(),
        json!([])
    );
    assert_eq!(send().await.unwrap().status().as_u16(), 401);
}
