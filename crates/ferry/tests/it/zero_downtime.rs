//! Zero downtime behind a real web server: nginx serves an application from its target's
//! `current` (static files, or PHP through PHP-FPM) while clients request pages without
//! pause and the application is deployed and rolled back again and again through the
//! `ferry` CLI. Every request must be answered 200 with a page of one release whose asset
//! is of that release too. `docs/zero-downtime.md` describes the setup; its numbers are in
//! BENCHMARKS.md.
//!
//! `FERRY_ZERO_DOWNTIME_CYCLES=N` runs N deploy/rollback cycles instead of the short form's.

mod load;
mod web_server;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::deployments::{release_from, setup, start_agent_logged_with};
use crate::harness::{on_postgres, Agent, Server};
use load::{Load, Tally};
use web_server::{Nginx, Pages, PhpFpm};

/// The release deployed first, and the one each cycle deploys and rolls back from.
const OLD: &str = "1.0.0";
const NEW: &str = "2.0.0";

/// Clients requesting pages at once.
const CLIENTS: usize = 4;

#[test]
fn nginx_serves_one_whole_release_through_deploys_and_rollbacks() {
    let server = Server::start();
    let agent = serving_agent(&server);
    let app_dir = agent.root.join("apps/web");
    for version in [OLD, NEW] {
        let site = server.dir.path().join(format!("site-{version}"));
        static_site(&site, version);
        release_from(&server, version, &site);
    }
    deploy(&server, OLD);
    let Some(nginx) = Nginx::start(&app_dir, Pages::Static) else {
        return;
    };
    let tally = cycles(&server, &nginx, cycle_count(50), "static files");
    assert!(tally.clean(), "{tally:#?}\n{}", nginx.error_log());
}

#[test]
fn php_fpm_reloaded_by_a_hook_behind_nginx_serves_one_whole_release() {
    let server = Server::start();
    let agent = serving_agent(&server);
    let app_dir = agent.root.join("apps/web");
    // The hook reloads the PHP-FPM whose pid file is in the application's shared directory.
    fs::create_dir_all(app_dir.join("shared")).unwrap();
    let Some(fpm) = PhpFpm::start(&app_dir.join("shared/php-fpm.pid")) else {
        return;
    };
    for version in [OLD, NEW] {
        let site = server.dir.path().join(format!("site-{version}"));
        php_site(&site, version);
        release_from(&server, version, &site);
    }
    deploy(&server, OLD);
    let Some(nginx) = Nginx::start(&app_dir, Pages::Php(&fpm.socket)) else {
        return;
    };
    // The release's ferry.toml is in `current`, and not served.
    assert!(app_dir.join("current/ferry.toml").exists());
    let status = crate::harness::Run::of(std::process::Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{}/ferry.toml", nginx.port),
    ]));
    assert_eq!(status.stdout, "404", "{status:?}");
    let tally = cycles(&server, &nginx, cycle_count(20), "PHP-FPM");
    assert!(
        tally.clean(),
        "{tally:#?}\n{}\n{}",
        nginx.error_log(),
        fpm.log()
    );
}

/// The application `web` and the agent of the target `dev-1` that serves it.
fn serving_agent(server: &Server) -> Agent {
    setup(server);
    let (agent, _log) = start_agent_logged_with(server, "dev", "dev-1", &[]);
    agent
}

fn deploy(server: &Server, version: &str) {
    server
        .admin(&["deploy", "web", version, "--to", "dev", "--wait"])
        .success();
}

/// Runs `count` cycles of deploying [`NEW`] and rolling back to [`OLD`] while clients
/// request pages from `nginx`, each switch seen served; says what the clients got (past the
/// test harness's capture, so the numbers are seen) and returns it.
fn cycles(server: &Server, nginx: &Nginx, count: usize, what: &str) -> Tally {
    let started = Instant::now();
    let load = Load::start(nginx.port, CLIENTS);
    load.switching_to(OLD, || {});
    for _ in 0..count {
        load.switching_to(NEW, || deploy(server, NEW));
        load.switching_to(OLD, || {
            server
                .admin(&["rollback", "web", "--env", "dev", "--wait"])
                .success();
        });
    }
    let tally = load.stop();
    let _ = writeln!(
        std::io::stderr(),
        "zero downtime ({what}): {count} deploy/rollback cycles in {:.1} s, {} pages with \
         their assets {:?}, {} failed, {} mixed, {} assets of another release",
        started.elapsed().as_secs_f64(),
        tally.pages.values().sum::<u64>(),
        tally.pages,
        tally.failed,
        tally.mixed,
        tally.mismatched_assets
    );
    tally
}

/// `FERRY_ZERO_DOWNTIME_CYCLES`, or the short form's `default`; on PostgreSQL, 2 unless
/// asked for more: the database only records the deployments (which the rest of the suite
/// covers on it), while the cycles load both cores for as long as they last.
fn cycle_count(default: usize) -> usize {
    match std::env::var("FERRY_ZERO_DOWNTIME_CYCLES") {
        Ok(count) => count
            .parse()
            .expect("FERRY_ZERO_DOWNTIME_CYCLES is a number of cycles"),
        Err(_) if on_postgres() => 2,
        Err(_) => default,
    }
}

/// A static site whose page is stamped with its release and references its asset under
/// the release's version, as a build that versions its assets makes it.
fn static_site(dir: &Path, version: &str) {
    fs::create_dir_all(dir.join("assets")).unwrap();
    fs::write(
        dir.join("index.html"),
        format!(
            "<!doctype html>\n<title>release={version}</title>\n\
             <link rel=\"stylesheet\" href=\"/assets/{version}/site.css\">\n\
             <h1>release={version}</h1>\n"
        ),
    )
    .unwrap();
    asset(dir, version);
}

/// A PHP site whose page is stamped three ways: by a file it includes, by a file it reads
/// and by the directory PHP-FPM was told the script is in. A page that mixes releases (a
/// script of one release including a file of the other) shows two.
fn php_site(dir: &Path, version: &str) {
    fs::create_dir_all(dir.join("assets")).unwrap();
    fs::write(dir.join("VERSION"), format!("{version}\n")).unwrap();
    fs::write(
        dir.join("release.php"),
        format!("<?php\nconst RELEASE = '{version}';\n"),
    )
    .unwrap();
    fs::write(
        dir.join("index.php"),
        concat!(
            "<?php\n",
            "require __DIR__ . '/release.php';\n",
            "$version = trim(file_get_contents(__DIR__ . '/VERSION'));\n",
            "?>\n",
            "<!doctype html>\n",
            "<title>release=<?= RELEASE ?></title>\n",
            "<link rel=\"stylesheet\" href=\"/assets/<?= $version ?>/site.css\">\n",
            "<p>release=<?= $version ?></p>\n",
            "<p>release=<?= basename($_SERVER['DOCUMENT_ROOT']) ?></p>\n",
        ),
    )
    .unwrap();
    fs::write(
        dir.join("ferry.toml"),
        concat!(
            "[hooks]\n",
            "# PHP-FPM finishes the requests in flight and starts again on the new release.\n",
            "after_switch = 'kill -USR2 \"$(cat \"$FERRY_SHARED_DIR/php-fpm.pid\")\"'\n",
        ),
    )
    .unwrap();
    asset(dir, version);
}

fn asset(dir: &Path, version: &str) {
    fs::write(
        dir.join("assets/site.css"),
        format!("/* release={version} */\nbody {{ color: teal }}\n"),
    )
    .unwrap();
}
