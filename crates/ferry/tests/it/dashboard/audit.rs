//! The audit log page: filters by actor, application, action and day, the whole trail only
//! for those who may read it, and a button that checks the chain, which finds an event
//! altered in the database.

use super::browser::Browser;
use super::{log_in, set_password, Web, PASSWORD};
use crate::deployments::setup;
use crate::harness::Server;

#[test]
fn the_audit_log_is_filtered_and_its_chain_checked() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    set_password(&server, &server.admin_token);
    set_password(&server, &dana);
    log_in(&browser, &server, "admin");

    browser.click("nav a[href=\"/audit\"]");
    let events = browser.text("#events");
    assert!(events.contains("app.create"), "{events}");
    assert!(events.contains("team.create"), "{events}");
    // Filtered by action: only that action's events.
    browser.goto(&format!("{}/audit?action=app.create", server.url));
    let events = browser.text("#events tbody");
    assert!(events.contains("app/web"), "{events}");
    assert!(!events.contains("team.create"), "{events}");
    // By actor and day: today's events by admin, none by someone who did nothing.
    let today = std::process::Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .unwrap();
    let today = String::from_utf8(today.stdout).unwrap();
    let today = today.trim();
    browser.goto(&format!(
        "{}/audit?actor=admin&since={today}&until={today}",
        server.url
    ));
    assert!(browser.text("#events").contains("user.login"));
    browser.goto(&format!("{}/audit?actor=nobody", server.url));
    assert!(browser.text("main").contains("No event matches"));

    browser.goto(&format!("{}/audit", server.url));
    browser.click("#verify");
    let verified = browser.text("#verified");
    assert!(verified.contains("The chain holds"), "{verified}");
    browser.screenshot("audit");

    // An event changed behind ferry's back breaks the chain, and the page says where.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let changed =
        runtime.block_on(server.tamper("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"));
    assert_eq!(changed, 1);
    browser.goto(&format!("{}/audit?verify=1", server.url));
    let broken = browser.text("#verified");
    assert!(
        broken.contains("The chain is broken at event 2"),
        "{broken}"
    );

    // A developer reads one application's events, not the whole trail.
    let developer = Web::log_in(&server, &[("user", "dana"), ("password", PASSWORD)]).unwrap();
    let all = developer.get("/audit");
    assert!(all.body.contains("Choose an application"), "{}", all.body);
    assert!(!all.body.contains("id=\"events\""), "no events shown");
    let web = developer.get("/audit?app=web");
    assert!(web.body.contains("app.create"), "{}", web.body);
    let bad_day = developer.get("/audit?app=web&since=yesterday");
    assert_eq!(bad_day.status, 400);
    assert!(bad_day.body.contains("is not a day like 2026-12-01"));
}
