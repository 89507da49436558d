//! A newcomer's first minute: `ferry demo` prints the dashboard's address and the admin's
//! password, and logging in with them shows the sample application in dev and pp.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::browser::Browser;
use crate::harness::signal;

#[test]
fn the_demo_prints_what_logs_in_to_a_populated_dashboard() {
    let Some(browser) = Browser::open() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["demo", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("demo"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut printed = |label: &str| {
        lines
            .find_map(|line| line.trim().strip_prefix(label).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("the demo prints its {label}"))
    };
    let dashboard = printed("dashboard");
    let login = printed("log in as");
    std::thread::spawn(move || lines.for_each(drop));
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
