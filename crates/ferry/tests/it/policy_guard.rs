//! The regression guard where policy meets production support, through the binary with real
//! agents: hotfixes shipped while a deployment waits, rollbacks past a hotfix, refusals that
//! name every undone hotfix, and the review list reaching the approver.

use serde_json::Value;

use crate::deployments::{current, setup, start_agent_per_env};
use crate::harness::{changes_len, Agent, Server};
use crate::support::{open_incident, release, ship_to_production, BUGGY, FIXED, MERGED};

/// A pipeline with an agent in each environment, dana (developer) and lee (lead) of shop, and
/// release 1.0.0 (with the bug) running in production.
struct Shop {
    server: Server,
    _agents: Vec<Agent>,
    dana: String,
    lee: String,
}

impl Shop {
    fn start() -> Shop {
        let server = Server::start();
        setup(&server);
        let agents = start_agent_per_env(&server);
        let dana = server.create_user("dana", "viewer", &["shop:developer"]);
        let lee = server.create_user("lee", "viewer", &["shop:lead"]);
        release(&server, "1.0.0", &[("checkout.js", BUGGY)], &[]);
        for env in ["dev", "pp"] {
            server
                .ferry(&dana, &["deploy", "web", "1.0.0", "--to", env, "--wait"])
                .success();
        }
        ship_to_production(&server, &dana, &lee, "1.0.0");
        Shop {
            server,
            _agents: agents,
            dana,
            lee,
        }
    }

    fn current(&self, env: &str) -> String {
        current(
            &self.server.dir.path().join(format!("target-{env}-1")),
            "web",
        )
    }

    /// Opens a critical incident in prd and creates hotfix `version` of what runs there
    /// from `files`; returns the incident's id.
    fn hotfix(&self, version: &str, base: &str, files: &[(&str, &str)]) -> i64 {
        let incident = open_incident(&self.server, &self.lee, "prd", "critical", "it broke");
        assert_eq!(incident["base_version"], base, "{incident}");
        let id = incident["id"].as_i64().unwrap();
        release(
            &self.server,
            version,
            files,
            &["--hotfix-of", base, "--incident", &id.to_string()],
        );
        id
    }

    /// [`Shop::hotfix`], then through pp to production (approved by the lead).
    fn ship_hotfix(&self, version: &str, base: &str, files: &[(&str, &str)]) -> i64 {
        let id = self.hotfix(version, base, files);
        self.server
            .ferry(
                &self.dana,
                &["deploy", "web", version, "--to", "pp", "--wait"],
            )
            .success();
        ship_to_production(&self.server, &self.dana, &self.lee, version);
        id
    }

    /// The deployment, as the admin sees it.
    fn deployment(&self, id: &str) -> Value {
        self.server
            .admin(&["deployment", "show", id, "--json"])
            .success()
            .json()
    }
}

// Regression: an approval started a deployment without judging policy again, so a release
// that waited for approval while a hotfix shipped went ahead and undid the fix.
#[test]
fn a_hotfix_shipped_while_a_deployment_waits_blocks_the_approval_that_would_start_it() {
    let shop = Shop::start();
    let (server, dana, lee) = (&shop.server, &shop.dana, &shop.lee);
    shop.hotfix("1.0.1", "1.0.0", &[("checkout.js", FIXED)]);
    server
        .ferry(dana, &["deploy", "web", "1.0.1", "--to", "pp", "--wait"])
        .success();

    // 1.1.0 lacks the fix, which has not reached production yet: nothing to guard, so it
    // waits for approval in pp.
    server
        .admin(&["env", "set", "pp", "--approvals", "1"])
        .success();
    release(
        server,
        "1.1.0",
        &[("checkout.js", BUGGY), ("new.js", "1\n")],
        &[],
    );
    server
        .ferry(dana, &["deploy", "web", "1.1.0", "--to", "dev", "--wait"])
        .success();
    let asked = server
        .ferry(dana, &["deploy", "web", "1.1.0", "--to", "pp", "--json"])
        .success()
        .json();
    assert_eq!(asked["status"], "awaiting_approval", "{asked}");
    let id = asked["id"].to_string();

    // Meanwhile the hotfix ships; approving 1.1.0 now would undo it.
    ship_to_production(server, dana, lee, "1.0.1");
    let events = changes_len(server);
    let refused = server
        .ferry(lee, &["approve", &id, "--json"])
        .fails(3, "would undo hotfix 1.0.1");
    assert!(
        refused
            .stderr
            .contains(&format!("deployment {id} cannot start now")),
        "{refused:?}"
    );
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "guard", "{error}");
    assert_eq!(
        error["details"]["undone"][0]["hotfix_version"], "1.0.1",
        "{error}"
    );
    let shown = shop.deployment(&id);
    assert_eq!(shown["status"], "awaiting_approval", "{shown}");
    assert_eq!(shown["approvals"], serde_json::json!([]), "{shown}");
    assert_eq!(changes_len(server), events, "nothing changed");
    assert_eq!(shop.current("pp"), "releases/1.0.1");
}

#[test]
fn a_guard_refusal_names_every_undone_hotfix_for_people_and_scripts() {
    let shop = Shop::start();
    let (server, dana) = (&shop.server, &shop.dana);
    let first = shop.ship_hotfix("1.0.1", "1.0.0", &[("checkout.js", FIXED)]);
    let vat = "export const VAT = 0.21;\n";
    let second = shop.ship_hotfix("1.0.2", "1.0.1", &[("checkout.js", FIXED), ("tax.js", vat)]);

    release(server, "1.1.0", &[("checkout.js", BUGGY)], &[]);
    server
        .ferry(dana, &["deploy", "web", "1.1.0", "--to", "dev", "--wait"])
        .success();
    let refused = server
        .ferry(
            dana,
            &["promote", "web", "--from", "dev", "--to", "pp", "--json"],
        )
        .fails(3, "release 1.1.0 of web would undo 2 hotfixes");
    for needle in [
        format!("hotfix 1.0.1 (incident {first}): 1 path still holds its content from before the fix: checkout.js"),
        format!("hotfix 1.0.2 (incident {second}): 1 path still holds its content from before the fix: tax.js"),
        "--override-guard --reason TEXT".to_owned(),
    ] {
        assert!(refused.stderr.contains(&needle), "{needle}: {refused:?}");
    }
    let error = &refused.json()["error"];
    assert_eq!(error["code"], "guard", "{error}");
    assert!(error["message"].as_str().unwrap().contains("2 hotfixes"));
    assert_eq!(
        error["details"],
        // Newest shipped first.
        serde_json::json!({ "undone": [
            { "hotfix_version": "1.0.2", "incident": second, "missing": ["tax.js"] },
            { "hotfix_version": "1.0.1", "incident": first, "missing": ["checkout.js"] },
        ] }),
        "{error}"
    );
}

#[test]
fn a_rollback_past_a_shipped_hotfix_needs_override_guard() {
    let shop = Shop::start();
    let (server, dana, lee) = (&shop.server, &shop.dana, &shop.lee);
    shop.ship_hotfix("1.0.1", "1.0.0", &[("checkout.js", FIXED)]);
    assert_eq!(shop.current("prd"), "releases/1.0.1");

    let events = changes_len(server);
    let refused = server
        .ferry(dana, &["rollback", "web", "--env", "prd"])
        .fails(3, "release 1.0.0 of web would undo hotfix 1.0.1");
    assert!(
        refused.stderr.contains(
            "go back to a release that has the fix instead (`ferry rollback web --env prd --to VERSION`)"
        ),
        "{refused:?}"
    );
    server
        .ferry(dana, &["rollback", "web", "--env", "pp", "--to", "1.0.0"])
        .fails(3, "would undo hotfix 1.0.1");
    server
        .ferry(
            dana,
            &[
                "rollback",
                "web",
                "--env",
                "prd",
                "--override-guard",
                "--reason",
                "x",
            ],
        )
        .fails(3, "--override-guard needs approve");
    server
        .ferry(
            lee,
            &["rollback", "web", "--env", "prd", "--override-guard"],
        )
        .fails(3, "--reason");
    assert_eq!(changes_len(server), events, "nothing changed");
    assert_eq!(shop.current("prd"), "releases/1.0.1");

    let done = server
        .ferry(
            lee,
            &[
                "rollback",
                "web",
                "--env",
                "prd",
                "--to",
                "1.0.0",
                "--override-guard",
                "--reason",
                "the fix breaks the payment provider",
                "--wait",
                "--json",
            ],
        )
        .success()
        .json();
    assert_eq!(done["kind"], "rollback", "{done}");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(shop.current("prd"), "releases/1.0.0");
    let audit = server
        .admin(&["audit", "--app", "web", "--json"])
        .success()
        .json();
    let overridden = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "deployment.override_guard")
        .unwrap_or_else(|| panic!("no override event: {audit}"));
    let details = overridden["details"].to_string();
    assert!(
        details.contains("the fix breaks the payment provider") && details.contains("1.0.1"),
        "{overridden}"
    );
}

#[test]
fn the_review_list_reaches_the_approver() {
    let shop = Shop::start();
    let (server, dana, lee) = (&shop.server, &shop.dana, &shop.lee);
    shop.ship_hotfix("1.0.1", "1.0.0", &[("checkout.js", FIXED)]);

    // 1.1.0 merged the fix with other work: let through, listed for review.
    release(server, "1.1.0", &[("checkout.js", MERGED)], &[]);
    for env in ["dev", "pp"] {
        server
            .ferry(dana, &["deploy", "web", "1.1.0", "--to", env, "--wait"])
            .success();
    }
    let asked = server
        .ferry(
            dana,
            &["promote", "web", "--from", "pp", "--to", "prd", "--json"],
        )
        .success()
        .json();
    assert_eq!(asked["status"], "awaiting_approval", "{asked}");
    assert_eq!(asked["review"], serde_json::json!(["1.0.1: checkout.js"]));
    let id = asked["id"].to_string();

    let shown = server
        .ferry(lee, &["deployment", "show", &id, "--json"])
        .success()
        .json();
    assert_eq!(shown["review"], serde_json::json!(["1.0.1: checkout.js"]));
    let human = server
        .ferry(lee, &["deployment", "show", &id])
        .success()
        .stdout;
    assert!(
        human.contains("review (changed differently from a shipped hotfix): 1.0.1: checkout.js"),
        "{human}"
    );
    let approved = server
        .ferry(lee, &["approve", &id, "--json"])
        .success()
        .json();
    assert_eq!(
        approved["review"],
        serde_json::json!(["1.0.1: checkout.js"])
    );
    assert_ne!(approved["status"], "awaiting_approval", "{approved}");
}
