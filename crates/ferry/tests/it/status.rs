//! `ferry status` served from the document the server keeps: every change shows at once,
//! and each caller sees only the applications they may see, whoever the kept document was
//! built for.

use serde_json::{json, Value};

use crate::deployments::{release, setup, start_agent};
use crate::harness::Server;
use crate::support::{backports, open_incident, release as release_with_files, BUGGY, FIXED};

/// The status of `web` as the admin sees it.
fn web_status(server: &Server) -> Value {
    let status = server.admin(&["status", "--json"]).success().json();
    status["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|app| app["app"] == "web")
        .cloned()
        .unwrap_or_else(|| panic!("web is missing: {status}"))
}

/// `web` in environment `env` (dev, pp or prd), as the admin sees it.
fn web_in(server: &Server, env: &str) -> Value {
    let at = ["dev", "pp", "prd"].iter().position(|e| *e == env).unwrap();
    let shown = web_status(server)["environments"][at].clone();
    assert_eq!(shown["env"], env, "{shown}");
    shown
}

/// A target whose agent is this test, speaking the real agent API with its credential.
struct HandAgent {
    server_url: String,
    credential: String,
    http: reqwest::Client,
}

impl HandAgent {
    async fn enroll(server: &Server, env: &str, name: &str) -> HandAgent {
        let token = server.enrollment_token(env, name);
        let http = reqwest::Client::new();
        let enrolled: Value = http
            .post(format!("{}/api/v1/agent/enroll", server.url))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        HandAgent {
            server_url: server.url.clone(),
            credential: enrolled["credential"].as_str().unwrap().to_owned(),
            http,
        }
    }

    /// Reports `outcome` for deployment `id` of web, running `current`.
    async fn report(&self, id: &str, outcome: &str, reason: &str, current: Option<&str>) {
        let report = json!({ "app": "web", "deployment": id.parse::<i64>().unwrap(),
            "outcome": outcome, "reason": reason, "current_version": current });
        self.http
            .post(format!("{}/api/v1/agent/report", self.server_url))
            .bearer_auth(&self.credential)
            .json(&report)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

/// Deploys `version` of web to pp, whose one target is `pp`, which reports it running.
async fn deploy_to_pp(server: &Server, pp: &HandAgent, version: &str) {
    let started = server
        .admin(&["deploy", "web", version, "--to", "pp", "--json"])
        .success()
        .json();
    let id = started["id"].to_string();
    pp.report(&id, "succeeded", "deployed", Some(version)).await;
    let done = server
        .admin(&["deployment", "show", &id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
}

/// Each change shows in the very next `ferry status`, though the one before it was served
/// from the kept document: a deploy that finished, an agent's report, a rollback marking a
/// release bad, a backport obligation opening and closing.
#[tokio::test]
async fn status_shows_every_change_at_once() {
    let server = Server::start();
    setup(&server);
    server
        .admin(&["env", "set", "prd", "--approvals", "0"])
        .success();
    let _dev = start_agent(&server, "dev", "dev-1");
    let _prd = start_agent(&server, "prd", "prd-1");
    let pp = HandAgent::enroll(&server, "pp", "pp-1").await;
    release_with_files(&server, "1.0.0", &[("checkout.js", BUGGY)], &[]);
    assert_eq!(web_in(&server, "dev")["version"], Value::Null);
    assert_eq!(web_in(&server, "dev")["version"], Value::Null, "kept");

    // A deploy that finished.
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let dev = web_in(&server, "dev");
    assert_eq!(dev["version"], "1.0.0", "{dev}");
    assert_eq!(
        dev["targets"],
        json!([{"target": "dev-1", "version": "1.0.0", "state": "succeeded", "drift": null}])
    );

    // An agent's report while its deployment runs, then the one that finishes it.
    let started = server
        .admin(&["deploy", "web", "1.0.0", "--to", "pp", "--json"])
        .success()
        .json();
    let id = started["id"].to_string();
    assert_eq!(web_in(&server, "pp")["targets"][0]["state"], "unknown");
    pp.report(&id, "progress", "fetching 2 blobs", None).await;
    let shown = web_in(&server, "pp");
    assert_eq!(shown["targets"][0]["state"], "deploying", "{shown}");
    assert_eq!(shown["version"], Value::Null, "still running: {shown}");
    pp.report(&id, "succeeded", "deployed", Some("1.0.0")).await;
    let shown = web_in(&server, "pp");
    assert_eq!(
        (&shown["version"], &shown["targets"][0]["version"]),
        (&json!("1.0.0"), &json!("1.0.0")),
        "{shown}"
    );

    // A rollback marks the release rolled back from.
    release_with_files(
        &server,
        "1.1.0",
        &[("checkout.js", BUGGY), ("new.js", "1")],
        &[],
    );
    server
        .admin(&["deploy", "web", "1.1.0", "--to", "dev", "--wait"])
        .success();
    assert_eq!(web_in(&server, "dev")["version"], "1.1.0");
    assert!(web_in(&server, "dev").get("rolled_back_from").is_none());
    server
        .admin(&["rollback", "web", "--env", "dev", "--wait"])
        .success();
    let dev = web_in(&server, "dev");
    assert_eq!(
        (&dev["version"], &dev["rolled_back_from"]),
        (&json!("1.0.0"), &json!(["1.1.0"])),
        "{dev}"
    );

    // A hotfix shipped to production opens a backport obligation; waiving it closes it.
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "prd", "--wait"])
        .success();
    assert_eq!(web_in(&server, "prd")["version"], "1.0.0");
    let incident = open_incident(&server, &server.admin_token, "prd", "critical", "rounding");
    let incident_id = incident["id"].to_string();
    release_with_files(
        &server,
        "1.0.1",
        &[("checkout.js", FIXED)],
        &["--hotfix-of", "1.0.0", "--incident", &incident_id],
    );
    deploy_to_pp(&server, &pp, "1.0.1").await;
    assert_eq!(web_status(&server)["backports"], json!([]));
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "prd", "--wait"])
        .success();
    // The obligation opens right after the deployment finishes; once the list of
    // obligations, read from the store, has it, status must have it too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while backports(&server).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no obligation opened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let open = web_status(&server)["backports"].clone();
    assert_eq!(open[0]["hotfix_version"], "1.0.1", "{open}");
    assert_eq!(open[0]["status"], "open", "{open}");
    let id = open[0]["id"].to_string();
    server
        .admin(&["backport", "waive", &id, "--reason", "dev gets a rewrite"])
        .success();
    assert_eq!(web_status(&server)["backports"], json!([]));
}

/// Status built for the admin (every application) and kept never shows another caller an
/// application they may not see; per-app grants count at once.
#[test]
fn status_shows_each_caller_only_what_they_may_see() {
    let server = Server::start();
    setup(&server);
    server.admin(&["team", "create", "bank"]).success();
    server
        .admin(&["app", "create", "vault", "--team", "bank"])
        .success();
    release(&server, "1.0.0", "");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let bo = server.create_user("bo", "viewer", &["bank:developer"]);
    let gil = server.create_user("gil", "viewer", &[]);
    let apps = |token: &str| -> Vec<String> {
        let status = server.ferry(token, &["status", "--json"]).success().json();
        status["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|app| app["app"].as_str().unwrap().to_owned())
            .collect()
    };
    // Built for the admin first, then cut down for everyone else, in turns.
    for _ in 0..2 {
        assert_eq!(apps(&server.admin_token), ["vault", "web"]);
        assert_eq!(apps(&dana), ["web"]);
        assert_eq!(apps(&bo), ["vault"]);
        assert_eq!(apps(&gil), Vec::<String>::new());
    }
    server
        .ferry(&dana, &["status", "vault", "--json"])
        .fails(1, "no application named \"vault\"");
    server
        .ferry(&dana, &["status", "nothing", "--json"])
        .fails(1, "no application named \"nothing\"");
    let one = server
        .ferry(&dana, &["status", "web", "--json"])
        .success()
        .json();
    assert_eq!(one["apps"].as_array().unwrap().len(), 1, "{one}");

    // A grant is part of the caller, not of the kept document: it shows at once.
    server
        .admin(&[
            "app", "grant", "vault", "--user", "gil", "--env", "dev", "--level", "view",
        ])
        .success();
    assert_eq!(apps(&gil), ["vault"]);
    assert_eq!(apps(&dana), ["web"]);
    server.ferry(&gil, &["status", "vault", "--json"]).success();
}
