//! The application page: promoting with its buttons through the API's services (and their
//! refusals), comparing two releases, the regression guard's verdict on each release for
//! production, and configuration with its secrets never sent to the browser.

use super::browser::Browser;
use super::{log_in, set_password, Web, PASSWORD};
use crate::config::with_input;
use crate::deployments::{current, release, setup, start_agent, start_agent_per_env};
use crate::harness::Server;
use crate::support::{open_incident, ship_to_production, BUGGY, FIXED};

#[test]
fn a_developer_promotes_with_the_buttons_and_a_viewer_may_not() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let _dev = start_agent(&server, "dev", "dev-1");
    let pp = start_agent(&server, "pp", "pp-1");
    let prd = start_agent(&server, "prd", "prd-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let vic = server.create_user("vic", "viewer", &["shop:viewer"]);
    server.admin(&["team", "create", "blog"]).success();
    let olga = server.create_user("olga", "viewer", &["blog:developer"]);
    for token in [&dana, &vic, &olga] {
        set_password(&server, token);
    }
    release(&server, "1.0.0", "");
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();

    // dev → pp with the button, landing on the deployment that succeeds.
    log_in(&browser, &server, "dana");
    browser.click("#app-web a[href=\"/apps/web\"]");
    browser.wait_for_text("#environments", "dev");
    assert!(browser.text("#env-dev").contains("1.0.0"));
    assert!(browser.text("#env-pp").contains("nothing yet"));
    browser.screenshot("app");
    browser.click("#promote-pp");
    browser.wait_for_text("#status", "succeeded");
    assert!(browser.url().contains("/deployments/"), "{}", browser.url());
    assert_eq!(current(&pp.root, "web"), "releases/1.0.0");

    // pp → prd is asked for, after the question protected environments get, and waits.
    browser.goto(&format!("{}/apps/web", server.url));
    browser.click("#promote-prd");
    browser.accept_confirmation();
    browser.wait_for_text("#status", "awaiting_approval");
    assert_eq!(current(&prd.root, "web"), "", "nothing went live");
    browser.goto(&format!("{}/apps/web", server.url));
    let deployments = browser.text("#deployments");
    assert!(deployments.contains("awaiting_approval"), "{deployments}");

    // A viewer sees no buttons, and their forged form is refused as the API refuses it.
    let viewer = Web::log_in(&server, &[("user", "vic"), ("password", PASSWORD)]).unwrap();
    let page = viewer.get("/apps/web");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("1.0.0"));
    for button in ["id=\"promote-", "id=\"deploy-", "id=\"rollback-"] {
        assert!(!page.body.contains(button), "{button} in {}", page.body);
    }
    let token = viewer.form_token();
    let forged = viewer.post(
        "/apps/web/promote",
        &[("form_token", &token), ("from", "dev"), ("to", "pp")],
        &[],
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    let api = server
        .ferry(&vic, &["promote", "web", "--from", "dev", "--to", "pp"])
        .fails(3, "");
    let said = api.stderr.trim().trim_start_matches("error: ");
    let said = said.lines().next().unwrap();
    assert!(
        forged.body.contains("class=\"notice refused\""),
        "{}",
        forged.body
    );
    assert!(
        unescaped(&forged.body).contains(said),
        "the API's words {said:?} in {}",
        forged.body
    );

    // Another team's user is told the application does not exist, as by the API.
    let other = Web::log_in(&server, &[("user", "olga"), ("password", PASSWORD)]).unwrap();
    let hidden = other.get("/apps/web");
    assert_eq!(hidden.status, 404, "{hidden:?}");
    assert!(
        hidden.body.contains("no application named"),
        "{}",
        hidden.body
    );
    let api = server.ferry(&olga, &["release", "list", "web"]);
    assert!(api.stderr.contains("no application named"), "{api:?}");
}

/// `html` with the entities askama writes turned back into characters.
fn unescaped(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[test]
fn two_releases_compare_and_secrets_stay_on_the_server() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    set_password(&server, &dana);
    release(&server, "1.0.0", "");
    release(&server, "1.1.0", "");
    server
        .admin(&["config", "set", "web", "--env", "dev", "FEATURE_X=on"])
        .success();
    const SECRET: &str = "s3cr3t-value-never-shown";
    with_input(
        &server,
        &server.admin_token,
        &[
            "config", "set", "web", "--env", "dev", "--secret", "API_KEY",
        ],
        &format!("{SECRET}\n"),
    )
    .success();

    // The comparison form leads to what changed.
    log_in(&browser, &server, "dana");
    browser.goto(&format!("{}/apps/web", server.url));
    let releases = browser.text("#releases");
    assert!(
        releases.contains("1.1.0") && releases.contains("directory"),
        "{releases}"
    );
    assert!(releases.contains("may go to prd"), "{releases}");
    browser.click("#compare-button");
    let paths = browser.wait_for_text("#paths", "index.html");
    assert!(paths.contains("changed"), "{paths}");
    assert!(
        !paths.contains("site.css"),
        "unchanged paths are not listed: {paths}"
    );
    assert!(
        browser.url().contains("/apps/web/diff?from=1.0.0&to=1.1.0"),
        "{}",
        browser.url()
    );
    browser.screenshot("app-diff");

    // The configuration's keys are shown, a secret's value never reaches the page.
    let web = Web::log_in(&server, &[("user", "dana"), ("password", PASSWORD)]).unwrap();
    let page = web.get("/apps/web");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("API_KEY"), "{}", page.body);
    assert!(page.body.contains("FEATURE_X"));
    assert!(!page.body.contains(SECRET), "{}", page.body);
    browser.goto(&format!("{}/apps/web", server.url));
    assert!(browser.text("#config-dev").contains("secret"));
    assert!(!browser.source().contains(SECRET));
    let missing = web.get("/apps/web/diff?from=1.0.0&to=9.9.9");
    assert_eq!(missing.status, 404, "{missing:?}");
}

#[test]
fn the_guard_says_which_release_would_undo_a_hotfix() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let _agents = start_agent_per_env(&server);
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    set_password(&server, &dana);
    let web_release = |version: &str, files: &[(&str, &str)], extra: &[&str]| {
        crate::support::release(&server, version, files, extra);
    };
    web_release("1.0.0", &[("checkout.js", BUGGY)], &[]);
    for env in ["dev", "pp"] {
        server
            .ferry(&dana, &["deploy", "web", "1.0.0", "--to", env, "--wait"])
            .success();
    }
    ship_to_production(&server, &dana, &lee, "1.0.0");

    // A critical incident, fixed by hotfix 1.0.1 from production's release, shipped.
    let incident = open_incident(&server, &lee, "prd", "critical", "checkout charges twice");
    let id = incident["id"].as_i64().unwrap().to_string();
    web_release(
        "1.0.1",
        &[("checkout.js", FIXED)],
        &["--hotfix-of", "1.0.0", "--incident", &id],
    );
    server
        .ferry(&dana, &["deploy", "web", "1.0.1", "--to", "pp", "--wait"])
        .success();
    ship_to_production(&server, &dana, &lee, "1.0.1");
    // The product line goes on without the fix, then with it.
    web_release("1.1.0", &[("checkout.js", BUGGY), ("new.js", "x\n")], &[]);
    server
        .ferry(&dana, &["deploy", "web", "1.1.0", "--to", "dev", "--wait"])
        .success();
    web_release("1.2.0", &[("checkout.js", FIXED), ("new.js", "x\n")], &[]);

    log_in(&browser, &server, "dana");
    browser.goto(&format!("{}/apps/web", server.url));
    let without = browser.text("#release-1\\.1\\.0 .guard");
    assert!(without.contains("would undo hotfix 1.0.1"), "{without}");
    assert!(without.contains("checkout.js"), "{without}");
    assert!(without.contains(&format!("incident {id}")), "{without}");
    let with = browser.text("#release-1\\.2\\.0 .guard");
    assert!(with.contains("may go to prd"), "{with}");
    assert!(browser
        .text("#release-1\\.0\\.1")
        .contains("hotfix of 1.0.0"));
    assert!(
        browser
            .text("#incidents")
            .contains("checkout charges twice"),
        "the open incident is listed"
    );
    browser.screenshot("app-guard");

    // Deploying it where the guard holds (pp) is refused on the page as the service says.
    browser.run("document.querySelector('#version-pp').value = '1.1.0';");
    browser.click("#deploy-pp");
    let refused = browser.wait_for_text("#refused", "would undo hotfix 1.0.1");
    assert!(refused.contains("checkout.js"), "{refused}");
    assert!(
        browser.text("#env-pp").contains("1.0.1"),
        "pp still runs the hotfix"
    );
}

#[test]
fn a_developer_restores_a_backup_and_a_viewer_may_not() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let server = Server::start();
    setup(&server);
    let dev = start_agent(&server, "dev", "dev-1");
    let dana = server.create_user("dana", "viewer", &["shop:developer"]);
    let vic = server.create_user("vic", "viewer", &["shop:viewer"]);
    set_password(&server, &dana);
    set_password(&server, &vic);
    release(
        &server,
        "1.0.0",
        "shared = [\"data\"]\nbackup = [\"data\"]\n",
    );
    server
        .ferry(&dana, &["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let data = dev.root.join("apps/web/shared/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("orders.db"), "the orders\n").unwrap();
    let backup = server
        .ferry(
            &dana,
            &["backup", "create", "web", "--env", "dev", "--json"],
        )
        .success()
        .json()[0]["id"]
        .as_i64()
        .unwrap();
    std::fs::write(data.join("orders.db"), "lost\n").unwrap();

    // A viewer sees the backup but no button, and a forged form is refused.
    let viewer = Web::log_in(&server, &[("user", "vic"), ("password", PASSWORD)]).unwrap();
    let page = viewer.get("/apps/web");
    assert!(
        page.body.contains(&format!("id=\"backup-{backup}\"")),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"restore-"), "{}", page.body);
    let token = viewer.form_token();
    let forged = viewer.post(
        &format!("/apps/web/backups/{backup}/restore"),
        &[("form_token", &token)],
        &[],
    );
    assert_eq!(forged.status, 403, "{forged:?}");
    assert!(
        forged.body.contains("class=\"notice refused\""),
        "{}",
        forged.body
    );
    assert_eq!(
        std::fs::read_to_string(data.join("orders.db")).unwrap(),
        "lost\n"
    );

    // The developer restores it from the page.
    log_in(&browser, &server, "dana");
    browser.goto(&format!("{}/apps/web", server.url));
    browser.click(&format!("#restore-{backup}"));
    browser.accept_confirmation();
    let done = browser.wait_for_text("#done", &format!("Restoring backup {backup}"));
    assert!(done.contains("task"), "{done}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(data.join("orders.db")).unwrap_or_default() != "the orders\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup was not restored"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
