//! What schemathesis found running `.ci/api-properties`: answers the OpenAPI document did
//! not tell. Each case is the request it sent, answered by a real server and checked against
//! the document that server serves.

use reqwest::Method;

use crate::bad_input::call;
use crate::deployments::{release, setup, start_agent};
use crate::ferry_toml::get;
use crate::harness::{agent_credential, Server};

/// One request schemathesis sent: the operation as the document names it, the request, who
/// sent it, and the refusal it got, which the document must list with the error body.
struct Found {
    op: &'static str,
    send: &'static str,
    body: Option<&'static str>,
    caller: Caller,
    status: u16,
}

/// Whose credential a request carries.
#[derive(Clone, Copy)]
enum Caller {
    Admin,
    Nobody,
    /// The agent of `dev-1`.
    Agent,
}

const fn found(
    op: &'static str,
    send: &'static str,
    body: Option<&'static str>,
    status: u16,
) -> Found {
    Found {
        op,
        send,
        body,
        caller: Caller::Admin,
        status,
    }
}

const FOUND: &[Found] = &[
    Found {
        caller: Caller::Nobody,
        ..found("POST /api/v1/admin/fsck", "/api/v1/admin/fsck", None, 401)
    },
    found(
        "GET /api/v1/apps/{app}/config/{env}",
        "/api/v1/apps/0/config/0?revision=0&x-schemathesis-unknown-property=42",
        None,
        400,
    ),
    found(
        "DELETE /api/v1/routes/{category}",
        "/api/v1/routes/%5B",
        None,
        422,
    ),
    found("GET /api/v1/backlog", "/api/v1/backlog?app=", None, 422),
    found(
        "GET /api/v1/teams/{team}/deliveries/{id}",
        "/api/v1/teams/%2B0.0/deliveries/528093",
        None,
        422,
    ),
    found(
        "POST /api/v1/apps/{app}/blobs",
        "/api/v1/apps/0/blobs",
        None,
        404,
    ),
    found(
        "POST /api/v1/apps/{app}/blobs/fetch",
        "/api/v1/apps/0/blobs/fetch",
        None,
        400,
    ),
    found(
        "POST /api/v1/backups",
        "/api/v1/backups",
        Some(r#"{"app": "", "env": "", "target": ""}"#),
        422,
    ),
    found(
        "POST /api/v1/drift/check",
        "/api/v1/drift/check",
        Some(r#"{"app": null, "env": null, "target": ""}"#),
        422,
    ),
    // A struct read from an array of its fields' values: accepted before, as a check of
    // every target.
    found(
        "POST /api/v1/drift/check",
        "/api/v1/drift/check",
        Some("[null, null]"),
        400,
    ),
    found(
        "POST /api/v1/deployments/{id}/approve",
        "/api/v1/deployments/1/approve",
        Some(r#"{"reason": null, "version": ""}"#),
        422,
    ),
    // With an agent's credential.
    Found {
        caller: Caller::Agent,
        ..found(
            "POST /api/v1/agent/blobs/fetch",
            "/api/v1/agent/blobs/fetch",
            Some(r#"{"hashes": [""]}"#),
            422,
        )
    },
    Found {
        caller: Caller::Agent,
        ..found(
            "POST /api/v1/agent/report",
            "/api/v1/agent/report",
            Some(
                r#"{"app": "", "config": 0, "current_config": 0, "current_version": null, "deployment": 0, "logs": [], "outcome": "failed", "output_tail": null, "reason": null, "version": null}"#,
            ),
            404,
        )
    },
];

#[tokio::test]
async fn every_refusal_schemathesis_found_is_in_the_document() {
    let server = Server::start();
    // Deployment 1, for the approval with an empty version.
    setup(&server);
    let agent = start_agent(&server, "dev", "dev-1");
    let credential = agent_credential(&agent.root);
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let openapi = get(&server, "/api/v1/openapi.json").await;
    for case in FOUND {
        let (method, path) = case.op.split_once(' ').unwrap();
        let token = match case.caller {
            Caller::Admin => Some(server.admin_token.as_str()),
            Caller::Nobody => None,
            Caller::Agent => Some(credential.as_str()),
        };
        let body = case.body.map(|b| b.as_bytes().to_vec());
        let (status, answer) = call(&server, method.parse().unwrap(), case.send, token, body).await;
        assert_eq!(
            status.as_u16(),
            case.status,
            "{} {}: {answer}",
            method,
            case.send
        );
        assert!(
            answer["error"]["message"].is_string(),
            "{}: {answer}",
            case.op
        );
        let documented =
            &openapi["paths"][path][method.to_lowercase()]["responses"][case.status.to_string()];
        assert_eq!(
            documented["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody",
            "{} does not document its {}",
            case.op,
            case.status
        );
    }
}

#[tokio::test]
async fn the_document_names_what_the_server_sends() {
    let server = Server::start();
    let openapi = get(&server, "/api/v1/openapi.json").await;
    let schemas = &openapi["components"]["schemas"];
    // GET /api/v1/status answered the status document, which the document had replaced
    // with a deployment's status of the same name.
    let (status, answer) = call(
        &server,
        Method::GET,
        "/api/v1/status",
        Some(&server.admin_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["apps"].is_array(), "{answer}");
    assert_eq!(schemas["Status"]["required"], serde_json::json!(["apps"]));
    // Words ferry sends were listed with their Rust names ("Deploy", "Pending").
    assert_eq!(
        schemas["Kind"]["enum"],
        serde_json::json!(["deploy", "rollback", "stage"])
    );
    let states = schemas["TaskState"]["enum"].as_array().unwrap();
    assert!(states.contains(&"pending".into()), "{states:?}");
    let statuses = schemas["DeploymentStatus"]["enum"].as_array().unwrap();
    assert!(
        statuses.contains(&"awaiting_approval".into()),
        "{statuses:?}"
    );
    // Enrolling an agent takes its one-time token in the body, not a bearer credential.
    let enroll = &openapi["paths"]["/api/v1/agent/enroll"]["post"];
    assert_eq!(enroll["security"], serde_json::json!([{}]));
    assert!(enroll["responses"]["401"].is_null(), "{enroll}");
}
