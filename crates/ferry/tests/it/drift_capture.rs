//! `ferry drift capture` with a real agent on a production target: hand edits (an edit, an
//! added file, a deleted one, a `chmod +x`) become a hotfix release whose manifest is the
//! target's tree byte for byte, served from the very same inodes, with a backport obligation
//! open; who may not capture, and what cannot be captured, change nothing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::deployments::{current, release_from, setup, start_agent_per_env};
use crate::harness::{changes_len, write_over, Server};
use crate::support::{backports, ship_to_production, tree};

/// Every file, directory and symlink under `dir` (not following symlinks), by path: what it
/// holds (content, link target), its executable bits, and its inode for files.
fn walk(dir: &Path) -> BTreeMap<String, (String, u32, u64)> {
    fn visit(dir: &Path, relative: &str, out: &mut BTreeMap<String, (String, u32, u64)>) {
        for child in fs::read_dir(dir).unwrap().flatten() {
            let name = child.file_name().to_str().unwrap().to_owned();
            let path = match relative {
                "" => name,
                _ => format!("{relative}/{name}"),
            };
            let metadata = fs::symlink_metadata(child.path()).unwrap();
            let exec = metadata.permissions().mode() & 0o111;
            if metadata.is_dir() {
                out.insert(path.clone(), ("dir".into(), exec, 0));
                visit(&child.path(), &path, out);
            } else if metadata.is_symlink() {
                let target = fs::read_link(child.path()).unwrap();
                out.insert(path, (format!("-> {}", target.display()), 0, 0));
            } else {
                let content = fs::read_to_string(child.path()).unwrap();
                out.insert(path, (content, exec, metadata.ino()));
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(&fs::canonicalize(dir).unwrap(), "", &mut out);
    out
}

/// The same without inodes: what a tree holds.
fn contents(tree: &BTreeMap<String, (String, u32, u64)>) -> BTreeMap<String, (String, u32)> {
    tree.iter()
        .map(|(path, (content, exec, _))| (path.clone(), (content.clone(), *exec)))
        .collect()
}

#[test]
fn hand_edits_in_production_become_a_hotfix_served_from_the_same_inodes() {
    let server = Server::start_with(&["--heartbeat-every", "1s"]);
    setup(&server);
    let lee = server.create_user("lee", "lead", &["shop"]);
    let vic = server.create_user("vic", "viewer", &["shop"]);
    let agents = start_agent_per_env(&server);
    let prd = &agents[2].root;
    let files = [
        ("index.html", "<h1>1.0.0</h1>\n"),
        ("css/site.css", "body { color: teal }\n"),
        ("bin/run.sh", "#!/bin/sh\nexec serve\n"),
        ("ferry.toml", "ignore = [\"tmp\"]\n"),
    ];
    release_from(&server, "1.0.0", &tree(&server, "1.0.0", &files));
    for env in ["dev", "pp"] {
        server
            .admin(&["deploy", "web", "1.0.0", "--to", env, "--wait"])
            .success();
    }
    ship_to_production(&server, &server.admin_token, &lee, "1.0.0");
    assert_eq!(current(prd, "web"), "releases/1.0.0");

    // Someone with a shell on prd-1: an edit, a file added, one deleted, a chmod.
    let live = prd.join("apps/web/current");
    write_over(&live.join("index.html"), "<h1>fixed by hand</h1>\n");
    fs::set_permissions(&live, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(live.join("hotfix.js"), "window.fixed = true;\n").unwrap();
    fs::set_permissions(live.join("css"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(live.join("css/site.css")).unwrap();
    fs::set_permissions(live.join("bin/run.sh"), fs::Permissions::from_mode(0o555)).unwrap();
    // The application's own scratch data is not the release's.
    fs::create_dir_all(live.join("tmp")).unwrap();
    fs::write(live.join("tmp/session"), "scratch\n").unwrap();
    let before = walk(&live);

    // Who may not, and what cannot be, changes nothing.
    let changes = changes_len(&server);
    let capture = |token: &str, target: &str, app: &str, version: &str| {
        server.ferry(
            token,
            &["drift", "capture", target, app, "--as", version, "--json"],
        )
    };
    let refused = capture(&vic, "prd-1", "web", "1.0.1").fails(3, "creates a release");
    assert!(refused.stderr.contains("vic"), "{refused:?}");
    capture(&server.admin_token, "nowhere-1", "web", "1.0.1").fails(1, "no target \"nowhere-1\"");
    server
        .admin(&["app", "create", "api", "--team", "shop"])
        .success();
    let changes = changes + 1;
    capture(&server.admin_token, "prd-1", "api", "1.0.1").fails(3, "prd-1 does not run api");
    capture(&server.admin_token, "prd-1", "web", "1.0.0").fails(3, "exists already");
    capture(&server.admin_token, "prd-1", "web", "0.9").fails(3, "not a later version");
    server
        .admin(&[
            "drift",
            "capture",
            "prd-1",
            "web",
            "--as",
            "1.0.1",
            "--incident",
            "999",
        ])
        .fails(1, "no incident 999 of web");
    assert_eq!(changes_len(&server), changes, "refusals change nothing");
    assert_eq!(current(prd, "web"), "releases/1.0.0");
    assert_eq!(walk(&live), before);

    let captured = capture(&server.admin_token, "prd-1", "web", "1.0.0-captured.1")
        .success()
        .json();
    assert_eq!(captured["version"], "1.0.0-captured.1", "{captured}");
    assert_eq!(captured["hotfix_of"], "1.0.0", "{captured}");
    assert_eq!(captured["paths"], 4, "{captured}");
    assert_eq!(
        captured["added"],
        serde_json::json!(["hotfix.js"]),
        "{captured}"
    );
    assert_eq!(
        captured["removed"],
        serde_json::json!(["css/site.css"]),
        "{captured}"
    );
    assert_eq!(
        captured["modified"],
        serde_json::json!(["bin/run.sh", "index.html"]),
        "{captured}"
    );
    // Only the new content travelled.
    let new_bytes = "<h1>fixed by hand</h1>\n".len() + "window.fixed = true;\n".len();
    assert_eq!(captured["bytes_uploaded"], new_bytes as u64, "{captured}");

    // The target runs it, from the very files it served: same inodes, nothing rewritten.
    assert_eq!(current(prd, "web"), "releases/1.0.0-captured.1");
    let after = walk(&live);
    let files_of = |tree: &BTreeMap<String, (String, u32, u64)>| -> BTreeMap<String, u64> {
        tree.iter()
            .filter(|(path, (_, _, ino))| *ino != 0 && !path.starts_with("tmp/"))
            .map(|(path, (_, _, ino))| (path.clone(), *ino))
            .collect()
    };
    assert_eq!(files_of(&after), files_of(&before));
    assert_eq!(contents(&after), contents(&before));
    assert_eq!(captured["files_linked"], files_of(&before).len() as u64);

    // The release is the target's tree byte for byte (the application's data aside).
    let exported = server.dir.path().join("exported");
    server
        .admin(&[
            "release",
            "export",
            "web",
            "1.0.0-captured.1",
            exported.to_str().unwrap(),
        ])
        .success();
    let mut on_target = contents(&after);
    on_target.retain(|path, _| path != "tmp" && !path.starts_with("tmp/"));
    assert_eq!(contents(&walk(&exported)), on_target);
    let shown = server
        .admin(&["release", "show", "web", "1.0.0-captured.1", "--json"])
        .success()
        .json();
    assert_eq!(shown["hotfix_of"], "1.0.0", "{shown}");
    assert_eq!(shown["source"]["kind"], "captured", "{shown}");
    assert_eq!(shown["source"]["target"], "prd-1", "{shown}");
    assert_eq!(shown["source"]["user"], "admin", "{shown}");

    // A hotfix that runs in production: its fix is owed to dev.
    let owed = backports(&server);
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0]["hotfix_version"], "1.0.0-captured.1");
    assert_eq!(owed[0]["base_version"], "1.0.0");
    assert_eq!(owed[0]["status"], "open");
    assert_eq!(owed[0]["id"], captured["backport"]);

    // No drift afterwards, as the agent finds it now.
    let drift = server
        .admin(&["drift", "web", "--refresh", "--json"])
        .success()
        .json();
    let drifted: Vec<&serde_json::Value> = drift
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| !t["paths"].as_array().unwrap().is_empty())
        .collect();
    assert!(drifted.is_empty(), "{drift}");
    let status = server.admin(&["status", "web", "--json"]).success().json();
    assert!(
        status.to_string().contains("1.0.0-captured.1"),
        "status shows the captured release: {status}"
    );

    let audit = crate::harness::audit_summary(&server, 0);
    let said = |what: &str| audit.iter().any(|e| e.contains(what));
    assert!(said("admin drift.capture target/prd-1"), "{audit:?}");
    assert!(
        said("admin release.create release/web/1.0.0-captured.1"),
        "{audit:?}"
    );
    assert!(said("admin drift.captured deployment/"), "{audit:?}");
    assert!(
        said("backport.open release/web/1.0.0-captured.1"),
        "{audit:?}"
    );

    // Nothing left to capture: the target serves its release exactly.
    capture(&server.admin_token, "prd-1", "web", "1.0.0-captured.2").fails(1, "nothing to capture");
    assert_eq!(current(prd, "web"), "releases/1.0.0-captured.1");

    // Captured again, as people read it.
    write_over(&live.join("index.html"), "<h1>edited again</h1>\n");
    let said = server
        .admin(&[
            "drift",
            "capture",
            "prd-1",
            "web",
            "--as",
            "1.0.0-captured.2",
        ])
        .success()
        .stdout;
    println!("{said}");
    for line in [
        "captured web 1.0.0-captured.2 from prd-1 (a hotfix of 1.0.0-captured.1): 1 path(s)\n",
        "  modified  index.html\n",
        "prd-1 runs 1.0.0-captured.2 (deployment ",
        "4 files linked, none rewritten\n",
        "backport obligation ",
    ] {
        assert!(said.contains(line), "{line:?} in {said}");
    }
    assert_eq!(current(prd, "web"), "releases/1.0.0-captured.2");

    // An offline target cannot be asked: refused, saying so, and nothing is asked.
    write_over(&live.join("index.html"), "<h1>edited once more</h1>\n");
    let prd = prd.clone();
    drop(agents);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let changes = changes_len(&server);
    capture(&server.admin_token, "prd-1", "web", "1.0.0-captured.3").fails(3, "offline");
    assert_eq!(changes_len(&server), changes);
    assert_eq!(current(&prd, "web"), "releases/1.0.0-captured.2");
}
