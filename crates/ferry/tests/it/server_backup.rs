//! `ferry server backup` and `ferry server restore`: a backup taken while the server takes
//! writes restores into a new data directory as a consistent, verified installation, and a
//! damaged backup, the wrong audit key or a data directory in use restore nothing.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

use crate::deployments::{release, setup};
use crate::harness::{client, on_postgres, Run, Server, FERRY};

/// `ferry server backup --data DATA --out OUT`.
fn backup(data: &Path, out: &Path) -> Run {
    Run::of(
        Command::new(FERRY)
            .args(["server", "backup", "--data"])
            .arg(data)
            .arg("--out")
            .arg(out),
    )
}

/// `ferry server restore FILE --data DATA [--audit-key KEY]`.
/// `ferry server restore FILE --data DATA`, with the audit key and the secret key given.
fn restore(file: &Path, data: &Path, key: Option<&Path>, secret_key: Option<&Path>) -> Run {
    let mut command = Command::new(FERRY);
    command
        .args(["server", "restore"])
        .arg(file)
        .arg("--data")
        .arg(data);
    if let Some(key) = key {
        command.arg("--audit-key").arg(key);
    }
    if let Some(key) = secret_key {
        command.arg("--secret-key").arg(key);
    }
    Run::of(&mut command)
}

#[test]
fn a_backup_taken_under_writes_restores_as_a_verified_installation() {
    if on_postgres() {
        // A server on PostgreSQL is backed up with pg_dump: there is no ferry.db to copy.
        return;
    }
    let server = Server::start();
    setup(&server);
    release(&server, "1.0.0", "");
    release(&server, "1.0.1", "");
    let data = server.data_dir();
    let key = data.join("audit-key");
    let secret_key = data.join("secret-key");

    // Writes go on while the backup is taken: teams created one after the other.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (writing, url, token) = (
            writing.clone(),
            server.url.clone(),
            server.admin_token.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0;
            while writing.load(Ordering::Relaxed) {
                n += 1;
                client(&url, &token, &["team", "create", &format!("load-{n}")]).success();
            }
            n
        })
    };
    let work = tempfile::tempdir().unwrap();
    let backup_file = work.path().join("ferry.backup");
    let taken = backup(&data, &backup_file).success();
    writing.store(false, Ordering::Relaxed);
    let teams_created = writer.join().unwrap();
    assert!(teams_created > 0);
    assert!(taken.stdout.contains("audit events, verified"), "{taken:?}");
    assert_eq!(
        crate::harness::mode(&backup_file),
        0o600,
        "the backup is its owner's only"
    );
    // Never over an existing file.
    backup(&data, &backup_file).fails(1, "exists already");

    let restored_dir = work.path().join("restored");
    // The secret key is never in a backup: without it, nothing is restored.
    restore(&backup_file, &restored_dir, Some(&key), None).fails(
        1,
        "give the installation's secret key with --secret-key FILE",
    );
    assert!(!restored_dir.join("ferry.db").exists());
    let restored = restore(&backup_file, &restored_dir, Some(&key), Some(&secret_key)).success();
    assert!(
        restored.stdout.contains("audit events (verified)"),
        "{restored:?}"
    );

    // The restored installation is the original as of one moment: its trail is the start of
    // the original's, and it verifies; its releases and their content are whole.
    let original_trail = server
        .admin(&["audit", "--json", "--limit", "100000"])
        .success()
        .json();
    let back = Server::start_on_data(
        &restored_dir,
        None,
        &[
            "--audit-key",
            key.to_str().unwrap(),
            "--secret-key",
            secret_key.to_str().unwrap(),
        ],
        &[],
    );
    let as_admin = |args: &[&str]| back.ferry(&server.admin_token, args);
    as_admin(&["audit", "verify"]).success();
    let restored_trail = as_admin(&["audit", "--json", "--limit", "100000"])
        .success()
        .json();
    let (original, restored) = (events(&original_trail), events(&restored_trail));
    assert!(!restored.is_empty() && restored.len() <= original.len());
    for (seq, hash) in &restored {
        assert_eq!(
            original.get(seq),
            Some(hash),
            "event {seq}: the trail up to the backup"
        );
    }
    assert_eq!(
        as_admin(&["release", "list", "web", "--json"])
            .success()
            .json(),
        server
            .admin(&["release", "list", "web", "--json"])
            .success()
            .json()
    );
    let fsck = as_admin(&["server", "fsck", "--json"]).success().json();
    assert_eq!(fsck["ok"], true, "{fsck}");

    // Into a data directory that holds a database: refused.
    restore(&backup_file, &restored_dir, Some(&key), Some(&secret_key))
        .fails(1, "holds a database already");
    // With another installation's key: nothing restored.
    let other_key = work.path().join("other-key");
    std::fs::write(&other_key, format!("{}\n", "ab".repeat(32))).unwrap();
    let elsewhere = work.path().join("elsewhere");
    restore(
        &backup_file,
        &elsewhere,
        Some(&other_key),
        Some(&secret_key),
    )
    .fails(1, "does not verify with this audit key");
    assert!(!elsewhere.join("ferry.db").exists());
    // Without any key: refused before anything is made.
    let keyless = work.path().join("keyless");
    restore(&backup_file, &keyless, None, Some(&secret_key))
        .fails(1, "give the installation's key with --audit-key FILE");
    assert!(!keyless.exists());
    // A damaged backup, wherever the damage lies (the database, a blob, the archive's
    // padding no entry reads, the checksum): nothing restored.
    let bytes = std::fs::read(&backup_file).unwrap();
    let n = bytes.len();
    for at in [n / 4, n / 2, 3 * n / 4, n - 5, n - 1] {
        let mut damaged_bytes = bytes.clone();
        damaged_bytes[at] ^= 0xff;
        let damaged = work.path().join("damaged.backup");
        std::fs::write(&damaged, damaged_bytes).unwrap();
        let run = restore(&damaged, &elsewhere, Some(&key), Some(&secret_key));
        assert_eq!(run.code, 1, "byte {at} of {n}: {run:?}");
        assert!(!elsewhere.join("ferry.db").exists());
    }
}

/// The events of `ferry audit --json`: each one's hash by its sequence number.
fn events(trail: &Value) -> std::collections::BTreeMap<i64, String> {
    trail
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["seq"].as_i64().unwrap(),
                event["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
