//! Backups of application data with a real server and agent: backup, delete the data,
//! restore, byte for byte (modes and symlinks too); a second backup after a small change
//! stores about that much; a failing `pre_backup` stops the backup with its output; only
//! the owning team sees and restores, at the levels it needs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use crate::deployments::{release, setup, start_agent_logged_with};
use crate::harness::{audit_summary, noise, Agent, Server};

/// Every path under `dir` with its mode and content, or its symlink's target.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for child in fs::read_dir(dir).unwrap() {
            let path = child.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let what = if metadata.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if metadata.is_dir() {
                format!("dir {mode:o}")
            } else {
                format!(
                    "file {mode:o} {:?}",
                    blake3::hash(&fs::read(&path).unwrap())
                )
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

const FERRY_TOML: &str = r#"
shared = ["data"]
backup = ["data"]

[hooks]
pre_backup = "printf 'dump of the database\n' > \"$FERRY_SHARED_DIR/data/dump.sql\""
pre_backup_timeout = "1m"
"#;

/// A server, the `shop` team's `web` at 1.0.0 on dev-1 with FERRY_TOML, and its agent.
fn deployed(ferry_toml: &str) -> (Server, Agent) {
    let server = Server::start();
    setup(&server);
    let (agent, _log) = start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "0s"]);
    release(&server, "1.0.0", ferry_toml);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    (server, agent)
}

fn back_up(server: &Server) -> serde_json::Value {
    let created = server
        .admin(&["backup", "create", "web", "--env", "dev", "--json"])
        .success()
        .json();
    created[0].clone()
}

#[test]
fn backup_delete_restore_is_byte_identical_and_a_small_change_stores_little() {
    let (server, agent) = deployed(FERRY_TOML);
    let data = agent.root.join("apps/web/shared/data");
    fs::create_dir_all(data.join("uploads/2026")).unwrap();
    for i in 0..200u64 {
        fs::write(
            data.join(format!("uploads/2026/photo-{i:03}.jpg")),
            noise(25_000, 100 + i),
        )
        .unwrap();
    }
    fs::write(data.join("video.bin"), noise(16 << 20, 7)).unwrap();
    fs::write(data.join("secret.key"), b"private").unwrap();
    fs::set_permissions(data.join("secret.key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(data.join("tool.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(data.join("tool.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    symlink("uploads/2026", data.join("latest")).unwrap();
    symlink("/var/log/web.log", data.join("log")).unwrap();
    fs::set_permissions(data.join("uploads"), fs::Permissions::from_mode(0o750)).unwrap();

    let first = back_up(&server);
    let backed_up = tree(&data);
    assert_eq!(
        fs::read(data.join("dump.sql")).unwrap(),
        b"dump of the database\n",
        "pre_backup ran first"
    );
    assert!(backed_up.contains_key("dump.sql"), "{backed_up:?}");
    assert_eq!(first["files"], 204, "{first}");
    let bytes = first["bytes"].as_u64().unwrap();
    assert!(first["new_bytes"].as_u64().unwrap() >= bytes, "{first}");
    assert_eq!(first["reason"], "on_demand", "{first}");
    assert_eq!(first["version"], "1.0.0", "{first}");

    // 1 % of the files rewritten: about their bytes are new (and the new manifest).
    for i in [42, 142] {
        fs::write(
            data.join(format!("uploads/2026/photo-{i:03}.jpg")),
            noise(25_000, 1000 + i),
        )
        .unwrap();
    }
    let second = back_up(&server);
    let new_bytes = second["new_bytes"].as_u64().unwrap();
    assert!(
        new_bytes >= 50_000 && new_bytes < bytes / 100,
        "{new_bytes} new bytes of {bytes} after rewriting 50,000: {second}"
    );
    // 64 KiB changed inside the 16 MiB file: only the chunks around the change are new
    // (chunks are at most 1 MiB).
    let mut video = fs::read(data.join("video.bin")).unwrap();
    video[8 << 20..(8 << 20) + 65_536].copy_from_slice(&noise(65_536, 11));
    fs::write(data.join("video.bin"), &video).unwrap();
    let third = back_up(&server);
    let new_bytes = third["new_bytes"].as_u64().unwrap();
    assert!(
        (65_536..65_536 + (2 << 20)).contains(&new_bytes),
        "{new_bytes} new bytes after changing 65,536 inside one file: {third}"
    );
    let shown = server
        .admin(&["backup", "show", &second["id"].to_string(), "--json"])
        .success()
        .json();
    assert_eq!(shown["new_bytes"], second["new_bytes"], "{shown}");

    // The first backup, taken home: the same tree (symlinks pointing anywhere as links).
    let home = server.dir.path().join("backup-home");
    server
        .admin(&[
            "backup",
            "export",
            &first["id"].to_string(),
            home.to_str().unwrap(),
        ])
        .success();
    assert_eq!(tree(&home.join("data")), backed_up);

    // The data is lost; the first backup brings it back exactly.
    fs::remove_dir_all(&data).unwrap();
    let restored = server
        .admin(&["backup", "restore", &first["id"].to_string(), "--json"])
        .success()
        .json();
    assert_eq!(restored["state"], "succeeded", "{restored}");
    assert_eq!(tree(&data), backed_up);

    // One path alone; the rest stays as it is.
    fs::write(data.join("secret.key"), b"overwritten").unwrap();
    fs::write(data.join("tool.sh"), b"changed too").unwrap();
    server
        .admin(&[
            "backup",
            "restore",
            &first["id"].to_string(),
            "--path",
            "data/secret.key",
        ])
        .success();
    assert_eq!(fs::read(data.join("secret.key")).unwrap(), b"private");
    assert_eq!(mode(&data.join("secret.key")), 0o600);
    assert_eq!(fs::read(data.join("tool.sh")).unwrap(), b"changed too");

    // Each restore kept the data it replaced first.
    let list = server
        .admin(&["backup", "list", "web", "--json"])
        .success()
        .json();
    let reasons: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "before_restore",
            "before_restore",
            "on_demand",
            "on_demand",
            "on_demand"
        ],
        "{list}"
    );
    let audit = audit_summary(&server, 0);
    let count = |action: &str| audit.iter().filter(|e| e.contains(action)).count();
    assert_eq!(count("admin backup.request target/dev-1"), 3, "{audit:?}");
    assert_eq!(count("backup.create backup/"), 5, "{audit:?}");
    assert_eq!(
        count(&format!("admin backup.restore backup/{}", first["id"])),
        2,
        "{audit:?}"
    );
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_failing_pre_backup_stops_the_backup_with_its_output() {
    let (server, agent) = deployed(
        "shared = [\"data\"]\nbackup = [\"data\"]\n\n[hooks]\npre_backup = \"echo cannot reach the database >&2; exit 3\"\n",
    );
    fs::create_dir_all(agent.root.join("apps/web/shared/data")).unwrap();
    let failed = server
        .admin(&["backup", "create", "web", "--env", "dev"])
        .fails(1, "cannot reach the database");
    assert!(failed.stderr.contains("exited with status 3"), "{failed:?}");
    let list = server
        .admin(&["backup", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(list, serde_json::json!([]), "no backup was recorded");

    // A release that names no backup paths says so.
    release(&server, "1.0.1", "");
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .success();
    server
        .admin(&["backup", "create", "web", "--env", "dev"])
        .fails(1, "names no backup paths");
}

#[test]
fn only_the_owning_team_sees_and_restores_its_backups() {
    let (server, agent) = deployed(FERRY_TOML);
    fs::create_dir_all(agent.root.join("apps/web/shared/data")).unwrap();
    let backup = back_up(&server);
    let id = backup["id"].to_string();

    let outsider = server.create_user("otto", "developer", &[]);
    let listed = server
        .ferry(&outsider, &["backup", "list", "--json"])
        .success()
        .json();
    assert_eq!(listed, serde_json::json!([]), "{listed}");
    server
        .ferry(&outsider, &["backup", "show", &id])
        .fails(1, &format!("no backup {id}"));
    server
        .ferry(&outsider, &["backup", "restore", &id])
        .fails(1, &format!("no backup {id}"));
    server
        .ferry(&outsider, &["backup", "create", "web", "--env", "dev"])
        .fails(1, "no application named \"web\"");

    // A viewer of the team sees them, and may neither take nor restore one.
    let viewer = server.create_user("vera", "viewer", &["shop"]);
    let listed = server
        .ferry(&viewer, &["backup", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(listed[0]["id"], backup["id"], "{listed}");
    let before = crate::harness::audit_len(&server);
    server
        .ferry(&viewer, &["backup", "restore", &id])
        .fails(3, "taking and restoring backups needs deploy on \"dev\"");
    server
        .ferry(&viewer, &["backup", "create", "web", "--env", "dev"])
        .fails(3, "taking and restoring backups needs deploy");
    assert_eq!(
        crate::harness::audit_len(&server),
        before,
        "refusals change nothing"
    );
}

/// A restore of a path the backup does not hold, or on a target that is not there or is of
/// another environment, is refused naming what was wrong; so is a backup asked of such a
/// target. Nothing changes: no task, no audit record, the file on the target stays.
#[test]
fn restores_and_backups_name_the_path_or_the_target_that_is_wrong_and_change_nothing() {
    let (server, agent) = deployed(FERRY_TOML);
    let data = agent.root.join("apps/web/shared/data");
    fs::write(data.join("a.txt"), b"kept\n").unwrap();
    let id = back_up(&server)["id"].to_string();
    let _other = crate::deployments::start_agent(&server, "pp", "pp-1");
    // Written after the backup: a restore of it would remove it.
    fs::write(data.join("nosuch"), b"written since\n").unwrap();
    let before = crate::harness::audit_len(&server);

    server
        .admin(&["backup", "restore", &id, "--path", "data/nosuch"])
        .fails(
            3,
            &format!(
                "--path \"data/nosuch\" is not in backup {id}: `ferry backup export {id} DIR` \
                 shows what it holds"
            ),
        );
    server
        .admin(&["backup", "restore", &id, "--target", "pp-1"])
        .fails(
            3,
            &format!("target pp-1 is in pp, while backup {id} is of dev: name a target of dev"),
        );
    server
        .admin(&["backup", "restore", &id, "--target", "nosuch"])
        .fails(
            1,
            "no target \"nosuch\": `ferry target list` shows the targets",
        );
    server
        .admin(&[
            "backup", "create", "web", "--env", "dev", "--target", "pp-1",
        ])
        .fails(
            3,
            "target pp-1 is in pp, while the request is of dev: name a target of dev",
        );
    server
        .admin(&[
            "backup", "create", "web", "--env", "dev", "--target", "nosuch",
        ])
        .fails(
            1,
            "no target \"nosuch\": `ferry target list` shows the targets",
        );

    assert_eq!(
        crate::harness::audit_len(&server),
        before,
        "refusals change nothing"
    );
    assert_eq!(fs::read(data.join("nosuch")).unwrap(), b"written since\n");
    let list = server
        .admin(&["backup", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // What the backup holds is restored, on its own target by name.
    fs::write(data.join("a.txt"), b"changed\n").unwrap();
    server
        .admin(&[
            "backup",
            "restore",
            &id,
            "--path",
            "data/a.txt",
            "--target",
            "dev-1",
        ])
        .success();
    assert_eq!(fs::read(data.join("a.txt")).unwrap(), b"kept\n");
    assert_eq!(fs::read(data.join("nosuch")).unwrap(), b"written since\n");

    // A backup path that did not exist is recorded as absent: restoring it removes it.
    release(
        &server,
        "1.0.1",
        "shared = [\"data\"]\nbackup = [\"data/a.txt\", \"data/gone.db\"]\n",
    );
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .success();
    let id = back_up(&server)["id"].to_string();
    fs::write(data.join("gone.db"), b"written since\n").unwrap();
    server
        .admin(&["backup", "restore", &id, "--path", "data/gone.db"])
        .success();
    assert!(!data.join("gone.db").exists(), "restored as absent");
    server
        .admin(&["backup", "restore", &id, "--path", "data/nosuch"])
        .fails(
            3,
            &format!("--path \"data/nosuch\" is not among the paths of backup {id}"),
        );
}

/// Waits until `ferry backup list web` shows `n` backups; returns them, newest first.
fn wait_for_backups(server: &Server, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let list = server
            .admin(&["backup", "list", "web", "--json"])
            .success()
            .json();
        let list = list.as_array().unwrap().clone();
        if list.len() == n {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} backups: {list:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn the_schedule_backs_up_and_retention_keeps_what_the_policy_says() {
    let server = Server::start_with(&["--maintenance-every", "1s"]);
    setup(&server);
    let (agent, _log) = start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "0s"]);
    release(&server, "1.0.0", FERRY_TOML);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    fs::create_dir_all(agent.root.join("apps/web/shared/data")).unwrap();

    for (args, error) in [
        (vec!["--backup-every", "soon"], "--backup-every \"soon\""),
        (vec!["--backup-every", "10s"], "shorter than a minute"),
        (vec!["--backup-keep", "7x"], "--backup-keep"),
    ] {
        let mut command = vec!["app", "set", "web"];
        command.extend(args);
        server.admin(&command).fails(3, error);
    }
    let set = server
        .admin(&[
            "app",
            "set",
            "web",
            "--backup-every",
            "1h",
            "--backup-keep",
            "2",
        ])
        .success();
    assert!(
        set.stdout
            .contains("web backs up its data every 1h, keeping backups 2"),
        "{set:?}"
    );
    let shown = server.admin(&["app", "show", "web"]).success();
    assert!(
        shown
            .stdout
            .contains("backups      every 1h; retention keeps 2"),
        "{shown:?}"
    );
    // No backup yet: the next maintenance pass asks for one.
    let first = wait_for_backups(&server, 1);
    assert_eq!(first[0]["reason"], "scheduled", "{first:?}");
    assert_eq!(first[0]["requested_by"], "ferry", "{first:?}");

    // Two more on demand: retention keeps the newest two.
    back_up(&server);
    back_up(&server);
    let kept = wait_for_backups(&server, 2);
    assert!(
        kept.iter().all(|b| b["reason"] == "on_demand"),
        "the oldest went: {kept:?}"
    );
    let audit = audit_summary(&server, 0);
    assert!(
        audit
            .iter()
            .any(|e| e.contains("ferry backup.prune app/web")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|e| e.contains("admin app.backups app/web")),
        "{audit:?}"
    );
    // Turned off, nothing more is asked.
    server
        .admin(&["app", "set", "web", "--backup-every", "off"])
        .success();
}

#[test]
fn a_protected_deployment_backs_up_first_and_a_failing_pre_backup_stops_it() {
    let server = Server::start();
    setup(&server);
    server
        .admin(&["env", "set", "dev", "--protected", "true"])
        .success();
    let (agent, _log) = start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "0s"]);
    release(
        &server,
        "1.0.0",
        "shared = [\"data\"]\nbackup = [\"data\"]\n\n[hooks]\npre_backup = \"echo the database is locked >&2; exit 4\"\n",
    );
    // The first deploy has no data to back up yet.
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    fs::write(
        agent.root.join("apps/web/shared/data/orders.csv"),
        b"1,2,3\n",
    )
    .unwrap();

    release(&server, "1.0.1", FERRY_TOML);
    let stopped = server.admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"]);
    assert_eq!(stopped.code, 1, "{stopped:?}");
    let said = format!("{}{}", stopped.stdout, stopped.stderr);
    assert!(
        said.contains("the database is locked") && said.contains("so nothing was switched"),
        "{stopped:?}"
    );
    assert!(
        agent
            .root
            .join("apps/web/current")
            .read_link()
            .unwrap()
            .ends_with("1.0.0"),
        "still on 1.0.0"
    );

    // A reason is needed to go ahead without the backup, and only where one is taken.
    server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "dev",
            "--skip-backup",
            " ",
        ])
        .fails(3, "--skip-backup needs a reason");
    server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "pp",
            "--skip-backup",
            "why",
        ])
        .fails(3, "pp takes no backup before deploying");
    server
        .admin(&[
            "deploy",
            "web",
            "1.0.1",
            "--to",
            "dev",
            "--wait",
            "--skip-backup",
            "the database is down; 1.0.1 fixes it",
        ])
        .success();
    let events = server.admin(&["audit", "--json"]).success().json();
    let skipped: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "deployment.deploy" && !e["details"]["skip_backup"].is_null())
        .collect();
    assert_eq!(skipped.len(), 1, "{events}");
    assert_eq!(
        skipped[0]["details"]["skip_backup"], "the database is down; 1.0.1 fixes it",
        "{events}"
    );

    // With a pre_backup that works, the next deploy backs up first.
    release(&server, "1.0.2", FERRY_TOML);
    server
        .admin(&["deploy", "web", "1.0.2", "--to", "dev", "--wait"])
        .success();
    let list = server
        .admin(&["backup", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(list[0]["reason"], "before_deployment", "{list}");
    assert_eq!(list[0]["version"], "1.0.1", "{list}");
    assert_eq!(list[0]["requested_by"], "ferry", "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn an_agent_reads_and_records_backups_only_of_what_its_target_runs() {
    let (server, agent) = deployed(FERRY_TOML);
    let content = b"order 1\n";
    fs::write(agent.root.join("apps/web/shared/data/orders.csv"), content).unwrap();
    back_up(&server);
    let other = crate::deployments::start_agent(&server, "pp", "pp-1");

    let http = reqwest::Client::new();
    let status = |credential: String, path: &str, body: serde_json::Value| {
        let request = http
            .post(format!("{}{path}", server.url))
            .bearer_auth(credential)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let blob = blake3::hash(content).to_hex().to_string();
    let fetch = serde_json::json!({"hashes": [blob]});
    let own = crate::harness::agent_credential(&agent.root);
    let stranger = crate::harness::agent_credential(&other.root);
    assert_eq!(
        status(own.clone(), "/api/v1/agent/blobs/fetch", fetch.clone()).await,
        200
    );
    assert_eq!(
        status(stranger.clone(), "/api/v1/agent/blobs/fetch", fetch).await,
        404
    );
    let record = serde_json::json!({"app": "web", "reason": "on_demand", "paths": ["data"],
        "digest": blob, "manifest_blob": blob, "new_bytes": 0});
    assert_eq!(
        status(stranger, "/api/v1/agent/backups", record.clone()).await,
        404
    );
    // Its own application, but a manifest that is not one: refused, nothing recorded.
    assert_eq!(status(own, "/api/v1/agent/backups", record).await, 422);
    let list = server
        .admin(&["backup", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}
