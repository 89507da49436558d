use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::Manifest;

use super::index::index_path;
use super::local_store::{self, store_missing};
use super::snapshot::snapshot_at;
use super::*;
use crate::error::AgentResult;
use crate::fsutil::remove_tree;

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed * 2 + 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Ten seconds from now: files written by the test count as settled.
fn later() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
        + 10_000_000_000
}

fn write(path: &Path, content: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Every path under `dir` (symlinks not followed) with what it is: mode and content, or
/// the link's target.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for child in fs::read_dir(dir).unwrap() {
            let path = child.unwrap().path();
            let name = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let what = if metadata.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if metadata.is_dir() {
                format!("dir {mode:o}")
            } else {
                let hash = ferry_cas::hash::ContentHash::of(&fs::read(&path).unwrap());
                format!("file {mode:o} {hash}")
            };
            out.insert(name, what);
            if metadata.is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    shared: std::path::PathBuf,
    index: std::path::PathBuf,
    store: BlobStore,
    paths: Vec<String>,
}

/// `shared/` with uploads (nested, modes, a large file, links in and out, an empty file
/// and directory, a read-only directory) and `db/dump.sql`; `cache` is a backup path that
/// does not exist, and `logs` is not backed up.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("apps/web/shared");
    write(&shared.join("uploads/a.txt"), b"alpha", 0o644);
    write(&shared.join("uploads/run.sh"), b"#!/bin/sh\n", 0o750);
    write(&shared.join("uploads/secret"), b"s", 0o600);
    write(&shared.join("uploads/empty"), b"", 0o644);
    write(
        &shared.join("uploads/big/video.bin"),
        &noise(3 << 20, 1),
        0o644,
    );
    write(&shared.join("uploads/ro/frozen.txt"), b"frozen", 0o444);
    fs::set_permissions(shared.join("uploads/ro"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::create_dir_all(shared.join("uploads/nothing")).unwrap();
    symlink("a.txt", shared.join("uploads/latest")).unwrap();
    symlink("/var/log/app.log", shared.join("uploads/outside")).unwrap();
    write(&shared.join("db/dump.sql"), b"create table t;", 0o640);
    write(&shared.join("db/live.db"), b"not backed up", 0o640);
    write(&shared.join("logs/app.log"), b"log", 0o644);
    let store = BlobStore::open(&dir.path().join("blobs")).unwrap();
    Fixture {
        index: index_path(&dir.path().join("root"), "web"),
        _dir: dir,
        shared,
        store,
        paths: vec!["uploads".into(), "db/dump.sql".into(), "cache".into()],
    }
}

impl Fixture {
    fn back_up(&self) -> (Snapshot, u64) {
        let snapshot = snapshot_at(&self.shared, &self.paths, &self.index, later()).unwrap();
        let new_bytes = store_missing(&self.store, &snapshot.blobs).unwrap();
        (snapshot, new_bytes)
    }

    /// Restores `manifest` into `shared/`: `only` one path, or every backup path.
    fn restore(&self, manifest: &Manifest, only: Option<&str>) -> AgentResult<RestoreReport> {
        restore(&self.shared, manifest, &self.paths, only, &self.store, None)
    }
}

#[test]
fn backup_delete_restore_gives_back_every_byte_mode_and_link() {
    let f = fixture();
    let before = tree(&f.shared);
    let (snapshot, new_bytes) = f.back_up();
    let manifest = &snapshot.manifest;
    let paths: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(
        paths.contains(&"db") && paths.contains(&"db/dump.sql"),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"db/live.db") && !paths.contains(&"logs"),
        "{paths:?}"
    );
    assert_eq!(snapshot.absent, ["cache"]);
    assert_eq!(
        new_bytes,
        manifest.n_bytes(),
        "everything is new the first time"
    );

    remove_tree(&f.shared.join("uploads")).unwrap();
    fs::remove_file(f.shared.join("db/dump.sql")).unwrap();
    fs::write(f.shared.join("logs/app.log"), b"newer log").unwrap();
    fs::create_dir_all(f.shared.join("cache/tmp")).unwrap();
    let report = f.restore(manifest, None).unwrap();
    assert_eq!(report.restored, ["db/dump.sql", "uploads"]);
    assert_eq!(report.removed, ["cache"], "it did not exist when backed up");
    assert_eq!(report.files, 7);

    let mut expected = before;
    expected.insert(
        "logs/app.log".into(),
        tree(&f.shared)["logs/app.log"].clone(),
    );
    assert_eq!(
        tree(&f.shared),
        expected,
        "not backed up: left as it is now"
    );
    let leftovers: Vec<String> = tree(&f.shared)
        .into_keys()
        .filter(|p| p.contains(".ferry-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_restore_over_changed_data_replaces_it_and_one_path_restores_alone() {
    let f = fixture();
    let before = tree(&f.shared);
    let (snapshot, _) = f.back_up();
    fs::set_permissions(
        f.shared.join("uploads/ro"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs::write(f.shared.join("uploads/a.txt"), b"changed").unwrap();
    fs::write(f.shared.join("uploads/added"), b"new").unwrap();
    fs::write(f.shared.join("db/dump.sql"), b"drop table t;").unwrap();

    let report = f
        .restore(&snapshot.manifest, Some("uploads/a.txt"))
        .unwrap();
    assert_eq!(report.restored, ["uploads/a.txt"]);
    assert_eq!(fs::read(f.shared.join("uploads/a.txt")).unwrap(), b"alpha");
    assert!(
        f.shared.join("uploads/added").exists(),
        "other paths untouched"
    );
    assert_eq!(
        fs::read(f.shared.join("db/dump.sql")).unwrap(),
        b"drop table t;"
    );

    f.restore(&snapshot.manifest, None).unwrap();
    assert_eq!(tree(&f.shared), before);

    for (only, reason) in [("logs", "not among the backup's paths"), ("../etc", "'..'")] {
        let error = f
            .restore(&snapshot.manifest, Some(only))
            .unwrap_err()
            .to_string();
        assert!(error.contains(reason), "{only}: {error}");
    }
    assert_eq!(tree(&f.shared), before, "a refusal changes nothing");
}

#[test]
fn a_restore_missing_a_blob_changes_nothing() {
    let f = fixture();
    let (snapshot, _) = f.back_up();
    fs::write(f.shared.join("uploads/a.txt"), b"changed").unwrap();
    let now = tree(&f.shared);
    let hash = ferry_cas::hash::ContentHash::of(b"#!/bin/sh\n");
    f.store.remove(&hash).unwrap();
    let error = f.restore(&snapshot.manifest, None).unwrap_err();
    assert!(error.to_string().contains(&hash.to_hex()), "{error}");
    let after: BTreeMap<String, String> = tree(&f.shared)
        .into_iter()
        .filter(|(p, _)| !p.contains(".ferry-restore"))
        .collect();
    assert_eq!(after, now);
}

#[test]
fn a_second_backup_reads_and_stores_only_what_changed() {
    let f = fixture();
    for i in 0..100 {
        write(
            &f.shared.join(format!("uploads/many/{i:03}.dat")),
            &noise(20_000, 100 + i),
            0o644,
        );
    }
    write(
        &f.shared.join("uploads/big/db.bin"),
        &noise(8 << 20, 9),
        0o644,
    );
    let (first, _) = f.back_up();
    let total = first.manifest.n_bytes();

    let (unchanged, new_bytes) = f.back_up();
    assert_eq!(unchanged.files_read, 0, "the index vouches for every file");
    assert_eq!(new_bytes, 0);
    assert_eq!(unchanged.manifest, first.manifest);

    // About 1 %: one small file rewritten, 64 KiB inside the large one.
    write(
        &f.shared.join("uploads/many/042.dat"),
        &noise(20_000, 7),
        0o644,
    );
    let mut big = fs::read(f.shared.join("uploads/big/db.bin")).unwrap();
    big[4 << 20..(4 << 20) + 65_536].copy_from_slice(&noise(65_536, 3));
    fs::write(f.shared.join("uploads/big/db.bin"), &big).unwrap();
    let (changed, new_bytes) = f.back_up();
    assert_eq!(changed.files_read, 2);
    let changed_bytes = 20_000 + 65_536;
    assert!(
        new_bytes >= changed_bytes && new_bytes < 2 * (1 << 20),
        "{new_bytes} new bytes of {total} for {changed_bytes} changed"
    );
}

#[test]
fn a_file_changed_after_the_snapshot_is_refused_by_name() {
    let f = fixture();
    let snapshot = snapshot_at(&f.shared, &f.paths, &f.index, later()).unwrap();
    fs::write(f.shared.join("uploads/a.txt"), b"ALPHA").unwrap();
    let error = store_missing(&f.store, &snapshot.blobs)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("uploads/a.txt") && error.contains("changed while it was backed up"),
        "{error}"
    );
}

#[test]
fn a_backup_path_below_a_symlink_is_refused() {
    let f = fixture();
    symlink("/etc", f.shared.join("etc")).unwrap();
    let error = snapshot_at(&f.shared, &["etc/passwd".into()], &f.index, later())
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a directory in shared/"), "{error}");
}

#[test]
fn outermost_paths_cover_the_inner_ones() {
    let paths: Vec<String> = ["b/c", "a", "b", "a/x", "ab", "b"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(outermost(&paths), ["a", "ab", "b"]);
}

#[test]
fn blobs_this_process_fetched_move_into_place_and_shared_ones_are_copied() {
    let f = fixture();
    write(&f.shared.join("uploads/copy.txt"), b"alpha", 0o644);
    let before = tree(&f.shared);
    let snapshot = snapshot_at(&f.shared, &f.paths, &f.index, later()).unwrap();
    // As the agent's fetch stores what arrives: checked, unsynced, remembered.
    for (hash, location) in &snapshot.blobs {
        let bytes = local_store::read_location(location, hash).unwrap();
        f.store.put_unsynced(hash, &bytes).unwrap();
    }
    remove_tree(&f.shared.join("uploads")).unwrap();
    fs::remove_file(f.shared.join("db/dump.sql")).unwrap();
    f.restore(&snapshot.manifest, None).unwrap();
    assert_eq!(tree(&f.shared), before);
    let hash = |content: &[u8]| ferry_cas::hash::ContentHash::of(content);
    assert!(
        !f.store.contains(&hash(b"create table t;")),
        "moved out of the cache"
    );
    assert!(
        f.store.contains(&hash(b"alpha")),
        "two files hold it: copied"
    );
}
