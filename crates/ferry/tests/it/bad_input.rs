//! Bad input gets a clear refusal and changes nothing; the server never fails on it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{audit_len, Server};

#[test]
fn invalid_names_are_refused_with_exit_3_and_nothing_written() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let before = audit_len(&server);
    let cases: [(&[&str], &str); 8] = [
        (&["team", "create", "Shop"], "invalid team name \"Shop\""),
        (&["team", "create", "--", "-shop"], "invalid team name"),
        (&["team", "create", &"a".repeat(64)], "invalid team name"),
        (&["user", "create", "Dana"], "invalid user name"),
        (
            &["user", "create", "dana", "--team", "shop:Lead"],
            "invalid role name",
        ),
        (
            &["app", "create", "web site", "--team", "shop"],
            "invalid application name",
        ),
        (&["env", "create", "qa/1"], "invalid environment name"),
        (&["app", "show", "../etc"], "invalid application name"),
    ];
    for (args, message) in cases {
        server.admin(args).fails(3, message);
    }
    assert_eq!(audit_len(&server), before);
}

#[test]
fn json_errors_are_one_document_on_stdout() {
    let server = Server::start();
    let run = server
        .admin(&["app", "show", "nope", "--json"])
        .fails(1, "no application named \"nope\"");
    let error = run.json();
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(
        error["error"]["message"],
        "no application named \"nope\": see `ferry app list`"
    );
}

pub(crate) async fn call(
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text:?}"));
    (status, value)
}

#[tokio::test]
async fn api_refusals_have_the_right_status_and_a_message() {
    let server = Server::start();
    let admin = Some(server.admin_token.as_str());
    let before = audit_len(&server);

    let (status, body) = call(&server, Method::GET, "/api/v1/teams", None, None).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing API token"));
    let (status, _) = call(
        &server,
        Method::GET,
        "/api/v1/teams",
        Some("ferry_0000"),
        None,
    )
    .await;
    assert_eq!(status, 401);

    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/teams",
        admin,
        Some(br#"{"name": 7}"#.to_vec()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("field `name`"),
        "{body}"
    );
    let (status, body) = call(
        &server,
        Method::POST,
        "/api/v1/teams",
        admin,
        Some(br#"{"name": "a", "colour": 1}"#.to_vec()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{body}"
    );
    let (status, _) = call(
        &server,
        Method::POST,
        "/api/v1/teams",
        admin,
        Some(br#"{"name": "Bad"}"#.to_vec()),
    )
    .await;
    assert_eq!(status, 422);

    let huge = serde_json::to_vec(&json!({ "name": "x".repeat(2 * 1024 * 1024) })).unwrap();
    let (status, body) = call(&server, Method::POST, "/api/v1/teams", admin, Some(huge)).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");

    let (status, _) = call(&server, Method::GET, "/api/v1/nothing-here", admin, None).await;
    assert_eq!(status, 404);
    let (status, body) = call(&server, Method::DELETE, "/api/v1/teams", admin, None).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let (status, _) = call(
        &server,
        Method::GET,
        "/api/v1/audit?limit=lots",
        admin,
        None,
    )
    .await;
    assert_eq!(status, 400);

    assert_eq!(audit_len(&server), before, "no refusal may change anything");
}

/// Sends malformed input to every operation in the OpenAPI document, so a new endpoint is
/// covered the moment it exists. Any 5xx is a bug.
#[tokio::test]
async fn garbage_to_every_endpoint_never_fails_the_server() {
    let server = Server::start();
    let admin = Some(server.admin_token.as_str());
    let openapi: Value = reqwest::get(format!("{}/api/v1/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deep = "[".repeat(100_000);
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        deep.into_bytes(),
        vec![0xff, 0xfe, 0x00],
        br#"{"name": "\u0000", "team": "", "after": "..", "env": "x", "level": "admin", "approvals": 4294967296}"#.to_vec(),
        br#"{"name": "ok-name", "team": "ok", "teams": [{"team": "x", "role": null}, {"team": "x"}], "keep": 0}"#.to_vec(),
        br#"{"approvals": -1, "self_approval": "yes", "protected": 1}"#.to_vec(),
    ];
    let params = [
        "x",
        "..",
        "%00",
        "%2e%2e",
        "%FF",
        &"a".repeat(2000),
        "Ünï",
        "a%2Fb",
    ];
    let mut n_requests = 0;
    for (path, operations) in openapi["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let concrete: Vec<String> = if path.contains('{') {
                params
                    .iter()
                    .map(|p| {
                        let start = path.find('{').unwrap();
                        let end = path.find('}').unwrap();
                        format!("{}{p}{}", &path[..start], &path[end + 1..])
                    })
                    .collect()
            } else {
                vec![
                    path.clone(),
                    format!("{path}?app=..&limit=-1"),
                    format!("{path}?app=%00"),
                ]
            };
            for url in &concrete {
                for body in &bodies {
                    for token in [admin, None, Some("garbage")] {
                        let mut request = reqwest::Client::new()
                            .request(method.clone(), format!("{}{url}", server.url));
                        if let Some(token) = token {
                            request = request.bearer_auth(token);
                        }
                        let response = request.body(body.clone()).send().await.unwrap();
                        n_requests += 1;
                        assert!(
                            !response.status().is_server_error(),
                            "{method} {url} with {:?} gave {}",
                            String::from_utf8_lossy(&body[..body.len().min(80)]),
                            response.status()
                        );
                    }
                }
            }
        }
    }
    assert!(n_requests > 500, "{n_requests}");
    assert!(!server.log().contains("panic"), "{}", server.log());
    server.admin(&["audit", "verify"]).success();
}

#[test]
fn a_reader_that_stops_early_ends_the_client_quietly() {
    use std::process::{Command, Stdio};

    let server = Server::start();
    let mut child = Command::new(crate::harness::FERRY)
        .args(["audit", "--json"])
        .env("FERRY_SERVER", &server.url)
        .env("FERRY_TOKEN", &server.admin_token)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before the client has its answer to print.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // As a Unix tool stopped by SIGPIPE.
    assert_eq!(output.status.code(), Some(141), "{output:?}");
}

#[test]
fn an_empty_token_is_named_as_empty() {
    let server = Server::start();
    server
        .ferry("", &["status"])
        .fails(2, "FERRY_TOKEN is empty");
}

#[test]
fn creating_a_user_says_their_role_in_each_team() {
    let server = Server::start();
    server.admin(&["team", "create", "shop"]).success();
    let created = server
        .admin(&[
            "user",
            "create",
            "lee",
            "--role",
            "developer",
            "--team",
            "shop:lead",
        ])
        .success();
    assert!(
        created
            .stderr
            .starts_with("created user lee with role developer, lead in shop;"),
        "{created:?}"
    );
}
