//! Logging in and out: a password or an API token for a session cookie; wrong ones
//! refused and throttled; sessions ended by logging out and by the user's token rotating;
//! forms accepted only with the session's token and from ferry's own origin.

use super::browser::Browser;
use super::{set_password, Web, PASSWORD};
use crate::deployments::setup;
use crate::harness::{audit_summary, Server};

#[test]
fn a_user_logs_in_in_a_browser_and_out_again() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    set_password(&server, &server.admin_token);

    // A page asked for before logging in comes back after it.
    browser.goto(&format!("{}/?team=shop", server.url));
    assert!(browser.url().contains("/login?next="), "{}", browser.url());
    browser.fill("input[name=user]", "admin");
    browser.fill("input[name=password]", "not the password");
    browser.click("button[type=submit]");
    let refused = browser.text("#refused");
    assert!(refused.contains("wrong user name or password"), "{refused}");
    browser.screenshot("login-refused");

    browser.fill("input[name=password]", PASSWORD);
    browser.click("button[type=submit]");
    browser.wait_for_text("header .who", "admin");
    assert!(browser.url().ends_with("/?team=shop"), "{}", browser.url());
    assert!(browser.text("main").contains("web"));

    browser.click("header .who button");
    browser.wait_for_text("h1", "Log in to ferry");
    browser.goto(&format!("{}/", server.url));
    assert!(
        browser.url().contains("/login"),
        "logged out: {}",
        browser.url()
    );
    let audit = audit_summary(&server, 0).join("\n");
    assert!(audit.contains("user.login user/admin"), "{audit}");
    assert!(audit.contains("user.logout user/admin"), "{audit}");
}

#[test]
fn an_api_token_logs_in_too_and_a_rotated_one_ends_the_session() {
    let server = Server::start();
    setup(&server);
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let web = Web::log_in(&server, &[("token", &dana)]).unwrap();
    let overview = web.get("/");
    assert_eq!(overview.status, 200, "{overview:?}");
    assert!(overview.body.contains("Logged in as <strong>dana</strong>"));

    server.ferry(&dana, &["user", "rotate-token"]).success();
    let after = web.get("/");
    assert_eq!(
        (after.status, after.location.as_str()),
        (303, "/login?next=%2F"),
        "the session ended with the token"
    );
    let refused = Web::log_in(&server, &[("token", &dana)]).unwrap_err();
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(
        refused.body.contains("unknown API token"),
        "{}",
        refused.body
    );
}

#[test]
fn forms_need_the_sessions_token_and_ferrys_own_origin() {
    let server = Server::start();
    setup(&server);
    set_password(&server, &server.admin_token);
    let web = Web::log_in(&server, &[("user", "admin"), ("password", PASSWORD)]).unwrap();
    let token = web.form_token();

    // Another site's page can post the form, but knows no token, or is seen coming.
    let forged = web.post("/logout", &[], &[]);
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(forged
        .body
        .contains("did not come from a page ferry served"));
    let wrong = "0".repeat(64);
    assert_eq!(
        web.post("/logout", &[("form_token", &wrong)], &[]).status,
        403
    );
    let elsewhere = web.post(
        "/logout",
        &[("form_token", &token)],
        &[("origin", "https://evil.example")],
    );
    assert_eq!(elsewhere.status, 403, "{elsewhere:?}");
    assert!(elsewhere.body.contains("posted from another site"));
    assert_eq!(web.get("/").status, 200, "still logged in");

    let out = web.post("/logout", &[("form_token", &token)], &[]);
    assert_eq!((out.status, out.location.as_str()), (303, "/login"));
    assert_eq!(web.get("/").status, 303, "logged out");
    // The old page's form does nothing more.
    assert_eq!(
        web.post("/logout", &[("form_token", &token)], &[]).status,
        401
    );
}

#[test]
fn failed_logins_are_throttled_and_say_nothing_of_who_exists() {
    let server = Server::start();
    setup(&server);
    set_password(&server, &server.admin_token);
    let nobody = Web::log_in(
        &server,
        &[("user", "nobody"), ("password", "whatever it is")],
    )
    .unwrap_err();
    let wrong = Web::log_in(
        &server,
        &[("user", "admin"), ("password", "whatever it is")],
    )
    .unwrap_err();
    assert_eq!((nobody.status, wrong.status), (401, 401));
    let said = |answer: &super::Answer| {
        let at = answer.body.find("id=\"refused\">").unwrap();
        answer.body[at..].split('<').next().unwrap().to_owned()
    };
    assert_eq!(said(&nobody), said(&wrong), "the same words for both");
    let empty = Web::log_in(&server, &[("user", "admin")]).unwrap_err();
    assert_eq!(empty.status, 400, "{empty:?}");

    for _ in 0..8 {
        Web::log_in(&server, &[("user", "admin"), ("password", "guess")]).unwrap_err();
    }
    // Ten failures in a minute from this address: even the right password waits.
    let throttled = Web::log_in(&server, &[("user", "admin"), ("password", PASSWORD)]).unwrap_err();
    assert_eq!(throttled.status, 429, "{throttled:?}");
    assert!(
        throttled.body.contains("too many failed logins: wait"),
        "{}",
        throttled.body
    );
    assert!(!server.log().contains(PASSWORD));
}

#[test]
fn the_overview_fits_a_phone() {
    let Some(browser) = Browser::phone() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    set_password(&server, &server.admin_token);
    super::log_in(&browser, &server, "admin");
    // Each environment's cell is labelled with its name, and nothing is wider than the screen.
    let label = browser.run(
        "return getComputedStyle(document.querySelector('#app-web td[data-env=prd]'), '::before').content",
    );
    assert_eq!(label, "\"prd\"");
    let overflow = browser
        .run("return document.documentElement.scrollWidth - document.documentElement.clientWidth");
    assert_eq!(overflow, 0, "the page scrolls sideways");
    browser.screenshot("overview-phone");
}

#[test]
fn a_session_works_on_every_server_sharing_the_database_and_ends_on_all() {
    let Some(first) = Server::start_on_postgres(&[]) else {
        return;
    };
    let second = first.start_peer(&[]);
    setup(&first);
    set_password(&first, &first.admin_token);
    let on_first = Web::log_in(&first, &[("user", "admin"), ("password", PASSWORD)]).unwrap();
    let on_second = on_first.at(&second);
    assert_eq!(
        on_second.get("/").status,
        200,
        "logged in on the other server too"
    );

    // Logged out on one, logged out on both.
    let token = on_second.form_token();
    assert_eq!(
        on_second
            .post("/logout", &[("form_token", &token)], &[])
            .status,
        303
    );
    assert_eq!(on_first.get("/").status, 303);
    assert_eq!(on_second.get("/").status, 303);
}

#[test]
fn wrong_addresses_get_pages_not_api_errors() {
    let server = Server::start();
    setup(&server);
    set_password(&server, &server.admin_token);
    let web = Web::log_in(&server, &[("user", "admin"), ("password", PASSWORD)]).unwrap();
    let nowhere = web.get("/nowhere");
    assert_eq!(nowhere.status, 404);
    assert!(
        nowhere.body.contains("ferry has no page /nowhere"),
        "{}",
        nowhere.body
    );
    let not_a_number = web.get("/deployments/abc");
    assert_eq!(not_a_number.status, 400);
    assert!(
        not_a_number.body.contains("<title>Refused"),
        "{}",
        not_a_number.body
    );
    // A form's address opened as a page (a reload after a refusal) leads back to its page.
    let form = web.get("/apps/web/deploy");
    assert_eq!((form.status, form.location.as_str()), (303, "/apps/web"));
    // The API keeps answering in JSON.
    let api = web.get("/api/v1/nowhere");
    assert!(api.body.starts_with("{\"error\""), "{}", api.body);
}
