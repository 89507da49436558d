//! Stage-only deployments under the pipeline's policy: staging puts a release's content on an
//! environment's targets, so it is held to the release's lifecycle and to freeze windows like
//! a deployment; it switches nothing, so it waits for no approval.

use crate::deployments::{current, release, setup, start_agent};
use crate::harness::{changes_len, Server};

/// Stage-only to `env`, with extra flags, as `token`.
fn stage<'a>(server: &Server, token: &str, env: &'a str, extra: &[&'a str]) -> crate::harness::Run {
    let mut args = vec!["deploy", "web", "1.0.0", "--to", env, "--stage-only"];
    args.extend_from_slice(extra);
    server.ferry(token, &args)
}

#[test]
fn staging_obeys_the_lifecycle_and_freeze_windows_and_waits_for_no_approval() {
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    let pp = start_agent(&server, "pp", "pp-1");
    let prd = start_agent(&server, "prd", "prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    release(&server, "1.0.0", "");
    let staged_on = |root: &std::path::Path| root.join("apps/web/releases/1.0.0").exists();

    // The release has not succeeded in dev: pp's targets do not get it, not even staged.
    let events = changes_len(&server);
    let refused = stage(&server, &server.admin_token, "pp", &["--json"])
        .fails(3, "has not succeeded in \"dev\"");
    assert_eq!(refused.json()["error"]["code"], "lifecycle", "{refused:?}");
    assert_eq!(changes_len(&server), events, "a refusal changes nothing");
    assert!(!staged_on(&pp.root));
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    stage(&server, &server.admin_token, "prd", &[]).fails(3, "has not succeeded in \"pp\"");

    // A frozen environment is frozen for staging too; an admin's break-glass gets through,
    // audited as such.
    server
        .admin(&["env", "set", "pp", "--freeze", "* * * * * 2h"])
        .success();
    let frozen = stage(&server, &dana, "pp", &["--json"]).fails(
        3,
        "is frozen continuously (its freeze windows leave no gap)",
    );
    assert_eq!(frozen.json()["error"]["code"], "frozen", "{frozen:?}");
    stage(
        &server,
        &dana,
        "pp",
        &["--break-glass", "--reason", "prepare"],
    )
    .fails(3, "needs admin");
    let glass = stage(
        &server,
        &server.admin_token,
        "pp",
        &[
            "--break-glass",
            "--reason",
            "prepare the fix",
            "--wait",
            "--json",
        ],
    )
    .success()
    .json();
    assert_eq!(
        (glass["kind"].as_str(), glass["status"].as_str()),
        (Some("stage"), Some("succeeded")),
        "{glass}"
    );
    assert!(staged_on(&pp.root));
    assert_eq!(current(&pp.root, "web"), "", "staged, not switched");
    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let glass_event = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "deployment.break_glass")
        .unwrap_or_else(|| panic!("no break-glass event: {audit}"));
    let summary = glass_event["details"]["break_glass"]["summary"].to_string();
    assert!(
        summary.contains("the continuous freeze") && !summary.contains("approval"),
        "staging overrides the freeze only: {glass_event}"
    );
    server
        .admin(&["env", "set", "pp", "--unfreeze", "* * * * * 2h"])
        .success();
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "pp", "--wait"])
        .success();

    // Earned, prd stages it at once: a switch there waits for approval, staging does not.
    let staged = stage(&server, &dana, "prd", &["--wait", "--json"])
        .success()
        .json();
    assert_eq!(staged["status"], "succeeded", "{staged}");
    assert!(staged_on(&prd.root));
    assert_eq!(current(&prd.root, "web"), "");

    // --allow-downgrade and --override-guard concern a switch: refused with staging.
    stage(&server, &server.admin_token, "prd", &["--allow-downgrade"])
        .fails(3, "--stage-only switches nothing");
}
