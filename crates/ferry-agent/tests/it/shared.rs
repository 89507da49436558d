//! Shared paths across deploys, and what drift ignores.

use std::fs;
use std::os::unix::fs::MetadataExt;

use ferry_agent::verify_release;

use crate::fixture::*;

const CONFIG: &str = r#"
shared = ["uploads", "config/local.ini", "data/db"]
ignore = ["cache/**"]
"#;

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
    let report = target.deploy_ok("1.0", &v1);
    assert_eq!(
        report.shared.linked,
        ["config/local.ini", "data/db", "uploads"]
    );
    assert_eq!(report.shared.initialised, report.shared.linked);

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

    let report = target.deploy_ok("2.0", &v2);
    assert!(report.shared.initialised.is_empty());
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
    assert!(verify_release(target.root(), APP, "1.0", &v1).is_empty());
    assert!(verify_release(target.root(), APP, "2.0", &v2).is_empty());
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
    assert!(verify_release(target.root(), APP, "1.0", &v1).is_empty());

    fs::remove_file(release.join("uploads")).unwrap();
    fs::create_dir(release.join("uploads")).unwrap();
    // Replaced, not written in place: the file is a hard link to the cache's blob.
    fs::remove_file(release.join("index.html")).unwrap();
    fs::write(release.join("index.html"), "hacked").unwrap();
    assert_eq!(
        verify_release(target.root(), APP, "1.0", &v1),
        ["index.html", "uploads"]
    );
}
