//! Undoing pipeline changes through the binary with real agents: an environment that blocks
//! releases is made optional or deleted, and deleting one is refused, naming why, while it is
//! in use.

use crate::deployments::{current, release, setup, start_agent};
use crate::harness::{audit_len, audit_summary, Server};
use crate::pipeline::{pipeline_order, role};
use crate::policy::finished;

#[test]
fn an_environment_without_targets_blocks_releases_until_it_is_optional() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    let pp = start_agent(&server, "pp", "pp-1");
    release(&server, "1.0.0", "");

    // Creating qa warns: nothing can pass it until it has a target or is optional.
    let created = server
        .admin(&["env", "create", "qa", "--after", "dev", "--json"])
        .success();
    assert!(
        created.stderr.starts_with("warning: qa has no targets")
            && created.stderr.contains("ferry env set qa --optional true"),
        "{created:?}"
    );
    let warning = created.json()["warning"].as_str().unwrap().to_owned();
    assert!(
        warning.contains("ferry target enroll qa TARGET"),
        "{warning}"
    );

    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["promote", "web", "--from", "dev", "--to", "pp"])
        .fails(3, "which is \"qa\"");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "pp"])
        .fails(3, "has not succeeded in \"qa\"");
    // Following that advice, the empty qa says how to get past it.
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "qa"])
        .fails(
            3,
            "or let releases skip it: `ferry env set qa --optional true`",
        );

    let events = audit_len(&server);
    let set = server
        .admin(&["env", "set", "qa", "--optional", "true"])
        .success();
    assert!(set.stdout.contains("optional"), "{set:?}");
    assert_eq!(
        audit_summary(&server, events),
        ["admin environment.set-policy environment/qa"]
    );
    let listed = server.admin(&["env", "list"]).success().stdout;
    assert!(listed.contains("OPTIONAL"), "{listed}");
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    assert_eq!(envs[1]["name"], "qa");
    assert_eq!(envs[1]["optional"], true);
    assert_eq!(envs[2]["optional"], false);

    // Past the optional qa, success in dev is enough for pp.
    server
        .admin(&["promote", "web", "--from", "dev", "--to", "pp", "--wait"])
        .success();
    assert_eq!(current(&pp.root, "web"), "releases/1.0.0");
    // prd still needs pp: only the optional environment is skipped.
    release(&server, "1.1.0", "");
    server
        .admin(&["deploy", "web", "1.1.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["deploy", "web", "1.1.0", "--to", "prd"])
        .fails(3, "has not succeeded in \"pp\"");

    // And qa, never used, can go altogether.
    server
        .admin(&["env", "set", "qa", "--optional", "false"])
        .success();
    let deleted = server.admin(&["env", "delete", "qa"]).success();
    assert_eq!(
        deleted.stdout,
        "deleted environment qa; pipeline: dev → pp → prd\n"
    );
    assert_eq!(pipeline_order(&server), ["dev", "pp", "prd"]);
    let positions: Vec<u64> = server
        .admin(&["env", "list", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [0, 1, 2], "the gap closes");
    server
        .admin(&["deploy", "web", "1.1.0", "--to", "pp", "--wait"])
        .success();
}

#[test]
fn deleting_an_environment_is_refused_while_it_is_in_use() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["env", "create", "uat", "--after", "dev"])
        .success();
    server
        .admin(&[
            "env",
            "set",
            "uat",
            "--approvals",
            "1",
            "--freeze",
            "0 3 29 2 * 1m",
        ])
        .success();
    let _uat = start_agent(&server, "uat", "uat-1");

    // A deployment awaiting approval is active.
    let asked = server
        .admin(&["deploy", "web", "1.0.0", "--to", "uat", "--json"])
        .success()
        .json();
    assert_eq!(asked["status"], "awaiting_approval");
    let id = asked["id"].to_string();
    server
        .admin(&["env", "delete", "uat"])
        .fails(3, &format!("deployment {id} is active in \"uat\""));

    // A release runs there.
    server.admin(&["approve", &id]).success();
    assert_eq!(finished(&server, &id)["status"], "succeeded");
    server
        .admin(&["env", "delete", "uat"])
        .fails(3, "web 1.0.0 runs in \"uat\" (on uat-1)");

    // With its target removed, its history stays: it can be made optional instead.
    server.admin(&["target", "remove", "uat-1"]).success();
    server
        .admin(&["env", "delete", "uat"])
        .fails(3, "\"uat\" has a history (1 deployment(s))")
        .fails(3, "ferry env set uat --optional true");

    // A target enrolled (not yet running anything) is named, and goes with it once removed.
    server
        .admin(&["env", "create", "qa", "--after", "dev"])
        .success();
    let enrolled = server.admin(&["target", "enroll", "qa", "qa-1"]).success();
    assert!(
        enrolled.stderr.contains(&format!(
            "ferry agent enroll --root DIR --server {} TOKEN",
            server.url
        )),
        "{enrolled:?}"
    );
    server.admin(&["env", "delete", "qa"]).fails(
        3,
        "targets are enrolled in \"qa\" (qa-1): remove them first",
    );
    server.admin(&["target", "remove", "qa-1"]).success();
    server
        .admin(&["role", "set", "developer", "--env", "qa", "--level", "view"])
        .success();
    let events = audit_len(&server);
    server.admin(&["env", "delete", "qa"]).success();
    assert_eq!(
        audit_summary(&server, events),
        ["admin environment.delete environment/qa"]
    );
    let roles = server.admin(&["role", "list", "--json"]).success().json();
    assert!(
        roles
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["levels"].get("qa").is_none()),
        "role levels go with it: {roles}"
    );
    // Its name is free again.
    server
        .admin(&["env", "create", "qa", "--after", "dev"])
        .success();
    server.admin(&["env", "delete", "qa"]).success();

    // Production goes only when what would follow it is protected.
    server.admin(&["env", "delete", "prd"]).fails(
        3,
        "deleting it would make \"pp\" production, and \"pp\" is not protected",
    );
    server.admin(&["env", "create", "dr"]).success();
    server.admin(&["env", "delete", "dr"]).success();

    // A developer may not change the pipeline; nothing changes.
    let dana = server.create_user("dana", "developer", &[]);
    server
        .ferry(&dana, &["env", "delete", "pp"])
        .fails(3, "needs the release-manager or admin role");
    assert_eq!(pipeline_order(&server), ["dev", "uat", "pp", "prd"]);
}

#[test]
fn the_last_environment_is_never_deleted() {
    let server = Server::start();
    server
        .admin(&["env", "delete", "nope"])
        .fails(1, "no environment named \"nope\"");
    server.admin(&["env", "delete", "dev"]).success();
    server.admin(&["env", "delete", "pp"]).success();
    assert_eq!(pipeline_order(&server), ["prd"]);
    server
        .admin(&["env", "delete", "prd"])
        .fails(3, "\"prd\" is the only environment of the pipeline");
}

#[test]
fn an_unused_environment_is_renamed_everywhere_and_a_used_one_is_not() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    server
        .admin(&["env", "create", "qa", "--after", "dev"])
        .success();
    server
        .admin(&[
            "env",
            "set",
            "qa",
            "--approvals",
            "1",
            "--freeze",
            "0 3 29 2 * 1m",
        ])
        .success();
    server
        .admin(&["role", "set", "developer", "--env", "qa", "--level", "view"])
        .success();
    server.admin(&["target", "enroll", "qa", "qa-1"]).success();

    let events = audit_len(&server);
    let renamed = server
        .admin(&["env", "rename", "qa", "uat", "--json"])
        .success()
        .json();
    assert_eq!(
        (renamed["name"].as_str(), renamed["position"].as_u64()),
        (Some("uat"), Some(1))
    );
    assert_eq!(renamed["approvals"], 1, "its policy goes with it");
    assert_eq!(renamed["freeze"][0], "0 3 29 FEB * 1m");
    assert_eq!(
        audit_summary(&server, events),
        ["admin environment.rename environment/qa"]
    );
    assert_eq!(pipeline_order(&server), ["dev", "uat", "pp", "prd"]);
    let developer = role(&server, "developer");
    assert_eq!(developer["levels"]["uat"], "view");
    assert!(developer["levels"].get("qa").is_none(), "{developer}");
    let targets = server
        .admin(&["target", "list", "--env", "uat", "--json"])
        .success()
        .json();
    assert_eq!(targets[0]["name"], "qa-1", "{targets}");

    server
        .admin(&["env", "rename", "uat", "pp"])
        .fails(3, "environment \"pp\" already exists");
    server
        .admin(&["env", "rename", "qa", "test"])
        .fails(1, "no environment named \"qa\"");
    server
        .admin(&["env", "rename", "uat", "Bad Name"])
        .fails(3, "name \"Bad Name\"");

    // Once something was deployed there, its history keeps the name.
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["env", "rename", "dev", "develop"])
        .fails(3, "\"dev\" has a history (1 deployment(s))")
        .fails(3, "ferry env set dev --optional true");
    assert_eq!(pipeline_order(&server), ["dev", "uat", "pp", "prd"]);
}
