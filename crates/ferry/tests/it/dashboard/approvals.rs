//! Production waits for an approval: on the dashboard a lead approves and watches the
//! deployment succeed live; the developer who asked sees no Approve button, and a forged
//! approval from their session is refused as the command line refuses it.

use super::browser::Browser;
use super::{log_in, set_password, Web, PASSWORD};
use crate::deployments::{current, release, setup, start_agent};
use crate::harness::Server;

#[test]
fn a_lead_approves_production_and_watches_it_go_live() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    let _pp = start_agent(&server, "pp", "pp-1");
    let prd = start_agent(&server, "prd", "prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    set_password(&server, &dana);
    set_password(&server, &lee);
    release(
        &server,
        "1.0.0",
        "[health]\ncommand = \"test -s index.html\"\n",
    );
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    server
        .ferry(
            &dana,
            &["promote", "web", "--from", "dev", "--to", "pp", "--wait"],
        )
        .success();
    // The overview, open before production is asked for, shows what waits without a reload.
    log_in(&browser, &server, "lee");
    assert!(browser.text("#app-web td[data-env=pp]").contains("1.0.0"));
    browser.run("window.openedOnce = true");
    let asked = server
        .ferry(
            &dana,
            &["promote", "web", "--from", "pp", "--to", "prd", "--json"],
        )
        .success()
        .json();
    let id = asked["id"].as_i64().unwrap();
    browser.wait_for_text("#app-web td[data-env=prd]", "awaiting approval of 1.0.0");
    assert_eq!(browser.run("return window.openedOnce === true"), true);
    browser.screenshot("overview");

    // The developer who asked may not approve: no button, and a forged form is refused.
    let developer = Web::log_in(&server, &[("user", "dana"), ("password", PASSWORD)]).unwrap();
    let their_page = developer.get(&format!("/deployments/{id}"));
    assert_eq!(their_page.status, 200);
    assert!(
        !their_page.body.contains("id=\"approve\""),
        "{}",
        their_page.body
    );
    assert!(their_page.body.contains("Withdraw"), "they may withdraw it");
    let token = developer.form_token();
    let forged = developer.post(
        &format!("/deployments/{id}/approve"),
        &[("form_token", &token)],
        &[],
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(
        forged.body.contains("needs approve or admin"),
        "{}",
        forged.body
    );
    assert_eq!(current(&prd.root, "web"), "", "nothing went live");

    // The lead approves on the page and watches it go live without reloading.
    browser.click(&format!(
        "#app-web td[data-env=prd] a[href=\"/deployments/{id}\"]"
    ));
    browser.wait_for_text("#status", "awaiting_approval");
    browser.screenshot("deployment-awaiting-approval");
    browser.fill("input[name=reason]", "tested in pp");
    browser.click("#approve");
    browser.accept_confirmation();
    browser.wait_for_text("#status", "succeeded");
    assert!(browser.url().ends_with(&format!("/deployments/{id}")));
    let targets = browser.text("#live");
    assert!(targets.contains("prd-1"), "{targets}");
    assert!(
        targets.contains("health check"),
        "the health check's log: {targets}"
    );
    // Its status moved on, so the page reloads: nothing is left to approve or cancel.
    browser.wait_until_gone("#cancel");
    assert!(!browser.has("#approve"));
    // Who approved it stays on the page once it is done.
    browser.wait_for_text("#approvals", "lee approved 1.0.0");
    browser.screenshot("deployment-succeeded");
    assert_eq!(current(&prd.root, "web"), "releases/1.0.0");
    let shown = server
        .ferry(&lee, &["deployment", "show", &id.to_string(), "--json"])
        .success()
        .json();
    assert_eq!(shown["approvals"][0]["approver"], "lee", "{shown}");
    assert_eq!(shown["approvals"][0]["reason"], "tested in pp");
}
