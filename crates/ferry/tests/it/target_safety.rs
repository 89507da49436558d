//! What a target's agent keeps safe in production, through the binary with real agents:
//! staging touches nothing live before the switch, a hand edit never spreads to the release
//! switched to, and sizes a manifest declares are never trusted.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::deployments::{
    current, release, release_from, setup, site, start_agent_logged, start_agent_per_env,
};
use crate::harness::{write_over, Run, Server};
use crate::policy::{finished, request_production};

/// Regression: a stage-only deploy (and the staging ahead of a production deployment that
/// awaits approval) linked the release's shared paths, which created the new ones in
/// production: a release whose ferry.toml named `evil.php` created `shared/evil.php` on
/// the prd target before anyone approved it.
#[test]
fn staging_creates_no_shared_path_in_production_until_the_approved_switch() {
    let server = Server::start();
    setup(&server);
    let agents = start_agent_per_env(&server);
    let prd = &agents[2].root;
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    release(&server, "1.0.0", "shared = [\"uploads\"]\n");
    let id = request_production(&server, &server.admin_token, "1.0.0");
    server.ferry(&lee, &["approve", &id]).success();
    assert_eq!(finished(&server, &id)["status"], "succeeded");
    let shared = prd.join("apps/web/shared");
    assert!(shared.join("uploads").is_dir());

    let toml = concat!(
        "shared = [\"uploads\", \"evil.php\"]\n",
        "[hooks]\n",
        "before_switch = 'touch \"$FERRY_SHARED_DIR/hook-ran\"'\n",
    );
    let site = site(server.dir.path(), "1.1.0", toml);
    fs::write(site.join("evil.php"), "<?php system($_GET['c']);\n").unwrap();
    release_from(&server, "1.1.0", &site);
    for env in ["dev", "pp"] {
        server
            .admin(&["deploy", "web", "1.1.0", "--to", env, "--wait"])
            .success();
    }
    let staged = server
        .admin(&[
            "deploy",
            "web",
            "1.1.0",
            "--to",
            "prd",
            "--stage-only",
            "--wait",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(staged["status"], "succeeded", "{staged}");
    let release = prd.join("apps/web/releases/1.1.0");
    assert_eq!(
        fs::read_link(release.join("evil.php")).unwrap().to_str(),
        Some("../../shared/evil.php")
    );
    let nothing_live = || {
        assert!(fs::symlink_metadata(shared.join("evil.php")).is_err());
        assert!(!shared.join("hook-ran").exists());
        assert_eq!(current(prd, "web"), "releases/1.0.0");
    };
    nothing_live();

    // Asked for production, it waits for an approval: still nothing live.
    let asked = server
        .admin(&["promote", "web", "--from", "pp", "--to", "prd", "--json"])
        .success()
        .json();
    assert_eq!(asked["status"], "awaiting_approval", "{asked}");
    nothing_live();
    // Approved, the switch creates the shared path from the release, before the hook.
    let id = asked["id"].to_string();
    server.ferry(&lee, &["approve", &id]).success();
    assert_eq!(finished(&server, &id)["status"], "succeeded");
    assert_eq!(current(prd, "web"), "releases/1.1.0");
    assert_eq!(
        fs::read_to_string(shared.join("evil.php")).unwrap(),
        "<?php system($_GET['c']);\n"
    );
    assert!(shared.join("hook-ran").is_file());
}

/// A site whose `index.html` is the same in every version (a file releases share).
fn same_index_site(dir: &Path, version: &str) -> std::path::PathBuf {
    let site = site(dir, version, "");
    fs::write(site.join("index.html"), "<h1>shop</h1>\n").unwrap();
    fs::write(site.join("version.txt"), version).unwrap();
    site
}

/// Release `version` on the target is byte for byte the release: the same tree as
/// `ferry release export` writes, every file and directory read-only.
fn assert_is_the_release(server: &Server, root: &Path, version: &str) {
    let exported = server.dir.path().join(format!("export-{version}"));
    let _ = fs::remove_dir_all(&exported);
    server
        .admin(&[
            "release",
            "export",
            "web",
            version,
            exported.to_str().unwrap(),
        ])
        .success();
    let on_target = root.join("apps/web/releases").join(version);
    let diff = Run::of(
        Command::new("diff")
            .arg("-r")
            .arg(&exported)
            .arg(&on_target),
    );
    assert_eq!(
        diff.code, 0,
        "{version} differs from its manifest: {diff:?}"
    );
    fn read_only(dir: &Path) {
        for child in fs::read_dir(dir).unwrap() {
            let path = child.unwrap().path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            if !metadata.file_type().is_symlink() {
                let mode = metadata.permissions().mode();
                assert_eq!(mode & 0o222, 0, "{} is writable", path.display());
            }
            if metadata.is_dir() {
                read_only(&path);
            }
        }
    }
    read_only(&on_target);
}

/// Regression: releases share unchanged files as hard links, so `echo x >>
/// current/index.html` on a target changed the same file in the older releases and in the
/// agent's cache, and a rollback "restored" the edited file.
#[test]
fn a_hand_edit_never_reaches_the_release_a_rollback_or_a_deploy_switches_to() {
    let server = Server::start();
    setup(&server);
    let (agent, log) = start_agent_logged(&server, "dev", "dev-1");
    for version in ["1.0.0", "1.0.1", "1.0.2"] {
        release_from(
            &server,
            version,
            &same_index_site(server.dir.path(), version),
        );
    }
    for version in ["1.0.0", "1.0.1"] {
        server
            .admin(&["deploy", "web", version, "--to", "dev", "--wait"])
            .success();
    }
    let root = &agent.root;
    let edited = root.join("apps/web/current/index.html");
    assert_eq!(
        fs::metadata(&edited).unwrap().permissions().mode() & 0o777,
        0o444
    );
    // `echo x >> current/index.html`, with the write permission it now needs first.
    write_over(&edited, "<h1>shop</h1>\nx\n");
    // One inode: the release a rollback goes back to shows the edit too, until repaired.
    let older = root.join("apps/web/releases/1.0.0/index.html");
    assert_eq!(fs::read_to_string(&older).unwrap(), "<h1>shop</h1>\nx\n");

    let back = server
        .admin(&["rollback", "web", "--env", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(
        (back["status"].as_str(), back["version"].as_str()),
        (Some("succeeded"), Some("1.0.0")),
        "{back}"
    );
    assert_eq!(current(root, "web"), "releases/1.0.0");
    assert_is_the_release(&server, root, "1.0.0");
    // The repair is reported: in the deployment, and in the agent's log.
    let step = back["targets"][0]["step"].as_str().unwrap_or_default();
    assert!(
        step.contains("changed on this target since it was staged") && step.contains("index.html"),
        "{back}"
    );
    let logged = fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("warning: release 1.0.0 had been changed on this target")
            && logged.contains("index.html"),
        "{logged}"
    );

    let done = server
        .admin(&["deploy", "web", "1.0.2", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["targets"][0]["step"], Value::Null, "{done}");
    assert_is_the_release(&server, root, "1.0.2");
    assert_is_the_release(&server, root, "1.0.0");
}

/// A `ferry.toml` over 1 MiB (the most the agent reads) is refused when the release is
/// made, saying so: such a release could never deploy. (The agent refuses one too, and
/// lives on, whatever size its manifest claims: `ferry-agent`'s `forged_sizes`. A manifest
/// that claims a size its content does not have is refused by the server, `content_safety`:
/// the agent once allocated whatever size a manifest declared for `ferry.toml`, and a
/// forged one aborted it.)
#[test]
fn a_ferry_toml_over_the_limit_is_refused_when_the_release_is_made() {
    let server = Server::start();
    setup(&server);
    let big = format!(
        "# {}\n[health]\ncommand = \"true\"\n",
        "x".repeat(1024 * 1024)
    );
    let site = site(server.dir.path(), "1.0.1", &big);
    server
        .admin(&[
            "release",
            "create",
            "web",
            "1.0.1",
            "--from",
            site.to_str().unwrap(),
        ])
        .fails(
            3,
            &format!(
                "the file holds {} bytes; a ferry.toml may hold at most 1048576 bytes (1 MiB)",
                big.len()
            ),
        );
    server
        .admin(&["release", "show", "web", "1.0.1"])
        .fails(1, "no release");
}
