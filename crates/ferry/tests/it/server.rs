//! `ferry server`: first start, restart, shutdown, and the operational endpoints.

use crate::harness::{mode, Server};

#[test]
fn first_start_writes_the_admin_token_with_mode_0600_and_never_logs_it() {
    let server = Server::start();
    let token_file = server.data_dir().join("admin-token");
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(mode(&server.data_dir().join("audit-key")), 0o600);
    assert_eq!(mode(&server.data_dir()), 0o700);
    assert!(server.admin_token.starts_with("ferry_") && server.admin_token.len() == 70);
    let log = server.log();
    assert!(log.contains(&token_file.display().to_string()), "{log}");
    assert!(!log.contains(&server.admin_token), "{log}");
    let me = server.admin(&["whoami", "--json"]).success().json();
    assert_eq!(me["user"], "admin");
    assert_eq!(me["role"], "admin");
}

#[test]
fn sigterm_stops_cleanly_and_a_restart_keeps_everything() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let token = server.admin_token.clone();
    let (status, dir, log) = server.stop();
    assert!(status.success(), "{status:?} {log}");
    assert!(log.contains("stopped"), "{log}");

    let server = Server::start_in(dir);
    assert_eq!(
        server.admin_token, token,
        "a restart must not replace the admin token"
    );
    assert!(!server.log().contains("first start"));
    let teams = server
        .ferry(&token, &["team", "list", "--json"])
        .success()
        .json();
    assert_eq!(teams[0]["name"], "shop");
    server.admin(&["audit", "verify"]).success();
}

#[test]
fn a_database_without_its_audit_key_does_not_start() {
    let server = Server::start();
    let (_, dir, _) = server.stop();
    std::fs::remove_file(dir.path().join("data/audit-key")).unwrap();
    let run = crate::harness::Run::of(&mut crate::harness::server_command(
        &dir.path().join("data"),
    ));
    run.fails(1, "audit-key is missing but the database exists");
}

#[tokio::test]
async fn healthz_metrics_and_openapi() {
    let server = Server::start();
    server.admin(&["team", "list"]).success();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", server.url)).send();

    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            r#"ferry_http_requests_total{method="GET",route="/api/v1/teams",status="200"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_http_request_duration_seconds_bucket"),
        "{metrics}"
    );

    let openapi: serde_json::Value = get("/api/v1/openapi.json")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/api/v1/me",
        "/api/v1/teams",
        "/api/v1/users",
        "/api/v1/roles",
        "/api/v1/roles/{name}/levels",
        "/api/v1/environments",
        "/api/v1/environments/{name}",
        "/api/v1/apps",
        "/api/v1/apps/{name}",
        "/api/v1/audit",
        "/api/v1/audit/verify",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    assert!(openapi["components"]["securitySchemes"]["bearer"].is_object());
}
