//! Retention never removes a release the pipeline still needs: what the regression guard
//! compares with, and what a rollback goes back to.

use serde_json::Value;

use crate::deployments::start_agent_per_env;
use crate::harness::{changes_len, Server};
use crate::support::{backports, open_incident, release, BUGGY, FIXED};

#[test]
fn retention_keeps_what_the_regression_guard_and_rollbacks_still_need() {
    let server = Server::start_with(&["--gc-grace", "0s"]);
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop", "--keep", "1"])
        .success();
    // No approvals and no protection in prd, so only the guard and rollbacks pin releases.
    server
        .admin(&[
            "env",
            "set",
            "prd",
            "--approvals",
            "0",
            "--protected",
            "false",
        ])
        .success();
    let _agents = start_agent_per_env(&server);
    let admin = server.admin_token.clone();
    let deploy = |version: &str, env: &str| {
        server
            .admin(&["deploy", "web", version, "--to", env, "--wait"])
            .success();
    };
    release(&server, "1.0.0", &[("checkout.js", BUGGY)], &[]);
    for env in ["dev", "pp", "prd"] {
        deploy("1.0.0", env);
    }
    let incident = open_incident(&server, &admin, "prd", "critical", "payments round wrongly");
    let id = incident["id"].to_string();
    server.admin(&["hotfix", "start", &id, "--wait"]).success();
    release(
        &server,
        "1.0.1",
        &[("checkout.js", FIXED)],
        &["--hotfix-of", "1.0.0", "--incident", &id],
    );
    deploy("1.0.1", "pp");
    deploy("1.0.1", "prd");
    // Product releases that include the fix move every environment on.
    for version in ["1.1.0", "1.2.0"] {
        release(
            &server,
            version,
            &[("checkout.js", FIXED), ("about.html", version)],
            &[],
        );
        for env in ["dev", "pp", "prd"] {
            deploy(version, env);
        }
    }
    assert_eq!(backports(&server)[0]["status"], "done");

    // Nothing runs 1.0.0 or 1.0.1 and no rollback goes back to them, but the guard
    // compares every candidate with both, for good.
    let pruned = server
        .admin(&["release", "prune", "web", "--json"])
        .success()
        .json();
    assert_eq!(pruned["removed"], serde_json::json!([]), "{pruned}");
    let why = |version: &str| -> String {
        pruned["kept"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["version"] == version)
            .and_then(|k| k["reason"].as_str())
            .unwrap_or_else(|| panic!("{version} is not kept: {pruned}"))
            .to_owned()
    };
    // Every reason is given, not only the first found.
    assert_eq!(
        why("1.1.0"),
        "a rollback in dev goes back to it; a rollback in pp goes back to it; \
         a rollback in prd goes back to it"
    );
    assert!(
        why("1.0.1").starts_with("the hotfix of backport obligation"),
        "{pruned}"
    );
    assert!(
        why("1.0.0").starts_with("the base of the hotfix of backport obligation"),
        "{pruned}"
    );
    let shown = server.admin(&["release", "prune", "web"]).success();
    assert!(
        shown.stdout.contains("kept 1.0.0: the base of the hotfix"),
        "{shown:?}"
    );

    // So the guard still works: a release that drops the fix is refused, not a 500.
    release(&server, "1.3.0", &[("checkout.js", BUGGY)], &[]);
    deploy("1.3.0", "dev");
    let refused = server
        .admin(&["deploy", "web", "1.3.0", "--to", "pp"])
        .fails(3, "1.0.1");
    assert!(refused.stderr.contains("checkout.js"), "{refused:?}");
    let listed: Value = server
        .admin(&["release", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 5, "{listed}");
}

#[test]
fn the_teams_lead_changes_how_many_releases_are_kept() {
    let server = Server::start_with(&["--gc-grace", "0s"]);
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop"])
        .success();
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    for version in ["1.0.0", "1.1.0", "1.2.0"] {
        release(&server, version, &[("index.html", version)], &[]);
    }
    let changes = changes_len(&server);

    server
        .ferry(&dana, &["app", "set", "web", "--keep", "1"])
        .fails(3, "lead");
    server
        .ferry(&lee, &["app", "set", "web", "--keep", "0"])
        .fails(3, "keep between 1 and 1000");
    server
        .ferry(&lee, &["app", "set", "web"])
        .fails(2, "--keep");
    server
        .ferry(&lee, &["app", "set", "nope", "--keep", "1"])
        .fails(1, "ferry app list");
    assert_eq!(changes_len(&server), changes, "refusals change nothing");

    let set = server
        .ferry(&lee, &["app", "set", "web", "--keep", "1"])
        .success();
    assert_eq!(set.stdout, "web keeps 1 release\n");
    let audit = server.admin(&["audit", "--json"]).success().json();
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "app.keep", "{last}");
    assert_eq!(last["actor"], "lee", "{last}");
    // The same value again changes nothing.
    server
        .ferry(&lee, &["app", "set", "web", "--keep", "1"])
        .success();
    assert_eq!(changes_len(&server), changes + 1);

    let pruned = server
        .admin(&["release", "prune", "web", "--json"])
        .success()
        .json();
    assert_eq!(
        pruned["removed"],
        serde_json::json!(["1.1.0", "1.0.0"]),
        "{pruned}"
    );
}
