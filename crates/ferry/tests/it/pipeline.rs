//! The environment pipeline and its policy.

use serde_json::Value;

use crate::harness::{audit_len, Server};

/// The pipeline's environment names, first first.
pub(crate) fn pipeline_order(server: &Server) -> Vec<String> {
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    envs.as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// One role as `ferry role list --json` shows it.
pub(crate) fn role(server: &Server, name: &str) -> Value {
    let roles = server.admin(&["role", "list", "--json"]).success().json();
    roles
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name}: {roles}"))
        .clone()
}

#[test]
fn the_default_pipeline_is_dev_pp_prd_with_production_protected() {
    let server = Server::start();
    let listed = server.admin(&["env", "list"]).success().stdout;
    assert!(listed.starts_with("pipeline: dev → pp → prd\n"), "{listed}");
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    let prd = &envs[2];
    assert_eq!(
        (prd["name"].as_str(), prd["approvals"].as_u64()),
        (Some("prd"), Some(1))
    );
    assert_eq!(prd["self_approval"], false);
    assert_eq!(prd["protected"], true);
    assert_eq!(envs[0]["approvals"], 0);
}

#[test]
fn a_new_environment_takes_its_place_policy_and_levels() {
    let server = Server::start();
    server
        .admin(&["role", "set", "developer", "--env", "pp", "--level", "view"])
        .success();
    let qa = server
        .admin(&["env", "create", "qa", "--after", "pp", "--json"])
        .success()
        .json();
    assert_eq!(qa["position"], 2);
    let dr = server
        .admin(&["env", "create", "dr", "--json"])
        .success()
        .json();
    assert_eq!(
        (dr["position"].as_u64(), dr["approvals"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(pipeline_order(&server), ["dev", "pp", "qa", "prd", "dr"]);

    let developer = role(&server, "developer");
    assert_eq!(developer["levels"]["qa"], "view", "qa inherits pp's levels");
    assert_eq!(
        developer["levels"]["dr"], "deploy",
        "dr inherits prd's levels"
    );

    server
        .admin(&["env", "create", "qa", "--after", "dev"])
        .fails(3, "environment \"qa\" already exists");
    server
        .admin(&["env", "create", "uat", "--after", "test"])
        .fails(1, "no environment named \"test\"");
}

#[test]
fn release_managers_change_policy_and_developers_cannot() {
    let server = Server::start();
    let developer = server.create_user("dana", "developer", &[]);
    let manager = server.create_user("rita", "release-manager", &[]);
    let events_before = audit_len(&server);

    server
        .ferry(&developer, &["env", "set", "prd", "--approvals", "0"])
        .fails(
            3,
            "changing environments and their policy needs the release-manager or admin role",
        );
    server
        .ferry(&developer, &["env", "create", "qa", "--after", "dev"])
        .fails(3, "needs the release-manager or admin role");
    let prd = &server.admin(&["env", "list", "--json"]).success().json()[2];
    assert_eq!(prd["approvals"], 1, "a refusal changes nothing");
    assert_eq!(
        audit_len(&server),
        events_before,
        "a refusal writes no audit event"
    );

    let changed = server
        .ferry(
            &manager,
            &[
                "env",
                "set",
                "prd",
                "--approvals",
                "2",
                "--self-approval",
                "allow",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(
        (
            changed["approvals"].as_u64(),
            changed["self_approval"].as_bool()
        ),
        (Some(2), Some(true))
    );
    assert_eq!(
        changed["protected"], true,
        "fields not given stay as they were"
    );
    let last = server
        .admin(&["audit", "--limit", "1", "--json"])
        .success()
        .json();
    assert_eq!(last[0]["actor"], "rita");
    assert_eq!(last[0]["action"], "environment.set-policy");
    assert_eq!(last[0]["details"]["approvals"], 2);
}

#[test]
fn policy_changes_are_checked() {
    let server = Server::start();
    server
        .admin(&["env", "set", "prd"])
        .fails(2, "nothing to change");
    server
        .admin(&["env", "set", "prd", "--approvals", "11"])
        .fails(3, "approvals must be between 0 and 10");
    server
        .admin(&["env", "set", "nope", "--approvals", "1"])
        .fails(1, "no environment named \"nope\"");
    server
        .admin(&["env", "set", "prd", "--self-approval", "maybe"])
        .fails(2, "invalid value 'maybe'");
}
