//! Running out of resources: a target's disk full while it stages, the server's disk full
//! while a release is uploaded, the database locked by another process. Each fails with a
//! clear message and leaves what was there whole.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::deployments::{current, release, setup, site, start_agent_at};
use crate::harness::{noise, Server};

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped: a filesystem that
/// fills up.
pub(crate) struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts one, or says why it cannot (it needs root; CI runs as root and sets
    /// `FERRY_TEST_REQUIRE_ROOT`, so there it never skips).
    pub(crate) fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        fs::create_dir_all(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()
            .filter(|out| out.status.success());
        if mounted.is_none() {
            assert!(
                std::env::var_os("FERRY_TEST_REQUIRE_ROOT").is_none(),
                "FERRY_TEST_REQUIRE_ROOT is set, but a tmpfs could not be mounted on {}",
                dir.display()
            );
            eprintln!("skipped: filling a disk needs root to mount a small tmpfs");
            return None;
        }
        Some(SmallDisk {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).output();
    }
}

/// Every half-made thing below `dir`: a `.partial` directory, or a file in a `tmp`
/// directory.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let partial = entry.file_name().to_string_lossy().contains(".partial");
            if partial || (!is_dir && dir.ends_with("tmp")) {
                found.push(path.clone());
            }
            if is_dir {
                todo.push(path);
            }
        }
    }
    found
}

#[test]
fn a_target_whose_disk_fills_while_staging_fails_cleanly_and_keeps_serving() {
    // A target that kept asking again would time out after this, not say why.
    let server = Server::start_with(&["--deploy-timeout", "2m"]);
    let root = server.dir.path().join("target-dev-1");
    let Some(_disk) = SmallDisk::mount(&root, "6m") else {
        return;
    };
    setup(&server);
    let agent = start_agent_at(&server, "dev", "dev-1", &root);
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();

    // 2.0.0 holds more than the target's disk has room for.
    let big = site(server.dir.path(), "2.0.0", "");
    fs::write(big.join("video.bin"), noise(8 << 20, 3)).unwrap();
    crate::deployments::release_from(&server, "2.0.0", &big);
    let failed = server
        .admin(&["deploy", "web", "2.0.0", "--to", "dev", "--wait", "--json"])
        .json();
    assert_eq!(failed["status"], "failed", "{failed}");
    let said = failed.to_string();
    assert!(said.contains("disk") && said.contains("full"), "{said}");
    assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
    assert_eq!(
        fs::read_to_string(agent.root.join("apps/web/current/index.html")).unwrap(),
        "<h1>1.0.0</h1>\n"
    );
    assert!(!agent.root.join("apps/web/releases/2.0.0").exists());
    assert_eq!(leftovers(&agent.root.join("apps")), Vec::<PathBuf>::new());
    assert_eq!(
        leftovers(&agent.root.join(".ferry/cache")),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn a_server_whose_disk_fills_during_an_upload_refuses_the_release_and_stores_nothing_half() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    let Some(_disk) = SmallDisk::mount(&blobs, "4m") else {
        return;
    };
    let url = format!("file://{}", blobs.display());
    let server = Server::start_in_with(dir, &["--blobs", &url]);
    setup(&server);
    let big = site(server.dir.path(), "1.0.0", "");
    fs::write(big.join("video.bin"), noise(8 << 20, 4)).unwrap();
    let refused = server.admin(&[
        "release",
        "create",
        "web",
        "1.0.0",
        "--from",
        big.to_str().unwrap(),
    ]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(
        refused.stderr.contains("disk") && refused.stderr.contains("full"),
        "{refused:?}"
    );
    server
        .admin(&["release", "show", "web", "1.0.0"])
        .fails(1, "no release");
    assert_eq!(leftovers(&blobs), Vec::<PathBuf>::new());

    // The server still works, and a release that fits is made.
    release(&server, "1.0.1", "");
    server.admin(&["audit", "verify"]).success();
}

#[test]
fn a_database_locked_by_another_process_gives_a_clear_error_and_loses_nothing() {
    if crate::harness::on_postgres() {
        return; // SQLite's file lock; PostgreSQL's locks are per row.
    }
    let server = Server::start();
    setup(&server);
    let database = server.data_dir().join("ferry.db");
    // Another process holds the database's write lock for a while.
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked',flush=True)\n\
             time.sleep(float(sys.argv[2]))\n\
             c.execute('ROLLBACK')",
        )
        .arg(&database)
        // Longer than the store waits for a lock (30 s).
        .arg("45")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let refused = server.admin(&["team", "create", "blocked"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    // The store waited for the lock, then gave up: the log names the lock.
    assert!(refused.stderr.contains("database"), "{refused:?}");
    holder.kill().unwrap();
    holder.wait().unwrap();

    // Nothing half-made: the refused change is absent, the next one goes through, the
    // trail verifies.
    let teams = server.admin(&["team", "list", "--json"]).success().json();
    assert!(!teams.to_string().contains("blocked"), "{teams}");
    server.admin(&["team", "create", "later"]).success();
    server.admin(&["audit", "verify"]).success();
}

#[test]
fn the_doctor_says_when_a_targets_disk_runs_full() {
    let server = Server::start();
    let root = server.dir.path().join("target-dev-1");
    let Some(_disk) = SmallDisk::mount(&root, "64m") else {
        return;
    };
    let _agent = start_agent_at(&server, "dev", "dev-1", &root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let said = loop {
        let run = server.admin(&["doctor"]);
        if run.stdout.contains("problem  disk") {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "{run:#?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(said.code, 1, "{said:#?}");
    assert!(
        said.stdout.contains("dev-1 (dev) has ") && said.stdout.contains("free on its root's disk"),
        "{said:#?}"
    );
    assert!(
        said.stdout.contains("fix: free space on dev-1"),
        "{said:#?}"
    );
}
