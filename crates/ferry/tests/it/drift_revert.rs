//! `ferry drift revert` with a real agent: hand edits (an edit, an added file, a deleted
//! one, and the `chmod` that allowed it) are undone, the target serves its release exactly again, and what the edited paths
//! held is kept first as a backup in the server's blob storage, which `ferry backup export`
//! takes home; who may not revert or export, and a restore of that backup as if it were
//! data, change nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;

use crate::deployments::{release, setup, start_agent_logged_with};
use crate::harness::{audit_summary, changes_len, write_over, Server};

#[test]
fn a_revert_undoes_hand_edits_and_keeps_what_they_held() {
    let server = Server::start_with(&["--heartbeat-every", "1s"]);
    setup(&server);
    let vic = server.create_user("vic", "viewer", &["shop"]);
    let (agent, _log) = start_agent_logged_with(&server, "dev", "dev-1", &["--drift-every", "0s"]);
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let live = agent.root.join("apps/web/current");
    let edited = "<h1>fixed by hand</h1>\n";
    let added = "window.fixed = true;\n";
    write_over(&live.join("index.html"), edited);
    fs::set_permissions(&live, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(live.join("hotfix.js"), added).unwrap();
    fs::set_permissions(live.join("css"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(live.join("css/site.css")).unwrap();

    // A viewer may not; nothing is asked of the agent.
    let before = changes_len(&server);
    server
        .ferry(&vic, &["drift", "revert", "dev-1", "web"])
        .fails(3, "deploy");
    server
        .admin(&["drift", "revert", "dev-1", "nothing"])
        .fails(1, "no application named");
    server
        .admin(&["drift", "revert", "web", "dev-1"])
        .fails(1, "web is an application: the target comes first");
    assert_eq!(changes_len(&server), before);

    let reverted = server
        .admin(&["drift", "revert", "dev-1", "web", "--json"])
        .success()
        .json();
    assert_eq!(reverted["version"], "1.0.0", "{reverted}");
    let paths: Vec<(&str, &str)> = reverted["reverted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].as_str().unwrap(), p["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        paths,
        [
            ("css", "mode"),
            ("css/site.css", "deleted"),
            ("hotfix.js", "added"),
            ("index.html", "content")
        ],
        "{reverted}"
    );

    // The release's exact content again, and no drift left.
    assert_eq!(
        fs::read_to_string(live.join("index.html")).unwrap(),
        "<h1>1.0.0</h1>\n"
    );
    assert_eq!(
        fs::read_to_string(live.join("css/site.css")).unwrap(),
        "body { color: teal }\n"
    );
    assert!(!live.join("hotfix.js").exists());
    let drift = server
        .admin(&["drift", "web", "--refresh", "--json"])
        .success()
        .json();
    assert_eq!(drift, serde_json::json!([]), "{drift}");

    // What the edits held is in a backup, its content in the server's blob storage.
    let id = reverted["backup"].as_i64().unwrap();
    let backup = server
        .admin(&["backup", "show", &id.to_string(), "--json"])
        .success()
        .json();
    assert_eq!(backup["reason"], "drift_revert", "{backup}");
    assert_eq!(backup["version"], "1.0.0", "{backup}");
    assert_eq!(
        backup["paths"],
        serde_json::json!(["css", "hotfix.js", "index.html"]),
        "{backup}"
    );
    assert_eq!(backup["files"], 2, "{backup}");
    assert_eq!(
        backup["bytes"],
        (edited.len() + added.len()) as u64,
        "{backup}"
    );
    let blobs = BlobStore::open(&server.data_dir().join("blobs")).unwrap();
    for content in [edited, added] {
        let stored = blobs.read(&ContentHash::of(content.as_bytes())).unwrap();
        assert_eq!(stored, content.as_bytes());
    }

    // Whoever may restore it may take it home; a viewer may see it, not its content.
    let home = server.dir.path().join("reverted");
    let exported = server
        .admin(&["backup", "export", &id.to_string(), home.to_str().unwrap()])
        .success();
    assert!(exported.stdout.contains("2 files"), "{exported:?}");
    assert_eq!(fs::read_to_string(home.join("index.html")).unwrap(), edited);
    assert_eq!(fs::read_to_string(home.join("hotfix.js")).unwrap(), added);
    server
        .admin(&["backup", "export", &id.to_string(), home.to_str().unwrap()])
        .fails(3, "not empty");
    server
        .ferry(&vic, &["backup", "show", &id.to_string()])
        .success();
    let elsewhere = server.dir.path().join("vic");
    server
        .ferry(
            &vic,
            &[
                "backup",
                "export",
                &id.to_string(),
                elsewhere.to_str().unwrap(),
            ],
        )
        .fails(3, "deploy");
    assert!(!elsewhere.exists());

    // It holds release files, not data: restoring it into shared/ is refused.
    let before = changes_len(&server);
    let refused = server
        .admin(&["backup", "restore", &id.to_string()])
        .fails(3, "not restored");
    assert!(refused.stderr.contains("drift revert"), "{refused:?}");
    assert_eq!(changes_len(&server), before);

    let audit = audit_summary(&server, 0);
    assert!(
        audit.iter().any(|e| e == "admin drift.revert target/dev-1"),
        "{audit:?}"
    );
}
