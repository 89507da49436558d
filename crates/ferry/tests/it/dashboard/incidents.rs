//! The incidents board and the targets page: the assignee acknowledges an incident in the
//! browser and the audit trail has it; another team does not see it; a viewer's forged
//! Resolve is refused as the command line refuses it; a hotfix that reached production
//! shows its open backport obligation; targets show their health, what they run and drift.

use std::time::{Duration, Instant};

use super::browser::Browser;
use super::{log_in, set_password, Web, PASSWORD};
use crate::deployments::{
    release as site_release, setup, start_agent, start_agent_logged_with, start_agent_per_env,
};
use crate::harness::{audit_len, audit_summary, write_over, Server};
use crate::support::{open_incident, release, ship_to_production, BUGGY, FIXED};

#[test]
fn the_assignee_acknowledges_on_the_board_and_others_cannot() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    server.admin(&["team", "create", "ops"]).success();
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let amy = server.create_user("amy", "viewer", &["shop:support"]);
    server.create_user("bob", "viewer", &["shop:support"]);
    let vic = server.create_user("vic", "viewer", &["shop:viewer"]);
    let olga = server.create_user("olga", "viewer", &["ops:support"]);
    for token in [&amy, &vic, &olga] {
        set_password(&server, token);
    }
    server
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
            ],
        )
        .success();
    let opened = open_incident(&server, &amy, "prd", "critical", "checkout is down");
    let id = opened["id"].to_string();
    let minor = open_incident(&server, &amy, "dev", "low", "typo in the footer");
    let minor_id = minor["id"].to_string();
    let row = format!("#incident-{id}");

    // The board: worst first, who answers, the path, and the team's rotation.
    log_in(&browser, &server, "amy");
    browser.goto(&format!("{}/incidents", server.url));
    let shown = browser.text(&row);
    for expected in [
        "critical",
        "checkout is down",
        "web",
        "prd",
        "amy",
        "backlog",
        "open",
    ] {
        assert!(shown.contains(expected), "{expected}: {shown}");
    }
    let order = browser.text("table.incidents tbody");
    assert!(
        order.find("checkout is down").unwrap() < order.find("typo in the footer").unwrap(),
        "critical first: {order}"
    );
    let rotation = browser.text("#rotation-shop");
    for expected in ["amy", "on call now", "bob", "1h each", "15m"] {
        assert!(rotation.contains(expected), "{expected}: {rotation}");
    }
    assert!(!browser.has("#rotation-ops"), "amy is not in ops");

    // The assignee acknowledges it; the board shows it, and so does the audit trail.
    let before = audit_len(&server);
    browser.click(&format!("#ack-{id}"));
    browser.wait_for_text(&format!("{row} .status"), "acknowledged");
    assert!(browser.url().ends_with("/incidents"), "{}", browser.url());
    assert!(
        !browser.has(&format!("#ack-{id}")),
        "nothing left to acknowledge"
    );
    assert!(browser.has(&format!("#resolve-{id}")));
    assert_eq!(
        audit_summary(&server, before),
        vec![format!("amy incident.ack incident/{id}")]
    );
    browser.screenshot("incidents");

    // Its own page tells its history, with the buttons.
    browser.click(&format!("{row} th a"));
    browser.wait_for_text("#status", "acknowledged");
    let history = browser.text("ol.history");
    assert!(
        history.contains("routed to team shop, assigned to amy"),
        "{history}"
    );
    assert!(history.contains("acknowledged"), "{history}");

    // Acknowledging twice is refused on the page with the service's message and status.
    let amy_web = Web::log_in(&server, &[("user", "amy"), ("password", PASSWORD)]).unwrap();
    let token = amy_web.form_token();
    let twice = amy_web.post(
        &format!("/incidents/{id}/ack"),
        &[("form_token", &token)],
        &[],
    );
    assert_eq!(twice.status, 409, "{twice:?}");
    assert!(twice.body.contains("notice refused"), "{}", twice.body);
    assert!(
        twice.body.contains("already acknowledged"),
        "{}",
        twice.body
    );

    // Another team sees neither the incident nor shop's rotation.
    let other = Web::log_in(&server, &[("user", "olga"), ("password", PASSWORD)]).unwrap();
    let board = other.get("/incidents");
    assert_eq!(board.status, 200);
    assert!(!board.body.contains("checkout is down"), "{}", board.body);
    assert!(!board.body.contains("rotation-shop"), "{}", board.body);
    assert!(board.body.contains("rotation-ops"), "{}", board.body);
    assert_eq!(other.get(&format!("/incidents/{id}")).status, 404);

    // A viewer of shop sees it, has no button, and a forged Resolve is refused as the API
    // refuses it; the incident stays acknowledged.
    let viewer = Web::log_in(&server, &[("user", "vic"), ("password", PASSWORD)]).unwrap();
    let board = viewer.get("/incidents?app=web");
    assert!(board.body.contains("checkout is down"), "{}", board.body);
    assert!(
        !board.body.contains(&format!("id=\"resolve-{id}\"")),
        "{}",
        board.body
    );
    let token = viewer.form_token();
    let forged = viewer.post(
        &format!("/incidents/{id}/resolve"),
        &[("form_token", &token)],
        &[],
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(forged.body.contains("notice refused"), "{}", forged.body);
    let cli = server
        .ferry(&vic, &["incident", "resolve", &id])
        .fails(3, "support role");
    let message = cli.stderr.trim_start_matches("error: ").trim();
    let first_line = message.lines().next().unwrap();
    let escaped = first_line.replace('"', "&#34;").replace('\'', "&#39;");
    assert!(
        forged.body.contains(first_line) || forged.body.contains(&escaped),
        "the command line's message {first_line:?}: {}",
        forged.body
    );
    let still = server
        .admin(&["incident", "show", &id, "--json"])
        .success()
        .json();
    assert_eq!(still["status"], "acknowledged", "{still}");

    // Resolved ones leave the board, and come back with the checkbox.
    server
        .ferry(&amy, &["incident", "resolve", &minor_id])
        .success();
    let board = amy_web.get("/incidents");
    assert!(!board.body.contains("typo in the footer"), "{}", board.body);
    let all = amy_web.get("/incidents?all=true");
    assert!(all.body.contains("typo in the footer"), "{}", all.body);
}

#[test]
fn a_hotfix_in_production_shows_its_backport_on_the_board() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let _agents = start_agent_per_env(&server);
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let sam = server.create_user("sam", "viewer", &["shop:support"]);
    set_password(&server, &sam);
    let base = [("checkout.js", BUGGY), ("index.html", "<h1>shop</h1>\n")];
    release(&server, "1.0.0", &base, &[]);
    for env in ["dev", "pp"] {
        server
            .ferry(&dana, &["deploy", "web", "1.0.0", "--to", env, "--wait"])
            .success();
    }
    ship_to_production(&server, &dana, &lee, "1.0.0");

    let critical = open_incident(&server, &sam, "prd", "critical", "payments round wrongly");
    let id = critical["id"].to_string();
    assert_eq!(critical["path"], "hotfix-backport", "{critical}");
    let row = format!("#incident-{id}");
    log_in(&browser, &server, "sam");
    browser.goto(&format!("{}/incidents", server.url));
    let shown = browser.text(&row);
    assert!(shown.contains("hotfix-backport"), "{shown}");
    assert!(shown.contains("suggested hotfix 1.0.1 of 1.0.0"), "{shown}");
    assert!(
        !shown.contains("not in dev"),
        "nothing shipped yet: {shown}"
    );

    server
        .ferry(&dana, &["hotfix", "start", &id, "--wait"])
        .success();
    let hotfix = [("checkout.js", FIXED), ("index.html", "<h1>shop</h1>\n")];
    release(
        &server,
        "1.0.1",
        &hotfix,
        &["--hotfix-of", "1.0.0", "--incident", &id],
    );
    server
        .ferry(&dana, &["deploy", "web", "1.0.1", "--to", "pp", "--wait"])
        .success();
    ship_to_production(&server, &dana, &lee, "1.0.1");

    browser.goto(&format!("{}/incidents", server.url));
    let shown = browser.text(&format!("{row} .hotfix"));
    assert!(shown.contains("1.0.1 not in dev yet"), "{shown}");
    browser.screenshot("incidents-backport");
    browser.click(&format!("{row} th a"));
    browser.wait_for_text("#status", "open");
    let facts = browser.text("dl.facts");
    assert!(facts.contains("1.0.1 not in dev yet"), "{facts}");
    let history = browser.text("ol.history");
    assert!(
        history.contains("opened (critical, path hotfix-backport)"),
        "{history}"
    );

    // Acknowledged on its own page, with a note: back to that page.
    browser.fill("input[name=note]", "backport after the weekend");
    browser.click(&format!("#ack-{id}"));
    browser.wait_for_text("#status", "acknowledged");
    assert!(
        browser.url().ends_with(&format!("/incidents/{id}")),
        "{}",
        browser.url()
    );
    let history = browser.text("ol.history");
    assert!(
        history.contains("sam: acknowledged: backport after the weekend"),
        "{history}"
    );
    browser.screenshot("incident");
}

#[test]
fn targets_show_health_what_they_run_and_drift() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start_with(&["--heartbeat-every", "1s"]);
    setup(&server);
    server.admin(&["team", "create", "ops"]).success();
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let olga = server.create_user("olga", "viewer", &["ops:developer"]);
    set_password(&server, &dana);
    set_password(&server, &olga);
    // Periodic drift checks off: only the refresh below finds the edit.
    let (dev, _log) = start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "0s"]);
    let pp = start_agent(&server, "pp", "pp-1");
    site_release(&server, "1.0.0", "");
    for env in ["dev", "pp"] {
        server
            .ferry(&dana, &["deploy", "web", "1.0.0", "--to", env, "--wait"])
            .success();
    }
    drop(pp);
    write_over(
        &dev.root.join("apps/web/current/index.html"),
        "<h1>edited on the box</h1>\n",
    );
    server
        .admin(&["drift", "web", "--target", "dev-1", "--refresh"])
        .success();

    log_in(&browser, &server, "dana");
    // Three missed heartbeats of a second: pp-1 goes offline.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        browser.goto(&format!("{}/targets", server.url));
        if browser.text("#target-pp-1 .health").contains("offline") {
            break;
        }
        assert!(Instant::now() < deadline, "pp-1 never went offline");
        std::thread::sleep(Duration::from_millis(500));
    }
    let dev_row = browser.text("#target-dev-1");
    for expected in [
        "dev",
        "online",
        "web",
        "1.0.0",
        "succeeded",
        "drift: 1 path",
    ] {
        assert!(dev_row.contains(expected), "{expected}: {dev_row}");
    }
    let pp_row = browser.text("#target-pp-1");
    assert!(pp_row.contains("last seen"), "{pp_row}");
    assert!(pp_row.contains("1.0.0"), "{pp_row}");
    assert!(!pp_row.contains("drift"), "{pp_row}");
    browser.screenshot("targets");

    // Another team sees the targets, not what shop runs on them.
    let other = Web::log_in(&server, &[("user", "olga"), ("password", PASSWORD)]).unwrap();
    let page = other.get("/targets");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("target-dev-1"), "{}", page.body);
    assert!(!page.body.contains("data-app=\"web\""), "{}", page.body);
}
