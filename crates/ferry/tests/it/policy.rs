//! Pipeline policy through the binary with real agents: lifecycles, approvals without
//! self-approval, no silent downgrades, freeze windows and break-glass.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deployments::{current, release, setup, start_agent, start_agent_per_env};
use crate::harness::{Run, Server};

/// Follows a deployment until it leaves `awaiting_approval` and `running`.
pub(crate) fn finished(server: &Server, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = server
            .admin(&["deployment", "show", id, "--json"])
            .success()
            .json();
        let status = shown["status"].as_str().unwrap().to_owned();
        if status != "running" && status != "awaiting_approval" {
            return shown;
        }
        assert!(Instant::now() < deadline, "still {status}: {shown}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn id_of(run: &Run) -> String {
    run.json()["id"].to_string()
}

#[test]
fn a_release_walks_the_pipeline_and_production_waits_for_someone_elses_approval() {
    let server = Server::start();
    setup(&server);
    let dev = start_agent(&server, "dev", "dev-1");
    let pp = start_agent(&server, "pp", "pp-1");
    let prd = start_agent(&server, "prd", "prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    release(&server, "1.0.0", "");

    // A release enters an environment only after the one before it.
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "pp"])
        .fails(3, "has not succeeded in \"dev\"");
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .ferry(&dana, &["promote", "web", "--from", "dev", "--to", "prd"])
        .fails(3, "\"pp\"");
    server
        .ferry(
            &dana,
            &["promote", "web", "--from", "dev", "--to", "pp", "--wait"],
        )
        .success();
    assert_eq!(current(&dev.root, "web"), "releases/1.0.0");
    assert_eq!(current(&pp.root, "web"), "releases/1.0.0");

    // Production waits for an approval, and its targets stage the release meanwhile.
    let asked = server.ferry(
        &dana,
        &["promote", "web", "--from", "pp", "--to", "prd", "--json"],
    );
    let asked = asked.success();
    assert_eq!(asked.json()["status"], "awaiting_approval", "{asked:?}");
    let id = id_of(&asked);
    // `deployment show` says how far each target got with it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = server
            .ferry(&dana, &["deployment", "show", &id, "--json"])
            .success()
            .json();
        let ahead = &shown["targets"][0]["ahead"];
        if ahead == "staged" {
            break;
        }
        assert_eq!(ahead, "staging", "{shown}");
        assert!(Instant::now() < deadline, "prd never staged the release");
        std::thread::sleep(Duration::from_millis(50));
    }
    let shown = server.ferry(&dana, &["deployment", "show", &id]).success();
    let waiting = format!(
        "waiting for approval: 0 of 1 given; by someone with approve on prd other than dana (`ferry approve {id}`)"
    );
    assert!(
        shown
            .stdout
            .contains("staged: switches at once when approved")
            && shown.stdout.contains(&waiting),
        "{shown:?}"
    );
    assert!(prd.root.join("apps/web/releases/1.0.0/index.html").exists());
    assert_eq!(current(&prd.root, "web"), "", "staged, not switched");
    server
        .ferry(&dana, &["approve", &id])
        .fails(3, "needs approve or admin");
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "prd"])
        .fails(3, &format!("deployment {id}"));
    let approved = server
        .ferry(
            &lee,
            &["approve", &id, "--reason", "tested in pp", "--json"],
        )
        .success()
        .json();
    assert_eq!(approved["approvals"][0]["approver"], "lee", "{approved}");
    let done = finished(&server, &id);
    assert_eq!(done["status"], "succeeded");
    assert!(done["targets"][0].get("ahead").is_none(), "{done}");
    assert_eq!(current(&prd.root, "web"), "releases/1.0.0");
    server
        .ferry(&lee, &["approve", &id])
        .fails(3, "is not awaiting approval");

    // A rejection needs a reason and ends the deployment.
    release(&server, "1.0.1", "");
    for env in ["dev", "pp"] {
        server
            .ferry(&dana, &["deploy", "web", "1.0.1", "--to", env, "--wait"])
            .success();
    }
    let asked = server
        .ferry(&lee, &["deploy", "web", "1.0.1", "--to", "prd", "--json"])
        .success();
    let id = id_of(&asked);
    server
        .ferry(&lee, &["approve", &id])
        .fails(3, "denies self-approval");
    server.ferry(&lee, &["reject", &id]).fails(3, "--reason");
    let rejected = server
        .ferry(
            &lee,
            &["reject", &id, "--reason", "not on a Friday", "--json"],
        )
        .success()
        .json();
    assert_eq!(rejected["status"], "withdrawn");
    assert!(
        rejected["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "skipped"),
        "a withdrawn deployment switches nothing: {rejected}"
    );
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap()
            .contains("withdrawn by lee: not on a Friday"),
        "{rejected}"
    );
    assert_eq!(current(&prd.root, "web"), "releases/1.0.0");
    server
        .ferry(&lee, &["approve", "99999"])
        .fails(1, "no deployment 99999");

    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"deployment.approve") && actions.contains(&"deployment.reject"),
        "{actions:?}"
    );
}

#[test]
fn downgrades_freezes_break_glass_and_hotfixes() {
    let server = Server::start();
    setup(&server);
    let dev = start_agent(&server, "dev", "dev-1");
    let _pp = start_agent(&server, "pp", "pp-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");
    for version in ["1.0.0", "1.0.1"] {
        server
            .ferry(&dana, &["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
    }

    // Going back is a rollback, or explicit.
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "dev"])
        .fails(3, "older than 1.0.1");
    server
        .ferry(
            &dana,
            &[
                "deploy",
                "web",
                "1.0.0",
                "--to",
                "dev",
                "--allow-downgrade",
                "--wait",
            ],
        )
        .success();
    assert_eq!(current(&dev.root, "web"), "releases/1.0.0");

    // A freeze window blocks deployments until it ends; break-glass needs admin.
    server
        .admin(&["env", "set", "dev", "--freeze", "0 25 * * * 1h"])
        .fails(3, "hour");
    server
        .admin(&["env", "set", "dev", "--freeze", "* * * * * 2h"])
        .success();
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    assert_eq!(envs[0]["freeze"][0], "* * * * * 2h", "{envs}");
    server
        .ferry(&dana, &["deploy", "web", "1.0.1", "--to", "dev"])
        .fails(
            3,
            "is frozen continuously (its freeze windows leave no gap)",
        );
    server
        .ferry(
            &dana,
            &[
                "deploy",
                "web",
                "1.0.1",
                "--to",
                "dev",
                "--break-glass",
                "--reason",
                "outage",
            ],
        )
        .fails(3, "needs admin");
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--break-glass"])
        .fails(3, "--reason");
    server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "dev",
            "--break-glass",
            "--reason",
            "outage",
            "--wait",
        ])
        .success();
    assert_eq!(current(&dev.root, "web"), "releases/1.0.1");
    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let glass = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "deployment.break_glass")
        .unwrap_or_else(|| panic!("no break-glass event: {audit}"));
    assert!(glass["details"].to_string().contains("outage"), "{glass}");
    server
        .admin(&["env", "set", "dev", "--unfreeze", "* * * * * 2h"])
        .success();
    server
        .ferry(
            &dana,
            &[
                "deploy",
                "web",
                "1.0.0",
                "--to",
                "dev",
                "--allow-downgrade",
                "--wait",
            ],
        )
        .success();

    // A hotfix starts at pp and never goes to dev.
    let site = crate::deployments::site(server.dir.path(), "1.0.0-fix", "");
    server
        .admin(&[
            "release",
            "create",
            "web",
            "1.0.2",
            "--from",
            site.to_str().unwrap(),
            "--hotfix-of",
            "1.0.0",
        ])
        .success();
    server
        .ferry(&dana, &["deploy", "web", "1.0.2", "--to", "dev"])
        .fails(3, "hotfixes start at \"pp\"");
    server
        .ferry(&dana, &["deploy", "web", "1.0.2", "--to", "pp", "--wait"])
        .success();
}

#[test]
fn a_per_app_grant_lets_one_user_deploy_one_application_and_see_nothing_else() {
    let server = Server::start();
    setup(&server);
    server
        .admin(&["app", "create", "api", "--team", "shop"])
        .success();
    server.admin(&["team", "create", "blog"]).success();
    let dev = start_agent(&server, "dev", "dev-1");
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let bo = server.create_user("bo", "viewer", &["blog:lead"]);
    let fay = server.create_user("fay", "viewer", &[]);
    release(&server, "1.0.0", "");
    server
        .ferry(&fay, &["app", "show", "web"])
        .fails(1, "no application named \"web\"");

    // Only a lead of the app's team (or an admin) grants.
    let grant = [
        "app", "grant", "web", "--user", "fay", "--env", "dev", "--level", "deploy",
    ];
    server
        .ferry(&bo, &grant)
        .fails(1, "no application named \"web\"");
    server.ferry(&lee, &grant).success();
    server
        .ferry(
            &lee,
            &[
                "app", "grant", "web", "--user", "fay", "--env", "dev", "--level", "root",
            ],
        )
        .fails(3, "unknown level");
    let grants = server
        .ferry(&lee, &["app", "grants", "web", "--json"])
        .success()
        .json();
    assert_eq!(grants[0]["level"], "deploy", "{grants}");

    let apps = server
        .ferry(&fay, &["app", "list", "--json"])
        .success()
        .json();
    let names: Vec<&str> = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"]);
    server
        .ferry(&fay, &["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    assert_eq!(current(&dev.root, "web"), "releases/1.0.0");
    server
        .ferry(&fay, &["promote", "web", "--from", "dev", "--to", "pp"])
        .fails(
            3,
            "the grant on \"web\" gives none on \"pp\", and this needs deploy",
        );

    server
        .ferry(
            &lee,
            &[
                "app", "grant", "web", "--user", "fay", "--env", "dev", "--level", "none",
            ],
        )
        .success();
    server
        .ferry(&fay, &["app", "show", "web"])
        .fails(1, "no application named \"web\"");
}

/// Ships `version` from dev through pp to a prd awaiting approval, requested by `requester`;
/// returns the deployment's id.
pub(crate) fn request_production(server: &Server, requester: &str, version: &str) -> String {
    for env in ["dev", "pp"] {
        server
            .admin(&["deploy", "web", version, "--to", env, "--wait"])
            .success();
    }
    let asked = server
        .ferry(
            requester,
            &["promote", "web", "--from", "pp", "--to", "prd", "--json"],
        )
        .success();
    assert_eq!(asked.json()["status"], "awaiting_approval", "{asked:?}");
    id_of(&asked)
}

// Regression: policy was judged only when a deployment was requested, so one requested
// before a freeze and approved during it went ahead.
#[test]
fn a_freeze_added_after_the_request_blocks_the_approval_that_would_start_it() {
    let server = Server::start();
    setup(&server);
    let _agents = start_agent_per_env(&server);
    let prd_root = server.dir.path().join("target-prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    release(&server, "1.0.0", "");
    let id = request_production(&server, &dana, "1.0.0");

    server
        .admin(&["env", "set", "prd", "--freeze", "* * * * * 2h"])
        .success();
    let events = crate::harness::changes_len(&server);
    let refused = server.ferry(&lee, &["approve", &id, "--json"]).fails(
        3,
        "is frozen continuously (its freeze windows leave no gap)",
    );
    assert!(
        refused.stderr.contains(&format!(
            "deployment {id} cannot start now: \"prd\" is frozen continuously"
        )) && refused.stderr.contains("the approval is not recorded"),
        "{refused:?}"
    );
    assert_eq!(refused.json()["error"]["code"], "frozen", "{refused:?}");
    let shown = server
        .admin(&["deployment", "show", &id, "--json"])
        .success()
        .json();
    assert_eq!(shown["status"], "awaiting_approval", "{shown}");
    assert_eq!(shown["approvals"], serde_json::json!([]), "{shown}");
    assert_eq!(
        crate::harness::changes_len(&server),
        events,
        "nothing changed"
    );
    // The attempt is kept for auditors, by whom and why it was refused.
    let trail = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let last = trail.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["action"], &last["actor"], &last["details"]["rule"]),
        (&"refused".into(), &"lee".into(), &"frozen".into()),
        "{last}"
    );
    assert_eq!(
        last["details"]["asked"],
        format!("approve deployment {id}"),
        "{last}"
    );
    assert_eq!(current(&prd_root, "web"), "");

    // Once the freeze is over, the same approval starts it.
    server
        .admin(&["env", "set", "prd", "--unfreeze", "* * * * * 2h"])
        .success();
    server.ferry(&lee, &["approve", &id]).success();
    assert_eq!(finished(&server, &id)["status"], "succeeded");
    assert_eq!(current(&prd_root, "web"), "releases/1.0.0");
}

// Regression: approvals were counted before the lock was taken, so two approvals landing
// together with two required each saw none and the deployment never started.
#[test]
fn two_approvals_at_once_start_a_deployment_that_needs_two() {
    let server = Server::start();
    setup(&server);
    let _agents = start_agent_per_env(&server);
    let prd_root = server.dir.path().join("target-prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let kim = server.create_user("kim", "viewer", &["shop:lead"]);
    server
        .admin(&["env", "set", "prd", "--approvals", "2"])
        .success();
    // A few rounds: the race, when there is one, is not lost every time.
    for version in ["1.0.0", "1.0.1", "1.0.2", "1.0.3"] {
        release(&server, version, "");
        let id = request_production(&server, &dana, version);
        let barrier = std::sync::Barrier::new(2);
        let runs: Vec<Run> = std::thread::scope(|scope| {
            let approvals: Vec<_> = [&lee, &kim]
                .into_iter()
                .map(|token| {
                    let (server, barrier, id) = (&server, &barrier, &id);
                    scope.spawn(move || {
                        barrier.wait();
                        server.ferry(token, &["approve", id, "--json"])
                    })
                })
                .collect();
            approvals.into_iter().map(|a| a.join().unwrap()).collect()
        });
        for run in runs {
            run.success();
        }
        let shown = server
            .admin(&["deployment", "show", &id, "--json"])
            .success()
            .json();
        assert_eq!(
            shown["approvals"].as_array().unwrap().len(),
            2,
            "{version}: {shown}"
        );
        assert_ne!(shown["status"], "awaiting_approval", "{version}: {shown}");
        assert_eq!(finished(&server, &id)["status"], "succeeded", "{version}");
        assert_eq!(current(&prd_root, "web"), format!("releases/{version}"));
    }
}

#[test]
fn promote_takes_allow_downgrade_and_rollback_only_goes_back_to_what_ran_there() {
    let server = Server::start();
    setup(&server);
    let dev = start_agent(&server, "dev", "dev-1");
    let pp = start_agent(&server, "pp", "pp-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let promote_to_pp = |extra: &[&str]| {
        let mut args = vec!["promote", "web", "--from", "dev", "--to", "pp"];
        args.extend(extra);
        server.ferry(&dana, &args)
    };
    for version in ["1.0.0", "1.0.1", "1.0.2"] {
        release(&server, version, "");
    }
    for version in ["1.0.0", "1.0.1"] {
        server
            .ferry(&dana, &["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
        promote_to_pp(&["--wait"]).success();
    }
    server
        .ferry(&dana, &["rollback", "web", "--env", "dev", "--wait"])
        .success();
    assert_eq!(current(&dev.root, "web"), "releases/1.0.0");

    // Promoting what now runs in dev goes back in pp: only on purpose.
    promote_to_pp(&[]).fails(3, "release 1.0.0 of web is older than 1.0.1");
    promote_to_pp(&["--allow-downgrade", "--wait"]).success();
    assert_eq!(current(&pp.root, "web"), "releases/1.0.0");

    // A rollback goes back only to a release that went live in that environment before;
    // anything else is a deployment, under the pipeline's policy.
    let events = crate::harness::changes_len(&server);
    server
        .ferry(&dana, &["rollback", "web", "--env", "pp", "--to", "1.0.2"])
        .fails(
            3,
            "release 1.0.2 of web never went live in pp: a rollback only goes back to a release that ran there; use `ferry deploy web 1.0.2 --to pp`",
        );
    server
        .ferry(&dana, &["rollback", "web", "--env", "dev", "--to", "1.0.2"])
        .fails(3, "use `ferry deploy web 1.0.2 --to dev`");
    server
        .ferry(&dana, &["rollback", "web", "--env", "pp", "--to", "1.0.0"])
        .fails(3, "1.0.0 is what pp runs already");
    server
        .ferry(&dana, &["rollback", "web", "--env", "pp", "--to", "9.9.9"])
        .fails(3, "never went live in pp");
    assert_eq!(
        crate::harness::changes_len(&server),
        events,
        "nothing changed"
    );
    server
        .ferry(
            &dana,
            &["rollback", "web", "--env", "pp", "--to", "1.0.1", "--wait"],
        )
        .success();
    assert_eq!(current(&pp.root, "web"), "releases/1.0.1");

    // 1.0.0 was rolled back from pp: promoting never brings it back there, even as a
    // deliberate downgrade; deploying it by name does.
    promote_to_pp(&["--allow-downgrade"]).fails(
        3,
        "1.0.0 of web was rolled back from pp, so promoting does not bring it back",
    );
    server
        .ferry(
            &dana,
            &[
                "deploy",
                "web",
                "1.0.0",
                "--to",
                "pp",
                "--allow-downgrade",
                "--wait",
            ],
        )
        .success();
    assert_eq!(current(&pp.root, "web"), "releases/1.0.0");
    let status = server.admin(&["status", "web", "--json"]).success().json();
    let pp_status = &status["apps"][0]["environments"][1];
    assert_eq!(pp_status["env"], "pp");
    assert!(pp_status.get("rolled_back_from").is_none(), "{pp_status}");
}

/// Refused approval input changes nothing: approving twice, approving without the level,
/// rejecting without a reason, an unknown or finished deployment, a malformed freeze.
#[test]
fn refused_approvals_and_freezes_change_nothing() {
    let server = Server::start();
    setup(&server);
    let _agents = start_agent_per_env(&server);
    server
        .admin(&["env", "set", "prd", "--approvals", "2"])
        .success();
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let kim = server.create_user("kim", "viewer", &["shop:lead"]);
    release(&server, "1.0.0", "");
    let id = request_production(&server, &dana, "1.0.0");
    server.ferry(&lee, &["approve", &id]).success();

    let events = crate::harness::changes_len(&server);
    server.ferry(&lee, &["approve", &id]).fails(
        3,
        "has already approved this deployment and no one approves twice",
    );
    server
        .ferry(&dana, &["approve", &id])
        .fails(3, "needs approve or admin");
    server.ferry(&kim, &["reject", &id]).fails(3, "--reason");
    server
        .ferry(&kim, &["approve", "99999"])
        .fails(1, "no deployment 99999");
    server
        .admin(&["env", "set", "prd", "--freeze", "0 25 * * * 1h"])
        .fails(3, "hour");
    assert_eq!(
        crate::harness::changes_len(&server),
        events,
        "nothing changed"
    );
    let shown = server
        .admin(&["deployment", "show", &id, "--json"])
        .success()
        .json();
    assert_eq!(shown["status"], "awaiting_approval", "{shown}");
    assert_eq!(shown["approvals"].as_array().unwrap().len(), 1, "{shown}");
    let envs = server.admin(&["env", "list", "--json"]).success().json();
    assert!(
        envs[2]["freeze"].as_array().is_none_or(|f| f.is_empty()),
        "{envs}"
    );

    server.ferry(&kim, &["approve", &id]).success();
    assert_eq!(finished(&server, &id)["status"], "succeeded");
    let events = crate::harness::changes_len(&server);
    server
        .ferry(&kim, &["approve", &id])
        .fails(3, "is not awaiting approval");
    assert_eq!(
        crate::harness::changes_len(&server),
        events,
        "nothing changed"
    );
}
