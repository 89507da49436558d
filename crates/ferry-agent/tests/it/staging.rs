//! Staging: what is linked, what is copied, and whether the result is exact.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use ferry_agent::{blobs_needed, verify_release, DeployOutcome};
use ferry_cas::ingest::Limits;
use ferry_cas::manifest::EntryKind;
use ferry_cas::scan::scan_tree;

use crate::fixture::*;

fn mode_of(target: &Target, version: &str, path: &str) -> u32 {
    fs::symlink_metadata(target.release_dir(version).join(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn unchanged_files_are_linked_from_the_previous_release_and_only_changed_ones_copied() {
    let target = Target::new();
    let v1 = target.release(&[
        dir("bin", 0o755),
        file_mode("bin/run", "#!/bin/sh\necho v1\n", 0o755),
        file("index.html", "<h1>hi</h1>"),
        file("style.css", "body {}"),
        file_mode("tool.sh", "old", 0o755),
        file("big.bin", big_content(1_500_000, 1)),
        file("data.bin", big_content(1_300_000, 2)),
        file_mode("secret.key", "k", 0o600),
    ]);
    let v2 = target.release(&[
        dir("bin", 0o755),
        file_mode("bin/run", "#!/bin/sh\necho v1\n", 0o755),
        file("index.html", "<h1>hi</h1>"),
        file("style.css", "body { color: red }"),
        file_mode("tool.sh", "new", 0o755),
        file("big.bin", big_content(1_500_000, 1)),
        file("data.bin", big_content(1_300_000, 3)),
        file_mode("secret.key", "k", 0o640),
    ]);
    target.deploy_ok("1.0", &v1);
    let report = target.deploy_ok("2.0", &v2);

    for unchanged in ["bin/run", "index.html", "big.bin"] {
        assert_eq!(
            target.inode("1.0", unchanged),
            target.inode("2.0", unchanged),
            "{unchanged} should be a hard link to the previous release"
        );
    }
    for changed in ["style.css", "tool.sh", "data.bin", "secret.key"] {
        assert_ne!(
            target.inode("1.0", changed),
            target.inode("2.0", changed),
            "{changed} changed and must not share the previous release's inode"
        );
    }
    // A changed single-blob file whose mode matches the cache's blob is linked from the
    // cache; the others (other mode, chunked) are written.
    let style = ferry_cas::hash::ContentHash::of(b"body { color: red }");
    assert_eq!(
        target.inode("2.0", "style.css"),
        fs::metadata(target.cache.path_of(&style)).unwrap().ino()
    );
    assert_eq!((report.files_linked, report.files_copied), (4, 3));
    assert_eq!(report.bytes_copied, 3 + 1_300_000 + 1);
    // A mode change never reaches the previous release through a shared inode; both are
    // read-only.
    assert_eq!(mode_of(&target, "1.0", "secret.key"), 0o400);
    assert_eq!(mode_of(&target, "2.0", "secret.key"), 0o440);
    assert!(verify_release(target.root(), APP, &v("1.0"), &v1).is_empty());
    assert!(verify_release(target.root(), APP, &v("2.0"), &v2).is_empty());
}

#[test]
fn a_staged_release_is_exactly_its_manifest() {
    let target = Target::new();
    let items = [
        dir("app", 0o750),
        dir("app/bin", 0o755),
        file_mode("app/bin/run", "#!/bin/sh\n", 0o700),
        file("app/big.bin", big_content(2_500_000, 7)),
        file("app/empty", ""),
        file_mode("app/setgid", "g", 0o2755),
        dir("empty-dir", 0o700),
        dir("ro", 0o555),
        file_mode("ro/file", "read only", 0o444),
        link("start", "app/bin/run"),
        link("docs", "app"),
        file_mode("private", "p", 0o600),
    ];
    let manifest = target.release(&items);
    assert!(manifest
        .entries
        .iter()
        .any(|e| !e.blobs().is_empty() && e.blobs().len() > 1));
    let report = target.deploy_ok("1.0", &manifest);
    assert_eq!(
        report.files_linked + report.files_copied,
        manifest.n_files()
    );
    // The same tree, read-only: the manifest's modes without write bits.
    let scanned = scan_tree(&target.release_dir("1.0"), &Limits::default()).unwrap();
    let mut read_only = manifest.clone();
    for entry in &mut read_only.entries {
        if let EntryKind::Dir { mode } | EntryKind::File { mode, .. } = &mut entry.kind {
            *mode &= !0o222;
        }
    }
    assert_eq!(scanned.manifest, read_only);
    assert_eq!(mode_of(&target, "1.0", "app/setgid"), 0o2555);
    assert_eq!(mode_of(&target, "1.0", "app/bin/run"), 0o500);
    assert_eq!(mode_of(&target, "1.0", "empty-dir"), 0o500);
    assert_eq!(
        fs::read(target.release_dir("1.0").join("app/big.bin")).unwrap(),
        big_content(2_500_000, 7)
    );
    assert!(verify_release(target.root(), APP, &v("1.0"), &manifest).is_empty());
}

#[test]
fn missing_blobs_are_named_and_only_those_not_reusable_are_needed() {
    let target = Target::new();
    let v1_items = vec![file("a.txt", "a"), file("b.txt", "b")];
    let v1 = target.release(&v1_items);
    target.deploy_ok("1.0", &v1);
    let mut v2_items = v1_items.clone();
    v2_items.push(file("new.txt", "brand new"));
    let v2 = build(&v2_items);
    let layout = target.layout();
    let needed = blobs_needed(
        &layout,
        &v("2.0"),
        &v2.manifest,
        Some(&v("1.0")),
        &target.cache,
    );
    let new_hash = ferry_cas::hash::ContentHash::of(b"brand new");
    assert_eq!(
        needed.iter().map(|c| c.hash).collect::<Vec<_>>(),
        [new_hash]
    );

    let (outcome, _) = target.deploy("2.0", &v2.manifest);
    match outcome {
        DeployOutcome::Failed { reason, .. } => {
            assert!(
                reason.contains("new.txt") && reason.contains("not in the cache"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(target.current().as_deref(), Some("1.0"));
    assert!(!layout.has_release(&v("2.0")));
    target.cache(&v2);
    assert!(blobs_needed(
        &layout,
        &v("2.0"),
        &v2.manifest,
        Some(&v("1.0")),
        &target.cache
    )
    .is_empty());
    target.deploy_ok("2.0", &v2.manifest);
    assert!(blobs_needed(
        &layout,
        &v("2.0"),
        &v2.manifest,
        Some(&v("1.0")),
        &target.cache
    )
    .is_empty());
}

#[test]
fn a_corrupt_cache_blob_is_quarantined_and_reported_missing() {
    let target = Target::new();
    let manifest = target.release(&[file_mode("tool.sh", "#!/bin/sh\n", 0o755)]);
    let hash = ferry_cas::hash::ContentHash::of(b"#!/bin/sh\n");
    write_over(&target.cache.path_of(&hash), b"#!/bin/bash");
    let (outcome, _) = target.deploy("1.0", &manifest);
    assert!(
        matches!(&outcome, DeployOutcome::Failed { reason, .. } if reason.contains("not in the cache")),
        "{outcome:?}"
    );
    assert!(!target.cache.contains(&hash));
    target.release(&[file_mode("tool.sh", "#!/bin/sh\n", 0o755)]);
    target.deploy_ok("1.0", &manifest);
}

#[test]
fn redeploying_reuses_an_intact_release_and_replaces_a_changed_one() {
    let target = Target::new();
    let manifest = target.release(&[
        dir("d", 0o755),
        file("d/a", "a"),
        file("index.html", "hello"),
        file_mode("tool.sh", "#!/bin/sh\n", 0o755),
    ]);
    target.deploy_ok("1.0", &manifest);
    let again = target.deploy_ok("1.0", &manifest);
    assert!(again.reused);

    let dir = target.release_dir("1.0");
    write_over(&dir.join("tool.sh"), "#!/bin/sh\nrm -rf /\n");
    in_writable_dir(&dir.join("d"), || fs::remove_file(dir.join("d/a")).unwrap());
    in_writable_dir(&dir, || fs::write(dir.join("extra.txt"), "x").unwrap());
    assert_eq!(
        verify_release(target.root(), APP, &v("1.0"), &manifest),
        ["d/a", "extra.txt", "tool.sh"]
    );
    let repaired = target.deploy_ok("1.0", &manifest);
    assert_eq!(repaired.repaired, ["d/a", "extra.txt", "tool.sh"]);
    assert!(!repaired.reused);
    assert!(verify_release(target.root(), APP, &v("1.0"), &manifest).is_empty());
    assert_eq!(target.current().as_deref(), Some("1.0"));
    let leftovers: Vec<_> = fs::read_dir(target.layout().releases_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["1.0"]);
    assert_eq!(
        verify_release(target.root(), APP, &v("9.9"), &manifest),
        ["."]
    );
}

/// The stat index lets staging trust the previous release's unchanged files without
/// reading them, but a file edited in place since (new mtime) is never trusted.
#[test]
fn a_file_edited_in_place_in_the_previous_release_is_not_trusted() {
    let target = Target::new();
    let v1 = target.release(&[file("index.html", "<h1>hi</h1>"), file("app.js", "1")]);
    target.deploy_ok("1.0", &v1);
    assert!(target.root().join(".ferry/index/shop/1.0.json").is_file());

    std::thread::sleep(std::time::Duration::from_millis(20));
    let edited = target.release_dir("1.0").join("index.html");
    write_over(&edited, "<h1>hacked</h1>");
    let v2_items = [file("index.html", "<h1>hi</h1>"), file("app.js", "2")];
    let v2 = target.release(&v2_items);
    // The edit reached the cache's copy too (they share an inode): the deploy refuses the
    // corrupt content and 1.0 keeps serving ...
    let (outcome, _) = target.deploy("2.0", &v2);
    assert!(
        !matches!(outcome, ferry_agent::DeployOutcome::Succeeded { .. }),
        "{outcome:?}"
    );
    assert_eq!(target.current().as_deref(), Some("1.0"));
    // ... until the content is fetched again, which the agent does by itself.
    target.release(&v2_items);
    target.deploy_ok("2.0", &v2);
    let served = std::fs::read_to_string(target.release_dir("2.0").join("index.html")).unwrap();
    assert_eq!(served, "<h1>hi</h1>");
    assert_ne!(
        target.inode("1.0", "index.html"),
        target.inode("2.0", "index.html")
    );
}

/// A blob cached before blobs were read-only (0644) is made read-only the first time a
/// release needs it, and linked like any other.
#[test]
fn a_blob_cached_writable_by_an_older_agent_is_made_read_only_and_linked() {
    let target = Target::new();
    let manifest = target.release(&[file("index.html", "<h1>hi</h1>")]);
    let blob = target
        .cache
        .path_of(&ferry_cas::hash::ContentHash::of(b"<h1>hi</h1>"));
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    let report = target.deploy_ok("1.0", &manifest);
    assert_eq!((report.files_linked, report.files_copied), (1, 0));
    assert_eq!(
        target.inode("1.0", "index.html"),
        fs::metadata(&blob).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(&blob).unwrap().permissions().mode() & 0o7777,
        0o444
    );
}
