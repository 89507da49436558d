//! Drift: hand changes under `current` found path by path, with the right kind of change,
//! and when each was first seen.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use ferry_agent::drift::{self, DriftCheck};
use ferry_agent::lock::AppLock;
use ferry_cas::manifest::Manifest;
use ferry_cas::release_config::ReleaseConfig;
use ferry_domain::drift::DriftChange::{self, Added, Content, Deleted, Kind, Mode};

use crate::fixture::*;

const CONFIG: &str = r#"
shared = ["uploads", "config/local.ini", "data/db"]
ignore = ["cache", "cache/**"]
"#;

fn site() -> Vec<Item> {
    vec![
        ferry_toml(CONFIG),
        file("index.html", "<h1>shop</h1>\n"),
        file("about.html", "about\n"),
        file("robots.txt", "User-agent: *\n"),
        link("home.html", "index.html"),
        dir("css", 0o755),
        file("css/site.css", "body { color: teal }\n"),
        dir("bin", 0o755),
        file_mode("bin/run", "#!/bin/sh\necho run\n", 0o755),
        dir("docs", 0o755),
        file("docs/a.txt", "a\n"),
        dir("config", 0o755),
        file("config/local.ini", "local\n"),
        file("config/app.ini", "app\n"),
    ]
}

/// Checks the drift of the application at `now_ms` once the lock is free. It is busy for
/// a moment after a deploy when a process another test forked while the lock was held
/// shares the lock until it runs its program (which closes it).
fn check_when_free(
    target: &Target,
    version: &str,
    manifest: &Manifest,
    config: &ReleaseConfig,
    now_ms: i64,
) -> DriftCheck {
    for _ in 0..200 {
        match drift::check(target.root(), APP, &v(version), manifest, config, now_ms).unwrap() {
            DriftCheck::Busy => std::thread::sleep(std::time::Duration::from_millis(10)),
            checked => return checked,
        }
    }
    panic!("the lock of {APP} stayed taken");
}

/// Checks the drift of the application at `now_ms`, insisting it was checked.
fn check_at(
    target: &Target,
    version: &str,
    manifest: &Manifest,
    config: &ReleaseConfig,
    now_ms: i64,
) -> Vec<(String, DriftChange, i64)> {
    match check_when_free(target, version, manifest, config, now_ms) {
        DriftCheck::Checked(found) => {
            assert_eq!((found.app.as_str(), found.version.as_str()), (APP, version));
            found
                .paths
                .into_iter()
                .map(|p| (p.path, p.change, p.first_seen_ms))
                .collect()
        }
        other => panic!("not checked: {other:?}"),
    }
}

/// The paths found and how they differ, at time 0.
fn check(target: &Target, version: &str, manifest: &Manifest) -> Vec<(String, DriftChange)> {
    let config = drift::release_config(target.root(), APP, &v(version), manifest, &target.cache)
        .expect("the published ferry.toml");
    check_at(target, version, manifest, &config, 0)
        .into_iter()
        .map(|(path, change, _)| (path, change))
        .collect()
}

fn expected(paths: &[(&str, DriftChange)]) -> Vec<(String, DriftChange)> {
    paths.iter().map(|(p, c)| ((*p).to_owned(), *c)).collect()
}

fn set_mode(path: &std::path::Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn hand_changes_under_current_are_found_path_by_path_as_what_they_are() {
    let target = Target::new();
    let v1 = target.release(&site());
    target.deploy_ok("1.0", &v1);
    assert_eq!(check(&target, "1.0", &v1), [], "a release just deployed");
    let current = target.layout().current_link();
    let at = |path: &str| current.join(path);

    write_over(&at("index.html"), "<h1>hacked</h1>\n");
    in_writable_dir(&current.join("."), || {
        fs::write(at("new.php"), "<?php").unwrap();
        fs::remove_file(at("about.html")).unwrap();
        fs::remove_file(at("robots.txt")).unwrap();
        fs::create_dir(at("robots.txt")).unwrap();
        fs::remove_file(at("home.html")).unwrap();
        symlink("about.html", at("home.html")).unwrap();
    });
    set_mode(&at("bin/run"), 0o500);
    // Write permission alone: the first step of an edit, told as such.
    set_mode(&at("css/site.css"), 0o644);
    in_writable_dir(&at("docs"), || {
        fs::remove_file(at("docs/a.txt")).unwrap();
        symlink("/etc/passwd", at("docs/a.txt")).unwrap();
    });
    // The application's own paths: shared and ignored.
    fs::write(target.layout().shared_dir().join("uploads/new.png"), "png").unwrap();
    in_writable_dir(&current.join("."), || {
        fs::create_dir(at("cache")).unwrap();
        fs::write(at("cache/compiled.php"), "<?php").unwrap();
    });

    assert_eq!(
        check(&target, "1.0", &v1),
        expected(&[
            ("about.html", Deleted),
            ("bin/run", Mode),
            ("css/site.css", Mode),
            ("docs/a.txt", Kind),
            ("home.html", DriftChange::Target),
            ("index.html", Content),
            ("new.php", Added),
            ("robots.txt", Kind),
        ])
    );
    // The full verification, which reads every file, agrees, but for write permission
    // alone (which it leaves to the repair before a switch).
    let full = ferry_agent::verify_release(target.root(), APP, &v("1.0"), &v1);
    let drifted: Vec<String> = check(&target, "1.0", &v1)
        .into_iter()
        .filter(|(path, _)| path != "css/site.css")
        .map(|(path, _)| path)
        .collect();
    assert_eq!(full, drifted);
}

#[test]
fn a_file_written_back_with_its_content_is_no_drift_but_a_touched_edit_is() {
    let target = Target::new();
    let v1 = target.release(&site());
    target.deploy_ok("1.0", &v1);
    let current = target.layout().current_link();
    // Same content written again: another change time, the same bytes served.
    write_over(&current.join("about.html"), "about\n");
    assert_eq!(check(&target, "1.0", &v1), []);
    // Same size, modification time put back: the change time still gives it away.
    let path = current.join("docs/a.txt");
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    write_over(&path, "b\n");
    fs::File::open(&path).unwrap().set_modified(before).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    assert_eq!(
        check(&target, "1.0", &v1),
        expected(&[("docs/a.txt", Content)])
    );
}

#[test]
fn shared_and_ignored_paths_are_never_drift_but_the_shared_link_is() {
    let target = Target::new();
    let v1 = target.release(&site());
    target.deploy_ok("1.0", &v1);
    let current = target.layout().current_link();
    fs::write(current.join("uploads/photo.png"), "png").unwrap();
    in_writable_dir(&current.join("."), || {
        fs::create_dir(current.join("cache")).unwrap();
        fs::write(current.join("cache/x"), "x").unwrap();
    });
    assert_eq!(check(&target, "1.0", &v1), []);
    in_writable_dir(&current.join("."), || {
        fs::remove_file(current.join("uploads")).unwrap();
        fs::create_dir(current.join("uploads")).unwrap();
        fs::write(current.join("uploads/inside.png"), "png").unwrap();
    });
    assert_eq!(check(&target, "1.0", &v1), expected(&[("uploads", Kind)]));
}

#[test]
fn an_edited_ferry_toml_is_drift_and_the_published_one_still_decides() {
    let target = Target::new();
    let v1 = target.release(&site());
    target.deploy_ok("1.0", &v1);
    // What the agent reads (and keeps) while the release is intact.
    let config = drift::release_config(target.root(), APP, &v("1.0"), &v1, &target.cache).unwrap();
    let current = target.layout().current_link();
    // An edit that would hide every other one if the edited file were believed.
    write_over(&current.join("ferry.toml"), "ignore = [\"**\"]\n");
    write_over(&current.join("index.html"), "<h1>hacked</h1>\n");
    let found: Vec<(String, DriftChange)> = check_at(&target, "1.0", &v1, &config, 0)
        .into_iter()
        .map(|(path, change, _)| (path, change))
        .collect();
    assert_eq!(
        found,
        expected(&[("ferry.toml", Content), ("index.html", Content)])
    );
    // Replaced rather than written in place, the published file is still in the cache (on
    // another target: above, the edit in place changed the cache's copy too).
    let target = Target::new();
    let v1 = target.release(&site());
    target.deploy_ok("1.0", &v1);
    let current = target.layout().current_link();
    in_writable_dir(&current.join("."), || {
        fs::remove_file(current.join("ferry.toml")).unwrap();
        fs::write(current.join("ferry.toml"), "ignore = [\"**\"]\n").unwrap();
    });
    let config = drift::release_config(target.root(), APP, &v("1.0"), &v1, &target.cache).unwrap();
    assert_eq!(config.shared, ["config/local.ini", "data/db", "uploads"]);
}

#[test]
fn first_sightings_survive_the_next_check_and_reset_once_fixed() {
    let target = Target::new();
    let v1 = target.release(&site());
    target.deploy_ok("1.0", &v1);
    let config = drift::release_config(target.root(), APP, &v("1.0"), &v1, &target.cache).unwrap();
    let current = target.layout().current_link();
    set_mode(&current.join("about.html"), 0o644);
    assert_eq!(
        check_at(&target, "1.0", &v1, &config, 1_000),
        [("about.html".to_owned(), Mode, 1_000)]
    );
    in_writable_dir(&current.join("."), || {
        fs::write(current.join("new.txt"), "x").unwrap()
    });
    assert_eq!(
        check_at(&target, "1.0", &v1, &config, 2_000),
        [
            ("about.html".to_owned(), Mode, 1_000),
            ("new.txt".to_owned(), Added, 2_000)
        ]
    );
    // Fixed, then changed again: a new first sighting.
    set_mode(&current.join("about.html"), 0o444);
    assert_eq!(
        check_at(&target, "1.0", &v1, &config, 3_000),
        [("new.txt".to_owned(), Added, 2_000)]
    );
    set_mode(&current.join("about.html"), 0o644);
    assert_eq!(
        check_at(&target, "1.0", &v1, &config, 4_000),
        [
            ("about.html".to_owned(), Mode, 4_000),
            ("new.txt".to_owned(), Added, 2_000)
        ]
    );
    // The record is on disk, for the next agent process.
    let record = drift::load_record(target.root(), APP).unwrap();
    assert_eq!(record.version, "1.0");
    assert_eq!(record.paths.len(), 2);
}

#[test]
fn a_busy_or_moved_application_is_not_checked() {
    let target = Target::new();
    let v1 = target.release(&site());
    let v2 = target.release(&[file("index.html", "2")]);
    target.deploy_ok("1.0", &v1);
    let config = ReleaseConfig::default();
    {
        let _deploying = AppLock::acquire(target.root(), APP).unwrap();
        assert_eq!(
            drift::check(target.root(), APP, &v("1.0"), &v1, &config, 0).unwrap(),
            DriftCheck::Busy
        );
    }
    target.deploy_ok("2.0", &v2);
    assert_eq!(
        check_when_free(&target, "1.0", &v1, &config, 0),
        DriftCheck::Moved
    );
    assert_eq!(drift::served(target.root()), [(APP.to_owned(), v("2.0"))]);
}

#[test]
fn the_agents_own_work_is_never_drift() {
    // Deploying, staging ahead, rolling back and cleaning up relink files releases share:
    // none of it may look like a hand change to the release served.
    let target = Target::new();
    let mut items = site();
    let v1 = target.release(&items);
    items.push(file("extra.txt", "2"));
    let v2 = target.release(&items);
    items.push(file("more.txt", "3"));
    let v3 = target.release(&items);
    target.deploy_ok("1.0", &v1);
    target.deploy_ok("2.0", &v2);
    assert_eq!(check(&target, "2.0", &v2), []);
    target.stage_ahead("3.0", &v3).unwrap();
    assert_eq!(check(&target, "2.0", &v2), []);
    target.rollback("1.0", &v1).unwrap();
    assert_eq!(check(&target, "1.0", &v1), []);
    target.deploy_ok("3.0", &v3);
    ferry_agent::cleanup(target.root(), APP, 1).unwrap();
    assert_eq!(check(&target, "3.0", &v3), []);
}
