//! A newcomer's first minute: `ferry demo` prints the dashboard's address and the admin's
//! password, and logging in with them shows the sample application in dev and pp.

use std::time::{Duration, Instant};

use super::browser::Browser;
use crate::deployments::DemoRun;
use crate::harness::signal;

#[test]
fn the_demo_prints_what_logs_in_to_a_populated_dashboard() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut run = DemoRun::start(&dir.path().join("demo"));
    let dashboard = run.printed("dashboard");
    let login = run.printed("log in as");
    run.keep_reading();
    let mut demo = run.child;
    let password = login
        .strip_prefix("admin, password ")
        .unwrap_or_else(|| panic!("{login:?}"));

    browser.goto(&dashboard);
    browser.fill("input[name=user]", "admin");
    browser.fill("input[name=password]", password);
    browser.click("button[type=submit]");
    browser.wait_for_text("header .who", "admin");
    let dev = browser.wait_for_text("#app-hello td[data-env=dev]", "1.1.0");
    assert!(dev.contains("healthy"), "{dev}");
    assert!(browser.text("#app-hello td[data-env=pp]").contains("1.0.0"));
    browser.screenshot("demo-overview");

    // It stops at once on SIGTERM, though the open overview still listens for changes.
    signal(&demo, "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = demo.kill();
            panic!("the demo did not stop while a dashboard page was open");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
