//! Cleanup of old releases.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ferry_agent::journal::Journal;
use ferry_agent::{cleanup, DeployOutcome};

use crate::fixture::*;

#[test]
fn cleanup_keeps_the_newest_the_current_and_the_last_succeeded() {
    let target = Target::new();
    let config = "shared = [\"uploads\"]";
    let release = |n: &str| {
        target.release(&[
            ferry_toml(config),
            file("index.html", n),
            dir("var", 0o755),
            file("var/.keep", ""),
        ])
    };
    let mut manifests = std::collections::HashMap::new();
    for version in ["1.0", "2.0", "3.0", "4.0"] {
        manifests.insert(version, release(version));
        target.deploy_ok(version, &manifests[version]);
    }
    let failing = target.release(&[
        ferry_toml("[hooks]\nbefore_switch = \"exit 1\""),
        file("index.html", "5.0"),
    ]);
    assert!(matches!(
        target.deploy("5.0", &failing).0,
        DeployOutcome::Failed { .. }
    ));
    target.rollback("2.0", &manifests["2.0"]).unwrap();
    // Someone made a read-only tree inside release 3.0.
    let var = target.release_dir("3.0").join("var");
    in_writable_dir(&var, || {
        fs::create_dir_all(var.join("ro/deeper")).unwrap();
    });
    fs::write(var.join("ro/deeper/file"), "x").unwrap();
    fs::set_permissions(
        var.join("ro/deeper/file"),
        fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    fs::set_permissions(var.join("ro/deeper"), fs::Permissions::from_mode(0o500)).unwrap();
    fs::set_permissions(var.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::set_permissions(&var, fs::Permissions::from_mode(0o555)).unwrap();
    fs::write(target.layout().shared_dir().join("uploads/keep.me"), "data").unwrap();

    let report = cleanup(target.root(), APP, 1).unwrap();
    // Newest first: 2.0 (switched to last), then 5.0, 4.0, 3.0, 1.0.
    assert_eq!(report.kept, [v("2.0"), v("4.0")]);
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, [v("1.0"), v("3.0"), v("5.0")]);
    let mut on_disk = target.layout().releases_on_disk().unwrap();
    on_disk.sort();
    assert_eq!(on_disk, [v("2.0"), v("4.0")]);
    assert_eq!(target.current().as_deref(), Some("2.0"));
    assert_eq!(
        fs::read_to_string(target.layout().shared_dir().join("uploads/keep.me")).unwrap(),
        "data"
    );
    let journal = Journal::load(target.root(), APP).unwrap();
    let history: Vec<&str> = journal
        .history
        .iter()
        .map(|d| d.version.version.as_str())
        .collect();
    assert_eq!(history, ["4.0", "2.0"]);
    assert_eq!(journal.bad, [v("5.0")]);

    let again = cleanup(target.root(), APP, 5).unwrap();
    assert!(again.removed.is_empty());
    assert_eq!(
        cleanup(target.root(), "other", 1).unwrap(),
        Default::default()
    );
}
