//! Hand edits on a target: releases share unchanged files as hard links (with each other and
//! with the cache), so a file written in place changes every release holding it. Release
//! trees are read-only, an inode that changed is never linked again, and a release is
//! checked (and repaired) before it is switched to.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ferry_agent::{verify_release, AgentError, DeployOutcome, StepKind};
use ferry_cas::hash::ContentHash;

use crate::fixture::*;

/// A release whose `index.html` and `css/site.css` are the same in every version.
fn site(version: &str) -> Built {
    build(&[
        file("index.html", "<h1>shop</h1>\n"),
        dir("css", 0o755),
        file("css/site.css", "body { color: teal }\n"),
        file("version.txt", version),
    ])
}

/// Regression: `echo x >> current/index.html` on a target changed the same file in the
/// older releases and in the agent's cache (one inode), so a rollback "restored" the edited
/// file and later releases were linked from it.
#[test]
fn a_file_edited_through_current_is_repaired_before_a_rollback_switches_to_it() {
    let target = Target::new();
    let (v1, v2, v3) = (site("1.0"), site("2.0"), site("3.0"));
    target.cache(&v1);
    target.cache(&v2);
    target.deploy_ok("1.0", &v1.manifest);
    target.deploy_ok("2.0", &v2.manifest);
    assert_eq!(
        target.inode("1.0", "index.html"),
        target.inode("2.0", "index.html")
    );
    let current = target.layout().current_link().join("index.html");
    let mode = fs::metadata(&current).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444, "release files are read-only");

    // Someone on the target forces the edit: chmod u+w, append, chmod back.
    write_over(&current, "<h1>shop</h1>\nx\n");
    // One inode: 1.0's copy shows the edit too, as does the cache's blob.
    let edited = fs::read_to_string(target.release_dir("1.0").join("index.html")).unwrap();
    assert_eq!(edited, "<h1>shop</h1>\nx\n");

    // The rollback checks 1.0 first: the edited file's content is not anywhere on the
    // target any more (the corrupt blob is moved aside), so it asks for it ...
    let error = target.rollback("1.0", &v1.manifest).unwrap_err();
    assert!(
        matches!(&error, AgentError::Missing { path, .. } if path == "index.html"),
        "{error}"
    );
    assert_eq!(target.current().as_deref(), Some("2.0"), "nothing switched");
    // ... and once it is fetched again, repairs 1.0 and switches to it, naming the file.
    target.cache(&v1);
    let report = target.rollback("1.0", &v1.manifest).unwrap();
    assert_eq!(report.repaired, ["index.html"]);
    let warning = report.warning("1.0").unwrap();
    assert!(
        warning.contains("changed on this target since it was staged")
            && warning.contains("index.html"),
        "{warning}"
    );
    assert_eq!(target.current().as_deref(), Some("1.0"));
    assert!(verify_release(target.root(), APP, &v("1.0"), &v1.manifest).is_empty());
    assert_eq!(
        fs::read_to_string(target.release_dir("1.0").join("index.html")).unwrap(),
        "<h1>shop</h1>\n"
    );
    // The edited inode stays with 2.0 alone; the cache holds the right content again.
    assert_ne!(
        target.inode("1.0", "index.html"),
        target.inode("2.0", "index.html")
    );
    let hash = ContentHash::of(b"<h1>shop</h1>\n");
    assert_eq!(
        target.cache.check(&hash).unwrap(),
        ferry_cas::blobs::BlobHealth::Intact
    );

    // The next release takes the repaired file, never the edited one.
    target.cache(&v3);
    let report = target.deploy_ok("3.0", &v3.manifest);
    assert!(report.repaired.is_empty());
    assert!(verify_release(target.root(), APP, &v("3.0"), &v3.manifest).is_empty());
    assert_eq!(
        target.inode("3.0", "index.html"),
        target.inode("1.0", "index.html")
    );
    // A rollback to a release nobody touched is only a check and a switch.
    let report = target.rollback("1.0", &v1.manifest).unwrap();
    assert!(report.reused, "{report:?}");
}

/// A file written back to its exact content (or `chmod`ed there and back) looks right but
/// its inode changed behind the agent's back: staging copies it instead of linking it, and
/// the check before a switch writes it again.
#[test]
fn a_file_touched_on_the_target_is_never_linked_again() {
    let target = Target::new();
    let (v1, v2, v3) = (site("1.0"), site("2.0"), site("3.0"));
    for built in [&v1, &v2, &v3] {
        target.cache(built);
    }
    target.deploy_ok("1.0", &v1.manifest);
    target.deploy_ok("2.0", &v2.manifest);
    let css = target.layout().current_link().join("css/site.css");
    write_over(&css, "body { color: teal }\n");

    let report = target.deploy_ok("3.0", &v3.manifest);
    assert!(report.repaired.is_empty());
    assert_ne!(
        target.inode("3.0", "css/site.css"),
        target.inode("2.0", "css/site.css")
    );
    assert_eq!(
        target.inode("3.0", "index.html"),
        target.inode("2.0", "index.html")
    );
    assert!(verify_release(target.root(), APP, &v("3.0"), &v3.manifest).is_empty());

    // 1.0 shares the touched inode: going back writes a fresh copy, nothing to report.
    let report = target.rollback("1.0", &v1.manifest).unwrap();
    assert!(report.repaired.is_empty() && !report.reused, "{report:?}");
    assert_eq!(report.recreated, 1);
    assert_ne!(
        target.inode("1.0", "css/site.css"),
        target.inode("2.0", "css/site.css")
    );
    assert!(report.warning("1.0").is_none());
}

/// A release staged ahead of its approval and changed on the target while it waited is
/// repaired at the switch, which says so.
#[test]
fn a_release_changed_while_it_waited_for_approval_is_repaired_at_the_switch() {
    let target = Target::new();
    let (v1, v2) = (site("1.0"), site("2.0"));
    target.cache(&v1);
    target.cache(&v2);
    target.deploy_ok("1.0", &v1.manifest);
    target.stage_ahead("2.0", &v2.manifest).unwrap();
    let staged = target.release_dir("2.0");
    write_over(&staged.join("version.txt"), "9.9");
    in_writable_dir(&staged, || {
        fs::write(staged.join("backdoor.php"), "<?php").unwrap()
    });

    // The edited file was 2.0's only copy, shared with the cache's blob: the switch waits
    // for the content to be fetched again ...
    let (outcome, _) = target.deploy("2.0", &v2.manifest);
    assert!(
        matches!(&outcome, DeployOutcome::Failed { reason, .. } if reason.contains("version.txt")),
        "{outcome:?}"
    );
    assert_eq!(target.current().as_deref(), Some("1.0"));
    // ... then repairs the release and switches to it.
    target.cache(&v2);
    let (outcome, steps) = target.deploy("2.0", &v2.manifest);
    let DeployOutcome::Succeeded { report } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(report.repaired, ["backdoor.php", "version.txt"]);
    let staged_step = steps.iter().find(|s| s.kind == StepKind::Staged).unwrap();
    assert!(
        staged_step.detail.contains("repaired") && staged_step.detail.contains("backdoor.php"),
        "{steps:?}"
    );
    assert!(verify_release(target.root(), APP, &v("2.0"), &v2.manifest).is_empty());
    assert_eq!(
        fs::read_to_string(target.layout().current_link().join("version.txt")).unwrap(),
        "2.0"
    );
    // 1.0 never shared the edited file: it is untouched.
    assert!(verify_release(target.root(), APP, &v("1.0"), &v1.manifest).is_empty());
}

/// A release staged before releases were read-only (writable, no stat index of this
/// format) is rebuilt read-only when it is switched to again, without a warning: nothing in
/// it differs from the release.
#[test]
fn a_release_staged_writable_by_an_older_agent_is_rebuilt_without_a_warning() {
    let target = Target::new();
    let (v1, v2) = (site("1.0"), site("2.0"));
    target.cache(&v1);
    target.cache(&v2);
    target.deploy_ok("1.0", &v1.manifest);
    target.deploy_ok("2.0", &v2.manifest);
    let old = target.release_dir("1.0");
    for path in ["index.html", "css/site.css", "version.txt", "css", ""] {
        let path = old.join(path);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o200)).unwrap();
    }
    fs::remove_file(target.root().join(".ferry/index/shop/1.0.json")).unwrap();
    assert!(verify_release(target.root(), APP, &v("1.0"), &v1.manifest).is_empty());

    let report = target.rollback("1.0", &v1.manifest).unwrap();
    assert!(report.repaired.is_empty(), "{report:?}");
    assert_eq!(report.recreated, 4, "{report:?}");
    assert!(report.warning("1.0").is_none());
    let mode = |path: &str| fs::metadata(old.join(path)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("index.html"), mode("css")), (0o444, 0o555));
    // Rebuilt with a fresh stat index: the next check trusts it without reading it.
    assert!(target.rollback("1.0", &v1.manifest).unwrap().reused);
}
