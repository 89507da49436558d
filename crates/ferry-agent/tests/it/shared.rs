//! Shared paths across deploys, and what drift ignores.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use ferry_agent::{verify_release, DeployOutcome, StepKind};
use ferry_cas::manifest::Manifest;

use crate::fixture::*;

const CONFIG: &str = r#"
shared = ["uploads", "config/local.ini", "data/db"]
ignore = ["cache/**"]
"#;

/// Deploys, insists it succeeded, and returns what it said it did with the shared paths.
fn deploy_shared_step(target: &Target, version: &str, manifest: &Manifest) -> String {
    let (outcome, steps) = target.deploy(version, manifest);
    assert!(
        matches!(outcome, DeployOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    steps
        .into_iter()
        .find(|step| step.kind == StepKind::SharedLinked)
        .expect("a shared paths step")
        .detail
}

#[test]
fn shared_paths_are_linked_and_persist_across_deploys() {
    let target = Target::new();
    let v1 = target.release(&[
        ferry_toml(CONFIG),
        dir("config", 0o755),
        file("config/local.ini", "v1 config"),
        file("config/app.ini", "app v1"),
        dir("uploads", 0o755),
        file("uploads/readme.txt", "put uploads here"),
        file("index.html", "1"),
    ]);
    let v2 = target.release(&[
        ferry_toml(CONFIG),
        dir("config", 0o755),
        file("config/local.ini", "v2 config"),
        file("config/app.ini", "app v2"),
        file("index.html", "2"),
    ]);
    assert_eq!(
        deploy_shared_step(&target, "1.0", &v1),
        "shared paths linked: config/local.ini, data/db, uploads; created: config/local.ini, data/db, uploads"
    );

    let layout = target.layout();
    let shared = layout.shared_dir();
    let release = target.release_dir("1.0");
    assert_eq!(
        fs::read_link(release.join("uploads")).unwrap().to_str(),
        Some("../../shared/uploads")
    );
    assert_eq!(
        fs::read_link(release.join("config/local.ini"))
            .unwrap()
            .to_str(),
        Some("../../../shared/config/local.ini")
    );
    assert_eq!(
        fs::read_link(release.join("data/db")).unwrap().to_str(),
        Some("../../../shared/data/db")
    );
    assert!(shared.join("data/db").is_dir());
    assert_eq!(
        fs::read_to_string(shared.join("uploads/readme.txt")).unwrap(),
        "put uploads here"
    );
    // The initial content was copied: writing to it cannot reach the cache's blobs.
    let config_blob = target
        .cache
        .path_of(&ferry_cas::hash::ContentHash::of(b"v1 config"));
    assert_ne!(
        fs::metadata(shared.join("config/local.ini")).unwrap().ino(),
        fs::metadata(config_blob).unwrap().ino()
    );

    // The application writes through `current`.
    let current = layout.current_link();
    fs::write(current.join("uploads/photo.png"), "png").unwrap();
    fs::write(current.join("config/local.ini"), "edited on the server").unwrap();
    fs::write(current.join("data/db/app.sqlite"), "rows").unwrap();

    assert_eq!(
        deploy_shared_step(&target, "2.0", &v2),
        "shared paths linked: config/local.ini, data/db, uploads"
    );
    assert_eq!(
        fs::read_to_string(current.join("uploads/photo.png")).unwrap(),
        "png"
    );
    assert_eq!(
        fs::read_to_string(current.join("config/local.ini")).unwrap(),
        "edited on the server"
    );
    assert_eq!(
        fs::read_to_string(current.join("config/app.ini")).unwrap(),
        "app v2"
    );
    assert_eq!(
        fs::read_to_string(current.join("data/db/app.sqlite")).unwrap(),
        "rows"
    );
    assert!(verify_release(target.root(), APP, &v("1.0"), &v1).is_empty());
    assert!(verify_release(target.root(), APP, &v("2.0"), &v2).is_empty());
}

#[test]
fn drift_ignores_shared_and_ignored_paths_but_not_the_rest() {
    let target = Target::new();
    let v1 = target.release(&[
        ferry_toml(CONFIG),
        dir("cache", 0o755),
        file("cache/.keep", ""),
        file("index.html", "1"),
    ]);
    target.deploy_ok("1.0", &v1);
    let release = target.release_dir("1.0");
    fs::write(release.join("cache/compiled.php"), "<?php").unwrap();
    fs::remove_file(release.join("cache/.keep")).unwrap();
    fs::write(release.join("uploads/new.png"), "png").unwrap();
    assert!(verify_release(target.root(), APP, &v("1.0"), &v1).is_empty());

    in_writable_dir(&release, || {
        fs::remove_file(release.join("uploads")).unwrap();
        fs::create_dir(release.join("uploads")).unwrap();
        // Replaced, not written in place: the file is a hard link to the cache's blob.
        fs::remove_file(release.join("index.html")).unwrap();
        fs::write(release.join("index.html"), "hacked").unwrap();
    });
    assert_eq!(
        verify_release(target.root(), APP, &v("1.0"), &v1),
        ["index.html", "uploads"]
    );
}

/// Regression: staging ahead (`deploy --stage-only`, or while a production deployment
/// awaits its approvals) ran the shared-path step, so a release naming a new shared path
/// created `shared/evil.php` in production before anyone approved it.
#[test]
fn staging_ahead_writes_nothing_outside_releases_until_the_switch() {
    let target = Target::new();
    let v1 = target.release(&[
        ferry_toml("shared = [\"uploads\"]"),
        dir("uploads", 0o755),
        file("uploads/readme.txt", "put uploads here"),
        file("index.php", "<?php echo 1;"),
    ]);
    // The very first release staged ahead: not even `shared/` or `current` appear.
    target.stage_ahead("1.0", &v1).unwrap();
    assert!(target.layout().has_release(&v("1.0")));
    let outside: Vec<String> = outside_releases(target.root()).into_keys().collect();
    assert_eq!(outside, ["apps", "apps/shop"]);
    target.deploy_ok("1.0", &v1);
    let shared = target.layout().shared_dir();
    fs::write(shared.join("uploads/photo.png"), "png").unwrap();

    let v2 = target.release(&[
        ferry_toml(
            "shared = [\"uploads\", \"evil.php\", \"config/local.ini\"]\n[hooks]\nbefore_switch = \"touch \\\"$FERRY_SHARED_DIR/hook-ran\\\"\"\n",
        ),
        dir("uploads", 0o755),
        file("uploads/readme.txt", "put uploads here"),
        file("evil.php", "<?php system($_GET['c']);"),
        file("index.php", "<?php echo 2;"),
    ]);
    let before = outside_releases(target.root());
    target.stage_ahead("2.0", &v2).unwrap();
    assert_eq!(outside_releases(target.root()), before);
    // The release itself is complete, its links waiting for the switch.
    let release = target.release_dir("2.0");
    assert_eq!(
        fs::read_link(release.join("evil.php")).unwrap().to_str(),
        Some("../../shared/evil.php")
    );
    assert!(verify_release(target.root(), APP, &v("2.0"), &v2).is_empty());
    assert_eq!(target.current().as_deref(), Some("1.0"));

    // The switch, once the deployment runs, creates them (before its hooks).
    assert_eq!(
        deploy_shared_step(&target, "2.0", &v2),
        "shared paths linked: config/local.ini, evil.php, uploads; created: config/local.ini, evil.php"
    );
    assert_eq!(
        fs::read_to_string(shared.join("evil.php")).unwrap(),
        "<?php system($_GET['c']);"
    );
    assert!(shared.join("config/local.ini").is_dir());
    assert!(shared.join("hook-ran").is_file());
    assert_eq!(
        fs::read_to_string(shared.join("uploads/photo.png")).unwrap(),
        "png"
    );
    // Shared data stays writable (the manifest's modes), unlike the release.
    assert_eq!(
        fs::metadata(shared.join("evil.php"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o644
    );
}

#[test]
fn a_symlink_left_in_shared_is_never_followed_when_a_shared_path_is_created() {
    let target = Target::new();
    let outside = tempfile::tempdir().unwrap();
    let shared = target.layout().shared_dir();
    fs::create_dir_all(&shared).unwrap();
    // The application replaced `shared/config` with a link to somewhere else.
    std::os::unix::fs::symlink(outside.path(), shared.join("config")).unwrap();
    let v1 = target.release(&[
        ferry_toml(CONFIG),
        dir("config", 0o755),
        file("config/local.ini", "v1 config"),
        file("index.html", "1"),
    ]);
    let (outcome, _) = target.deploy("1.0", &v1);
    let DeployOutcome::Failed { reason, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(
        reason.contains("shared/config is not a directory (a symlink, or a file)"),
        "{reason}"
    );
    assert_eq!(
        fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written there"
    );
    assert!(target.layout().current().is_none());
}
