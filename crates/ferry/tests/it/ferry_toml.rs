//! A release's `ferry.toml` is checked before the release exists: by `ferry check`, by
//! `ferry release create` before it uploads, and by the server, which does not trust the
//! client. A version that exists can always be read by its targets.

use std::fs;
use std::path::Path;
use std::process::Command;

use ferry_cas::release_config::ReleaseConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::deployments::{release_from, setup, site};
use crate::harness::{audit_len, Run, Server, FERRY};

/// `ferry check ARGS`, without a server.
fn check(args: &[&str]) -> Run {
    Run::of(Command::new(FERRY).arg("check").args(args))
}

fn tree(dir: &Path, ferry_toml: Option<&str>) -> String {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("index.html"), "<h1>shop</h1>\n").unwrap();
    if let Some(text) = ferry_toml {
        fs::write(dir.join("ferry.toml"), text).unwrap();
    }
    dir.to_str().unwrap().to_owned()
}

#[test]
fn release_create_refuses_a_ferry_toml_naming_the_line_the_column_and_the_known_keys() {
    let server = Server::start();
    setup(&server);
    let events = audit_len(&server);
    for (version, toml, expected) in [
        (
            "1.0.0",
            "shared = [\"uploads\"]\n\n[helth]\nurl = \"http://127.0.0.1/\"\n",
            "ferry.toml line 3, column 2: unknown field `helth`, expected one of `shared`, \
             `backup`, `ignore`, `hooks`, `health`, `config`",
        ),
        (
            "1.0.1",
            "[hooks]\nbefore_swich = \"./migrate\"\n",
            "ferry.toml line 2, column 1: unknown field `before_swich`, expected one of \
             `before_switch`, `after_switch`, `pre_backup`, `timeout`, `pre_backup_timeout`",
        ),
        (
            "1.0.2",
            "[health]\ncommand = \"true\"\ntimeout = \"11m\"\n",
            "ferry.toml line 3, column 11: health.timeout: \"11m\" is longer than ferry allows \
             for one step, 10m",
        ),
        // A backup path that is not shared would give empty backups, without a word.
        (
            "1.0.3",
            "shared = [\"uploads\"]\nbackup = [\"upload\"]\n",
            "ferry.toml line 2, column 11: backup[0]: \"upload\" is not a shared path nor \
             inside one: backups cover paths inside shared/ only, and the shared paths are \
             [\"uploads\"]",
        ),
        (
            "1.0.4",
            "backup = [\"data\"]\n",
            "ferry.toml line 1, column 11: backup[0]: \"data\" is not shared: backups cover \
             paths inside shared/ only, and no `shared` path is set",
        ),
        (
            "1.0.5",
            "shared = [\"data\"]\n\n[hooks]\npre_backup = \"./dump\"\n",
            "ferry.toml line 4, column 14: hooks.pre_backup: no `backup` path is set, so no \
             backup is ever taken and this would never run",
        ),
    ] {
        let site = site(server.dir.path(), version, toml);
        let site = site.to_str().unwrap();
        server
            .admin(&["release", "create", "web", version, "--from", site])
            .fails(3, &format!("{site}: {expected}"));
        server
            .admin(&["release", "show", "web", version])
            .fails(1, "no release");
        // `ferry check` says the same, without a server.
        check(&[site]).fails(3, expected);
    }
    let releases = server
        .admin(&["release", "list", "web", "--json"])
        .success();
    assert_eq!(releases.json(), json!([]), "{releases:?}");
    assert_eq!(audit_len(&server), events, "nothing was recorded");
}

/// GET `path` as the admin, answered as JSON.
pub(crate) async fn get(server: &Server, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", server.url))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A client that skips the check (or an old one) cannot make a release that could never
/// deploy: the server reads the uploaded `ferry.toml` and checks it with the same rules.
#[tokio::test]
async fn the_server_refuses_a_ferry_toml_the_client_did_not_check() {
    let server = Server::start();
    setup(&server);
    // 1.0.0 uploads the content of the forged ferry.toml under another name.
    let dir = server.dir.path().join("forge");
    tree(&dir, None);
    fs::write(
        dir.join("notes.txt"),
        "[hooks]\nbefore_swich = \"./migrate\"\n",
    )
    .unwrap();
    release_from(&server, "1.0.0", &dir);
    let manifest = get(&server, "/api/v1/apps/web/releases/1.0.0/manifest").await;
    let mut entries = manifest["entries"].as_array().unwrap().clone();
    let mut config = entries
        .iter()
        .find(|e| e["path"] == "notes.txt")
        .unwrap()
        .clone();
    config["path"] = json!("ferry.toml");
    entries.push(config);
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    refused_past_the_client(
        &server,
        "1.0.1",
        entries,
        "ferry.toml line 2, column 1: unknown field `before_swich`, expected one of `before_switch`",
    )
    .await;
    // Through the client the same file is refused too (exit 3), before anything is uploaded.
    fs::rename(dir.join("notes.txt"), dir.join("ferry.toml")).unwrap();
    server
        .admin(&[
            "release",
            "create",
            "web",
            "1.0.1",
            "--from",
            dir.to_str().unwrap(),
        ])
        .fails(3, "unknown field `before_swich`");
}

/// What `[config]` says of the release's files (a template to read, files ferry writes and
/// the directories holding them) is checked against the tree by `ferry check` and `ferry
/// release create`, and against the manifest by the server, which does not trust the client.
#[tokio::test]
async fn config_files_are_checked_against_the_release() {
    let server = Server::start();
    setup(&server);
    for (version, toml, expected) in [
        (
            "1.0.0",
            "[config]\ntemplates = { \"css/app.css\" = \"css/app.css.tmpl\" }\n",
            "ferry.toml: config.templates.\"css/app.css\": the template \"css/app.css.tmpl\" \
             is not in the release: add it, or correct the path",
        ),
        (
            "1.0.1",
            "[config]\nenv_file = \"index.html\"\n",
            "ferry.toml: config.env_file: \"index.html\" is in the release, and ferry writes it \
             at staging",
        ),
        (
            "1.0.2",
            "[config]\nenv_file = \"conf/.env\"\n",
            "ferry.toml: config.env_file: the directory \"conf\" that would hold \"conf/.env\" \
             is not in the release",
        ),
    ] {
        let site = site(server.dir.path(), version, toml);
        let site = site.to_str().unwrap();
        server
            .admin(&["release", "create", "web", version, "--from", site])
            .fails(3, &format!("{site}: {expected}"));
        check(&[site]).fails(3, expected);
    }
    let site = site(
        server.dir.path(),
        "2.0.0",
        "[config]\nenv_file = \"css/.env\"\ntemplates = { \"app.ini\" = \"app.ini.tmpl\" }\n\
         required = [\"DATABASE_URL\"]\n",
    );
    // A template that could never render is refused before anything is uploaded.
    fs::write(site.join("app.ini.tmpl"), "db = {{ database_url }}\n").unwrap();
    let broken = "ferry.toml: config.templates.\"app.ini\": template app.ini.tmpl line 1, \
                  column 6: \"{{ database_url }}\" is not a placeholder";
    check(&[site.to_str().unwrap()]).fails(3, broken);
    server
        .admin(&[
            "release",
            "create",
            "web",
            "1.9.0",
            "--from",
            site.to_str().unwrap(),
        ])
        .fails(3, broken);
    fs::write(site.join("app.ini.tmpl"), "db = {{ DATABASE_URL }}\n").unwrap();
    let run = check(&[site.to_str().unwrap()]).success();
    assert_eq!(run.stdout, "ferry.toml is valid\n", "{run:?}");
    release_from(&server, "2.0.0", &site);

    // The same release without its template, sent past the client, is refused.
    let manifest = get(&server, "/api/v1/apps/web/releases/2.0.0/manifest").await;
    let entries: Vec<Value> = manifest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] != "app.ini.tmpl")
        .cloned()
        .collect();
    refused_past_the_client(
        &server,
        "2.0.1",
        entries,
        "the template \\\"app.ini.tmpl\\\" is not in the release",
    )
    .await;
}

/// Creates release `version` of web from `entries`, past the client's checks: the server
/// refuses it with 422 and `says`, and no such release exists.
async fn refused_past_the_client(server: &Server, version: &str, entries: Vec<Value>, says: &str) {
    let body = json!({
        "version": version,
        "manifest": {"entries": entries},
        "source": {"kind": "directory", "path": "/tmp/forged"},
    });
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/apps/web/releases", server.url))
        .bearer_auth(&server.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains(says), "{text}");
    server
        .admin(&["release", "show", "web", version])
        .fails(1, "no release");
}

#[test]
fn ferry_check_says_whether_a_tree_can_be_released() {
    let dir = tempfile::tempdir().unwrap();
    let valid = tree(
        &dir.path().join("valid"),
        Some("shared = [\"uploads\"]\n[health]\nurl = \"http://127.0.0.1:8080/health\"\n"),
    );
    let run = check(&[&valid]).success();
    assert_eq!(run.stdout, "ferry.toml is valid\n", "{run:?}");
    let missing = tree(&dir.path().join("missing"), None);
    let run = check(&[&missing]).success();
    assert_eq!(
        run.stdout, "no ferry.toml: the release deploys with defaults\n",
        "{run:?}"
    );
    let run = check(&["--json", &missing]).success();
    assert_eq!(run.json()["config"], false, "{run:?}");
    // The current directory by default.
    let run = Run::of(Command::new(FERRY).arg("check").current_dir(&valid));
    assert_eq!(run.stdout, "ferry.toml is valid\n", "{run:?}");

    let invalid = tree(
        &dir.path().join("invalid"),
        Some("shared = [\"/var/www\"]\n"),
    );
    check(&[&invalid]).fails(3, "ferry.toml line 1, column 11: shared[0]: \"/var/www\"");
    let not_a_file = dir.path().join("not-a-file");
    fs::create_dir_all(not_a_file.join("ferry.toml")).unwrap();
    check(&[not_a_file.to_str().unwrap()]).fails(3, "ferry.toml must be a regular file");
    check(&[dir.path().join("nowhere").to_str().unwrap()]).fails(3, "is not a directory");
}

/// Every example in docs/ferry-toml.md passes `ferry check`, so the documentation cannot
/// drift from what ferry accepts.
#[test]
fn every_example_in_the_ferry_toml_documentation_is_valid() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ferry-toml.md");
    let text = fs::read_to_string(&doc).unwrap();
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(example), "```") => {
                examples.push(std::mem::take(example));
                current = None;
            }
            (Some(example), line) => {
                example.push_str(line);
                example.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```toml block in {doc:?}");
    assert!(examples.len() >= 3, "{examples:?}");
    let dir = tempfile::tempdir().unwrap();
    for (i, example) in examples.iter().enumerate() {
        let tree = tree(&dir.path().join(i.to_string()), Some(example));
        // The templates an example names are files of its release.
        let config = ReleaseConfig::parse(example).unwrap_or_else(|e| panic!("{example}: {e}"));
        for template in &config.config.templates {
            let source = Path::new(&tree).join(&template.source);
            fs::create_dir_all(source.parent().unwrap()).unwrap();
            fs::write(source, "{{ DATABASE_URL }}\n").unwrap();
        }
        let run = check(&[&tree]);
        assert_eq!(run.code, 0, "example {}:\n{example}\n{run:#?}", i + 1);
        assert_eq!(run.stdout, "ferry.toml is valid\n", "{run:?}");
    }
}
