//! Production support through the binary with real agents: the seed's support table end to
//! end (backlog, hotfix-backport, hotfix-merge), backport obligations, the regression guard,
//! routing by rotation, category and maintaining team, and escalation on an injected clock.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::deployments::{current, setup, start_agent_per_env};
use crate::harness::{Run, Server};
use crate::receivers::{verify_signature, WebhookReceiver};

/// Writes a tree of `files` (path, content) for `version` and returns its directory.
pub(crate) fn tree(server: &Server, version: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = server.dir.path().join(format!("tree-{version}"));
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    dir
}

/// Creates release `version` of web from `files`, with extra arguments.
pub(crate) fn release(
    server: &Server,
    version: &str,
    files: &[(&str, &str)],
    extra: &[&str],
) -> Value {
    create_release(server, version, version, files, extra)
        .success()
        .json()
}

/// Asks for release `version` of web from `files` written to the tree named `tree_name`,
/// with extra arguments; the run, to check.
fn create_release(
    server: &Server,
    tree_name: &str,
    version: &str,
    files: &[(&str, &str)],
    extra: &[&str],
) -> Run {
    let dir = tree(server, tree_name, files);
    let mut args = vec![
        "release",
        "create",
        "web",
        version,
        "--from",
        dir.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    server.admin(&args)
}

fn deploy(server: &Server, token: &str, version: &str, env: &str) -> Run {
    server.ferry(token, &["deploy", "web", version, "--to", env, "--wait"])
}

/// Deploys `version` to dev and pp as `requester`, then to prd with `approver`'s approval.
fn through_the_pipeline(server: &Server, requester: &str, approver: &str, version: &str) {
    for env in ["dev", "pp"] {
        deploy(server, requester, version, env).success();
    }
    ship_to_production(server, requester, approver, version);
}

/// Deploys `version` to prd and has `approver` approve it; waits until it succeeded.
pub(crate) fn ship_to_production(server: &Server, requester: &str, approver: &str, version: &str) {
    let asked = server
        .ferry(
            requester,
            &["promote", "web", "--from", "pp", "--to", "prd", "--json"],
        )
        .success()
        .json();
    assert_eq!(asked["version"], version, "{asked}");
    assert_eq!(asked["status"], "awaiting_approval", "{asked}");
    let id = asked["id"].to_string();
    server.ferry(approver, &["approve", &id]).success();
    let shown = server
        .admin(&["deployment", "show", &id, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(shown["status"], "succeeded", "{shown}");
}

pub(crate) fn open_incident(
    server: &Server,
    token: &str,
    env: &str,
    severity: &str,
    title: &str,
) -> Value {
    server
        .ferry(
            token,
            &[
                "incident",
                "open",
                "web",
                "--env",
                env,
                "--severity",
                severity,
                "--title",
                title,
                "--json",
            ],
        )
        .success()
        .json()
}

pub(crate) fn backports(server: &Server) -> Vec<Value> {
    server
        .admin(&["backport", "list", "web", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

pub(crate) const BUGGY: &str = "function pay() { return total * 1.0; }\n";
pub(crate) const FIXED: &str = "function pay() { return round(total, 2); }\n";
pub(crate) const MERGED: &str = "function pay(order) { return round(order.total, 2); }\n";

#[test]
fn the_support_table_from_backlog_to_hotfix_backport_and_merge() {
    let server = Server::start();
    setup(&server);
    let _agents = start_agent_per_env(&server);
    let prd_root = server.dir.path().join("target-prd-1");
    let pp_root = server.dir.path().join("target-pp-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let sam = server.create_user("sam", "viewer", &["shop:support"]);
    let base = [("checkout.js", BUGGY), ("index.html", "<h1>shop</h1>\n")];
    release(&server, "1.0.0", &base, &[]);
    through_the_pipeline(&server, &dana, &lee, "1.0.0");

    // Not critical: a backlog item on the team, closed by the release that names it.
    let low = open_incident(&server, &sam, "prd", "medium", "typo on the home page");
    assert_eq!(low["path"], "backlog", "{low}");
    assert!(low.get("base_version").is_none(), "{low}");
    let item = low["backlog_item"].to_string();
    let listed = server
        .admin(&["backlog", "list", "--json"])
        .success()
        .json();
    assert_eq!(listed[0]["status"], "open", "{listed}");
    let fixed_typo = release(
        &server,
        "1.0.1",
        &[("checkout.js", BUGGY), ("index.html", "<h1>Shop</h1>\n")],
        &["--closes", &item],
    );
    assert_eq!(fixed_typo["closed"][0].to_string(), item, "{fixed_typo}");
    let listed = server
        .admin(&["backlog", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(listed[0]["status"], "closed");
    assert_eq!(listed[0]["closed_by"], "1.0.1");
    // The incident says what became of its item, and what is left to do.
    let low_id = low["id"].to_string();
    let shown = server.admin(&["incident", "show", &low_id]).success();
    assert!(
        shown.stdout.contains(&format!(
            "backlog item {item}: closed by release 1.0.1; if that fixed it: ferry incident resolve {low_id}"
        )),
        "{shown:?}"
    );
    create_release(&server, "x", "1.0.9", &base, &["--closes", &item]).fails(3, "not an open item");

    // Critical, dev runs what prd runs: hotfix, then backport.
    let critical = open_incident(&server, &sam, "prd", "critical", "payments round wrongly");
    assert_eq!(critical["path"], "hotfix-backport", "{critical}");
    assert_eq!(critical["base_version"], "1.0.0");
    assert_eq!(
        critical["suggested_version"], "1.0.2",
        "1.0.1 is taken: {critical}"
    );
    assert_eq!(critical["source"]["kind"], "directory", "{critical}");
    assert!(
        critical["source"]["export"]
            .as_str()
            .unwrap()
            .starts_with("ferry release export web 1.0.0"),
        "{critical}"
    );
    let incident = critical["id"].to_string();
    let plan = server
        .ferry(&dana, &["hotfix", "start", &incident, "--wait", "--json"])
        .success()
        .json();
    assert_eq!(plan["deployment"]["env"], "pp", "{plan}");
    assert_eq!(plan["deployment"]["status"], "succeeded", "{plan}");
    let hotfix = [("checkout.js", FIXED), ("index.html", "<h1>shop</h1>\n")];
    create_release(
        &server,
        "bad",
        "1.0.2",
        &hotfix,
        &["--hotfix-of", "1.0.1", "--incident", &incident],
    )
    .fails(3, "pass --hotfix-of 1.0.0");
    release(
        &server,
        "1.0.2",
        &hotfix,
        &["--hotfix-of", "1.0.0", "--incident", &incident],
    );
    deploy(&server, &dana, "1.0.2", "dev").fails(3, "a hotfix is never deployed to \"dev\"");
    deploy(&server, &dana, "1.0.2", "pp").success();
    assert!(backports(&server).is_empty(), "no obligation before prd");
    ship_to_production(&server, &dana, &lee, "1.0.2");
    assert_eq!(current(&prd_root, "web"), "releases/1.0.2");
    let open = backports(&server);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["hotfix_version"], "1.0.2");
    assert_eq!(open[0]["incident"].to_string(), incident);
    assert_eq!(open[0]["mode"], "backport");
    assert_eq!(open[0]["status"], "open");
    let status = server.admin(&["status", "web", "--json"]).success().json();
    assert_eq!(
        status["apps"][0]["backports"][0]["hotfix_version"], "1.0.2",
        "{status}"
    );

    // The regression guard: a release without the fix does not reach pp or prd.
    let no_fix = [("checkout.js", BUGGY), ("index.html", "<h1>Shop v2</h1>\n")];
    release(&server, "1.1.0", &no_fix, &[]);
    assert_eq!(
        backports(&server)[0]["status"],
        "open",
        "1.1.0 lacks the fix"
    );
    deploy(&server, &dana, "1.1.0", "dev").success();
    let refused = server
        .ferry(&dana, &["promote", "web", "--from", "dev", "--to", "pp"])
        .fails(3, "1.0.2");
    for needle in [
        "checkout.js",
        &format!("incident {incident}"),
        "--override-guard",
    ] {
        assert!(refused.stderr.contains(needle), "{needle}: {refused:?}");
    }
    server
        .ferry(
            &dana,
            &[
                "promote",
                "web",
                "--from",
                "dev",
                "--to",
                "pp",
                "--override-guard",
                "--reason",
                "x",
            ],
        )
        .fails(3, "needs approve");
    server
        .ferry(
            &lee,
            &[
                "promote",
                "web",
                "--from",
                "dev",
                "--to",
                "pp",
                "--override-guard",
            ],
        )
        .fails(3, "--reason");
    let audit_before = server
        .admin(&["audit", "--json"])
        .success()
        .json()
        .as_array()
        .unwrap()
        .len();
    server
        .ferry(
            &lee,
            &[
                "promote",
                "web",
                "--from",
                "dev",
                "--to",
                "pp",
                "--override-guard",
                "--reason",
                "demo for the customer",
                "--wait",
            ],
        )
        .success();
    let audit = server.admin(&["audit", "--json"]).success().json();
    let events = audit.as_array().unwrap();
    assert!(
        events[audit_before..]
            .iter()
            .any(|e| e["action"] == "deployment.override_guard"),
        "{audit}"
    );
    // Through pp by override, it is still refused in prd.
    let refused = server
        .ferry(&dana, &["promote", "web", "--from", "pp", "--to", "prd"])
        .fails(3, "1.0.2");
    assert!(refused.stderr.contains("\"prd\""), "{refused:?}");
    assert_eq!(current(&prd_root, "web"), "releases/1.0.2");

    // A dev release that includes the fix fulfils the obligation by itself.
    let with_fix = [("checkout.js", FIXED), ("index.html", "<h1>Shop v2</h1>\n")];
    let fulfilled = release(&server, "1.2.0", &with_fix, &[]);
    assert_eq!(fulfilled["backports_done"][0], open[0]["id"], "{fulfilled}");
    let done = backports(&server);
    assert_eq!(done[0]["status"], "done", "{done:?}");
    assert_eq!(done[0]["closed_by"], "release 1.2.0");
    deploy(&server, &dana, "1.2.0", "dev").success();
    // The incident's history tells the whole story, from its hotfix to the backport.
    let story = server
        .admin(&["incident", "show", &incident, "--json"])
        .success()
        .json();
    let steps: Vec<&str> = story["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    let obligation = &open[0]["id"];
    for expected in [
        "hotfix release 1.0.2 created from 1.0.0".to_owned(),
        "to pp: succeeded".to_owned(),
        "to prd: succeeded".to_owned(),
        format!("backport obligation {obligation} opened: 1.0.2 must reach dev (backport)"),
        format!("backport obligation {obligation} done"),
    ] {
        assert!(
            steps.iter().any(|s| s.contains(&expected)),
            "{expected}: {steps:?}"
        );
    }

    // Critical again, dev is ahead of prd: hotfix, then merge.
    let critical = open_incident(&server, &sam, "prd", "critical", "totals wrong again");
    assert_eq!(critical["path"], "hotfix-merge", "{critical}");
    assert_eq!(critical["base_version"], "1.0.2");
    assert_eq!(critical["suggested_version"], "1.0.3");
    let incident = critical["id"].to_string();
    server
        .ferry(&dana, &["hotfix", "start", &incident, "--wait"])
        .success();
    assert_eq!(
        current(&pp_root, "web"),
        "releases/1.0.2",
        "pp runs prd's release"
    );
    // People read where the base came from, not JSON.
    let started = server
        .ferry(&dana, &["incident", "show", &incident])
        .success();
    assert!(
        started.stdout.contains("source: directory ")
            && started
                .stdout
                .contains("export: ferry release export web 1.0.2 ./web-1.0.2")
            && !started.stdout.contains('{'),
        "{started:?}"
    );
    let second_fix = [
        ("checkout.js", FIXED),
        ("index.html", "<h1>shop</h1>\n"),
        ("tax.js", "export const VAT = 0.21;\n"),
    ];
    release(
        &server,
        "1.0.3",
        &second_fix,
        &["--hotfix-of", "1.0.2", "--incident", &incident],
    );
    deploy(&server, &dana, "1.0.3", "pp").success();
    // Meanwhile the product line took the fix, merged differently (refactored), before
    // the hotfix reached prd: there is no obligation yet to close.
    let merged = [
        ("checkout.js", MERGED),
        ("index.html", "<h1>Shop v3</h1>\n"),
        ("tax.js", "export const VAT = 0.21; // NL\n"),
    ];
    let early = release(&server, "1.3.0", &merged, &[]);
    assert!(early.get("backports_done").is_none(), "{early}");
    ship_to_production(&server, &dana, &lee, "1.0.3");
    // The obligation opens and is done at once: the newest product release has the fix.
    let merge = backports(&server);
    assert_eq!(merge[0]["hotfix_version"], "1.0.3", "{merge:?}");
    assert_eq!(merge[0]["mode"], "merge");
    assert_eq!(merge[0]["status"], "done", "{merge:?}");
    assert_eq!(merge[0]["closed_by"], "release 1.3.0", "{merge:?}");
    deploy(&server, &dana, "1.3.0", "dev").success();
    let promoted = server
        .ferry(
            &dana,
            &[
                "promote", "web", "--from", "dev", "--to", "pp", "--json", "--wait",
            ],
        )
        .success()
        .json();
    let review = promoted["review"].to_string();
    assert!(review.contains("1.0.3: tax.js"), "{promoted}");

    // Waiving needs approve level in production and a reason; a closed one stays closed.
    let waive = |token: &str, reason: &[&str]| {
        let id = merge[0]["id"].to_string();
        let mut args = vec!["backport", "waive", id.as_str()];
        args.extend(reason);
        server.ferry(token, &args)
    };
    waive(&lee, &[]).fails(3, "--reason");
    waive(&dana, &["--reason", "x"]).fails(3, "needs approve");
    waive(&lee, &["--reason", "merged by hand"]).fails(3, "already done");
}

#[test]
fn incidents_go_to_the_right_person_and_escalate_when_nobody_answers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = dir.path().join("clock-offset");
    fs::write(&clock, "0").unwrap();
    let server = Server::start_in_with(dir, &["--clock-offset-file", clock.to_str().unwrap()]);
    setup(&server);
    for team in ["ops", "care"] {
        server.admin(&["team", "create", team]).success();
    }
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let amy = server.create_user("amy", "viewer", &["shop:support"]);
    server.create_user("bob", "viewer", &["shop:support"]);
    server.create_user("olga", "viewer", &["ops:support"]);
    server.create_user("carl", "viewer", &["care:support"]);
    let vic = server.create_user("vic", "viewer", &["shop:viewer"]);

    // A rotation: amy, then bob, an hour each; critical incidents escalate after 15 minutes.
    server
        .ferry(&amy, &["team", "rotation", "shop", "--members", "amy,bob"])
        .fails(3, "needs its lead");
    server
        .ferry(&lee, &["team", "rotation", "shop", "--members", "amy,olga"])
        .fails(3, "not a member of team \"shop\"");
    let support = server
        .ferry(
            &lee,
            &[
                "team",
                "rotation",
                "shop",
                "--members",
                "amy,bob",
                "--shift",
                "1h",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(support["on_call"], "amy", "{support}");
    assert_eq!(support["escalate_after"], "15m");
    server
        .admin(&[
            "team",
            "rotation",
            "ops",
            "--members",
            "olga",
            "--shift",
            "7d",
        ])
        .success();
    server
        .admin(&["team", "rotation", "care", "--members", "carl"])
        .success();

    let set_clock = |minutes: i64| fs::write(&clock, (minutes * 60_000).to_string()).unwrap();
    let show = |id: &str| {
        server
            .admin(&["incident", "show", id, "--json"])
            .success()
            .json()
    };
    let wait_for = |id: &str, check: &dyn Fn(&Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = show(id);
            if check(&shown) {
                return shown;
            }
            assert!(Instant::now() < deadline, "incident never changed: {shown}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    // Routed to whoever is on call; a viewer cannot open one.
    server
        .ferry(
            &vic,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "prd",
                "--severity",
                "low",
                "--title",
                "x",
            ],
        )
        .fails(3, "support role");
    let opened = server
        .ferry(
            &amy,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "prd",
                "--severity",
                "critical",
                "--title",
                "site down",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(opened["assignee"], "amy", "{opened}");
    assert_eq!(opened["team"], "shop");
    assert_eq!(
        opened["path"], "backlog",
        "nothing runs in prd yet: {opened}"
    );
    let id = opened["id"].to_string();

    // Nobody acknowledges: after 15 minutes the next person, after 30 the team's leads.
    set_clock(16);
    let escalated = wait_for(&id, &|i| i["escalation_level"] == 1);
    assert_eq!(escalated["assignee"], "bob", "{escalated}");
    set_clock(31);
    let escalated = wait_for(&id, &|i| i["escalation_level"] == 2);
    assert!(escalated["assignee"].is_null(), "{escalated}");
    let history = escalated["history"].to_string();
    assert!(
        history.contains("escalated to bob") && history.contains("the leads of team shop"),
        "{history}"
    );

    // Acknowledging stops it; acknowledging twice or resolving twice is refused.
    server
        .ferry(&vic, &["incident", "ack", &id])
        .fails(3, "support role");
    let acked = server
        .ferry(
            &amy,
            &["incident", "ack", &id, "--note", "looking", "--json"],
        )
        .success()
        .json();
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["assignee"], "amy");
    server
        .ferry(&amy, &["incident", "ack", &id])
        .fails(3, "already acknowledged");
    server.ferry(&amy, &["incident", "resolve", &id]).success();
    server
        .ferry(&amy, &["incident", "resolve", &id])
        .fails(3, "already resolved");
    let listed = server
        .admin(&["incident", "list", "--json"])
        .success()
        .json();
    assert!(
        listed.as_array().unwrap().is_empty(),
        "resolved ones are hidden: {listed}"
    );
    let all = server
        .admin(&["incident", "list", "--all", "--json"])
        .success()
        .json();
    assert_eq!(all.as_array().unwrap().len(), 1);

    // The rotation hands over: an hour later bob is on call, and a new incident is his.
    set_clock(61);
    let support = server
        .admin(&["team", "support", "shop", "--json"])
        .success()
        .json();
    assert_eq!(support["on_call"], "bob", "{support}");
    let open_critical = |title: &str| {
        server
            .ferry(
                &amy,
                &[
                    "incident",
                    "open",
                    "web",
                    "--env",
                    "prd",
                    "--severity",
                    "critical",
                    "--title",
                    title,
                    "--json",
                ],
            )
            .success()
            .json()
    };
    let handed_over = open_critical("search is slow");
    assert_eq!(handed_over["assignee"], "bob", "{handed_over}");

    // Acknowledged at level 0, an incident stays there past the escalation time, while one
    // nobody acknowledged, opened at the same moment, escalates.
    let acked = handed_over["id"].to_string();
    let ignored = open_critical("images missing")["id"].to_string();
    server.ferry(&amy, &["incident", "ack", &acked]).success();
    set_clock(61 + 16);
    let escalated = wait_for(&ignored, &|i| i["escalation_level"] == 1);
    assert_eq!(escalated["status"], "open", "{escalated}");
    let still = show(&acked);
    assert_eq!(still["escalation_level"], 0, "{still}");
    assert_eq!(still["status"], "acknowledged", "{still}");
    assert_eq!(still["assignee"], "amy", "{still}");
    assert!(
        !still["history"].to_string().contains("escalated"),
        "{still}"
    );

    // A category rule sends infrastructure problems to ops, whoever owns the application.
    server
        .ferry(&lee, &["route", "set", "infrastructure", "--team", "ops"])
        .fails(3, "release-manager");
    server
        .admin(&["route", "set", "infrastructure", "--team", "ops"])
        .success();
    let infra = server
        .ferry(
            &amy,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "prd",
                "--severity",
                "high",
                "--title",
                "disk full",
                "--category",
                "infrastructure",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(infra["team"], "ops", "{infra}");
    assert_eq!(infra["assignee"], "olga");
    // Its backlog item is the work of the team maintaining the application: its owner.
    let backlog_team = |incident: &Value| {
        let items = server
            .admin(&["backlog", "list", "web", "--json"])
            .success()
            .json();
        let item = items
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["incident"] == incident["id"])
            .unwrap_or_else(|| panic!("no backlog item of {incident} in {items}"))
            .clone();
        assert_eq!(item["id"], incident["backlog_item"], "{item}");
        item["team"].as_str().unwrap().to_owned()
    };
    assert_eq!(backlog_team(&infra), "shop");
    // ops answers it: olga acknowledges an incident of an application her team does not own.
    let olga_token = server.create_user("olga2", "viewer", &["ops:support"]);
    server
        .ferry(&olga_token, &["incident", "ack", &infra["id"].to_string()])
        .success();

    // A maintaining team gets the application's other incidents.
    server
        .ferry(&lee, &["app", "maintainer", "web", "--team", "care"])
        .success();
    let maintained = server
        .ferry(
            &amy,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "dev",
                "--severity",
                "low",
                "--title",
                "slow page",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(maintained["team"], "care", "{maintained}");
    assert_eq!(maintained["assignee"], "carl");
    assert_eq!(backlog_team(&maintained), "care");
    // Routed to ops by category, its backlog item still lands on the maintaining team.
    let routed = server
        .ferry(
            &amy,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "prd",
                "--severity",
                "low",
                "--title",
                "backups slow",
                "--category",
                "infrastructure",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(routed["team"], "ops", "{routed}");
    assert_eq!(routed["assignee"], "olga", "{routed}");
    assert_eq!(backlog_team(&routed), "care");

    // Bad input changes nothing.
    let before = server
        .admin(&["incident", "list", "--all", "--json"])
        .success()
        .json();
    for (args, message) in [
        (
            vec!["--severity", "urgent", "--title", "x"],
            "critical, high, medium or low",
        ),
        (vec!["--severity", "low", "--title", "  "], "title is empty"),
        (
            vec![
                "--severity",
                "low",
                "--title",
                "x",
                "--category",
                "Bad Category",
            ],
            "invalid category",
        ),
    ] {
        let mut full = vec!["incident", "open", "web", "--env", "prd"];
        full.extend(args);
        server.ferry(&amy, &full).fails(3, message);
    }
    server
        .ferry(
            &amy,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "nowhere",
                "--severity",
                "low",
                "--title",
                "x",
            ],
        )
        .fails(1, "no environment");
    server
        .admin(&["incident", "show", "999"])
        .fails(1, "no incident 999");
    server
        .admin(&["incident", "ack", "999"])
        .fails(1, "no incident 999");
    server
        .ferry(&lee, &["team", "rotation", "shop", "--shift", "10s"])
        .fails(3, "a shift of 10s is too short: make it at least 1m");
    assert_eq!(
        server
            .admin(&["incident", "list", "--all", "--json"])
            .success()
            .json(),
        before
    );
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Waits until `hook` received a request for audit event `event` and returns its body.
fn wait_for_event(hook: &WebhookReceiver, event: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for request in hook.requests() {
            let body: Value = serde_json::from_slice(&request.body).unwrap();
            if body["event"] == event {
                let signature = &request.headers["x-ferry-signature"];
                assert!(verify_signature(SECRET, &request.body, signature), "{body}");
                return body;
            }
        }
        assert!(Instant::now() < deadline, "no {event} reached the webhook");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_late_hotfix_starts_from_production_and_a_waiver_stops_the_guard() {
    let server = Server::start();
    setup(&server);
    server.admin(&["team", "create", "ops"]).success();
    let _agents = start_agent_per_env(&server);
    let pp_root = server.dir.path().join("target-pp-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let sam = server.create_user("sam", "viewer", &["shop:support"]);
    server
        .admin(&["route", "set", "infrastructure", "--team", "ops"])
        .success();
    let shop_hook = WebhookReceiver::start(200);
    let ops_hook = WebhookReceiver::start(200);
    for (team, hook) in [("shop", &shop_hook), ("ops", &ops_hook)] {
        server
            .admin(&[
                "channel",
                "add",
                team,
                "--webhook",
                &hook.url(),
                "--secret",
                SECRET,
                "--allow-private",
            ])
            .success();
    }
    let base = [("checkout.js", BUGGY), ("index.html", "<h1>shop</h1>\n")];
    release(&server, "1.0.0", &base, &[]);
    through_the_pipeline(&server, &dana, &lee, "1.0.0");

    // Two critical incidents on 1.0.0; the second, an infrastructure one, goes to ops.
    let first = open_incident(&server, &sam, "prd", "critical", "payments round wrongly");
    assert_eq!(first["base_version"], "1.0.0", "{first}");
    let second = server
        .ferry(
            &sam,
            &[
                "incident",
                "open",
                "web",
                "--env",
                "prd",
                "--severity",
                "critical",
                "--title",
                "payments time out",
                "--category",
                "infrastructure",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(second["team"], "ops", "{second}");
    assert_eq!(second["base_version"], "1.0.0", "{second}");

    // The second one's hotfix ships first.
    let second_id = second["id"].to_string();
    server
        .ferry(&dana, &["hotfix", "start", &second_id, "--wait"])
        .success();
    let fixed = [("checkout.js", FIXED), ("index.html", "<h1>shop</h1>\n")];
    release(
        &server,
        "1.0.1",
        &fixed,
        &["--hotfix-of", "1.0.0", "--incident", &second_id],
    );
    deploy(&server, &dana, "1.0.1", "pp").success();
    ship_to_production(&server, &dana, &lee, "1.0.1");
    let open = backports(&server);
    assert_eq!(open[0]["status"], "open", "{open:?}");

    // The obligation is the maintaining team's (shop), whatever team took the incident:
    // shop's webhook is told, signed.
    let told = wait_for_event(&shop_hook, "backport.open");
    assert_eq!(told["data"]["team"], "shop", "{told}");
    assert_eq!(told["data"]["hotfix_version"], "1.0.1", "{told}");
    let ops_events: Vec<Value> = ops_hook
        .requests()
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event"].clone())
        .collect();
    assert!(
        !ops_events.contains(&Value::from("backport.open")),
        "{ops_events:?}"
    );

    // The first incident's hotfix starts from what prd runs now, and says so.
    let first_id = first["id"].to_string();
    let started = server
        .ferry(&dana, &["hotfix", "start", &first_id, "--wait"])
        .success();
    assert!(
        started
            .stdout
            .contains("production runs 1.0.1 now, not 1.0.0 as when the incident was opened"),
        "{started:?}"
    );
    assert!(started.stdout.contains("--hotfix-of 1.0.1"), "{started:?}");
    assert_eq!(current(&pp_root, "web"), "releases/1.0.1");
    let shown = server
        .admin(&["incident", "show", &first_id, "--json"])
        .success()
        .json();
    assert_eq!(shown["base_version"], "1.0.1", "{shown}");
    assert_eq!(shown["suggested_version"], "1.0.2", "{shown}");
    assert!(
        shown["history"]
            .to_string()
            .contains("hotfix base moved from 1.0.0 to 1.0.1"),
        "{shown}"
    );
    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let rebase = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "incident.rebase")
        .unwrap_or_else(|| panic!("no incident.rebase in {audit}"));
    assert_eq!(rebase["actor"], "dana", "{rebase}");
    // A hotfix from the old base is refused now.
    create_release(
        &server,
        "old-base",
        "1.0.2",
        &fixed,
        &["--hotfix-of", "1.0.0", "--incident", &first_id],
    )
    .fails(3, "pass --hotfix-of 1.0.1");

    // A product release without the fix is held back from pp while the obligation is open.
    let without = [("checkout.js", BUGGY), ("index.html", "<h1>Shop v2</h1>\n")];
    release(&server, "1.1.0", &without, &[]);
    deploy(&server, &dana, "1.1.0", "dev").success();
    server
        .ferry(&dana, &["promote", "web", "--from", "dev", "--to", "pp"])
        .fails(3, "1.0.1");

    // Waiving: approve level in prd and a reason; then the fix no longer guards.
    let id = open[0]["id"].to_string();
    server
        .ferry(&dana, &["backport", "waive", &id, "--reason", "x"])
        .fails(3, "needs approve");
    let events_before = crate::harness::audit_len(&server);
    let waived = server
        .ferry(
            &lee,
            &[
                "backport",
                "waive",
                &id,
                "--reason",
                "payments moved to the new service",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(waived["status"], "waived", "{waived}");
    assert_eq!(waived["reason"], "payments moved to the new service");
    assert_eq!(waived["closed_by"], "lee");
    let listed = backports(&server);
    assert_eq!(listed[0]["status"], "waived", "{listed:?}");
    assert_eq!(listed[0]["reason"], "payments moved to the new service");
    let audit = server.admin(&["audit", "--json"]).success().json();
    let events = &audit.as_array().unwrap()[events_before..];
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "backport.waive", "{events:?}");
    assert_eq!(events[0]["actor"], "lee");
    assert_eq!(
        events[0]["details"]["reason"],
        "payments moved to the new service"
    );
    server
        .ferry(
            &dana,
            &["promote", "web", "--from", "dev", "--to", "pp", "--wait"],
        )
        .success();
    assert_eq!(current(&pp_root, "web"), "releases/1.1.0");
}
