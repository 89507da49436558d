//! Configuration delivered with releases, through real agents: each environment's values in
//! the env file, a rendered template and the hooks' environment; a missing required key
//! failing before the switch; a configuration change deployed as a deployment (approved,
//! health-checked, rolled back with `ferry rollback`, refused during a freeze); and secrets
//! nowhere on the server's side but in the agents' files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::{admin_with_input, stored_containing};
use crate::deployments::{current, setup, start_agent};
use crate::harness::Server;

/// The secret the tests set; found nowhere but in the agents' rendered files.
const API_KEY: &str = "key-live-77-never-logged";

/// A release that takes its configuration in `.env` and a rendered `config/app.php`, and
/// whose health check fails unless the hook's environment and the rendered file agree and
/// the key is not `broken`.
const FERRY_TOML: &str = r#"
[config]
env_file = ".env"
templates = { "config/app.php" = "config/app.php.tmpl" }
required = ["DATABASE_URL", "API_KEY"]

[health]
command = "test \"$(cat config/app.php)\" = \"db=$DATABASE_URL key=$API_KEY\" && test \"$API_KEY\" != broken"
timeout = "2s"
"#;

/// Release `version` of web with the configuration above.
fn configured_release(server: &Server, version: &str, ferry_toml: &str) {
    let site = crate::deployments::site(server.dir.path(), version, ferry_toml);
    fs::create_dir_all(site.join("config")).unwrap();
    fs::write(
        site.join("config/app.php.tmpl"),
        "db={{ DATABASE_URL }} key={{ API_KEY }}",
    )
    .unwrap();
    crate::deployments::release_from(server, version, &site);
}

/// What `ROOT/apps/web/current/PATH` holds.
fn served(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join("apps/web/current").join(path)).unwrap()
}

fn set(server: &Server, env: &str, assignment: &str) {
    server
        .admin(&["config", "set", "web", "--env", env, assignment])
        .success();
}

fn set_api_key(server: &Server, env: &str, value: &str) {
    admin_with_input(
        server,
        &["config", "set", "web", "--env", env, "--secret", "API_KEY"],
        value,
    )
    .success();
}

#[test]
fn each_environment_gets_its_own_values_in_its_files_and_hooks() {
    let server = Server::start();
    setup(&server);
    server
        .admin(&["env", "set", "prd", "--approvals", "0"])
        .success();
    let dev = start_agent(&server, "dev", "dev-1");
    let _pp = start_agent(&server, "pp", "pp-1");
    let prd = start_agent(&server, "prd", "prd-1");
    configured_release(&server, "1.0.0", FERRY_TOML);
    for (env, db) in [("dev", "dev-db"), ("pp", "pp-db"), ("prd", "prd-db")] {
        set(&server, env, &format!("DATABASE_URL=postgres://{db}/web"));
    }
    set_api_key(&server, "dev", "dev-key");
    set_api_key(&server, "pp", "pp-key");
    set_api_key(&server, "prd", API_KEY);
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    for to in ["pp", "prd"] {
        let from = if to == "pp" { "dev" } else { "pp" };
        server
            .admin(&["promote", "web", "--from", from, "--to", to, "--wait"])
            .success();
    }

    // Each environment's values, in the env file and the template; the release with its
    // revision is a directory of its own; the files are the application user's alone.
    assert_eq!(current(&dev.root, "web"), "releases/1.0.0@2");
    assert_eq!(
        served(&dev.root, ".env"),
        "API_KEY=dev-key\nDATABASE_URL=postgres://dev-db/web\n"
    );
    assert_eq!(
        served(&prd.root, "config/app.php"),
        format!("db=postgres://prd-db/web key={API_KEY}")
    );
    for path in [".env", "config/app.php"] {
        let mode = fs::metadata(prd.root.join("apps/web/current").join(path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400, "{path}");
    }

    // Status and the deployment name the revision.
    let status = server.admin(&["status"]).success().stdout;
    assert!(status.contains("1.0.0 with configuration 2"), "{status}");
    let deployments = server
        .admin(&["deployment", "list", "web", "--json"])
        .success()
        .json();
    assert_eq!(deployments[0]["config"], 2, "{deployments}");

    // A release requiring a key the environment lacks fails before anything switches.
    configured_release(
        &server,
        "1.0.1",
        &FERRY_TOML.replace(r#""API_KEY"]"#, r#""API_KEY", "MAIL_FROM"]"#),
    );
    let failed = server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .fails(1, "MAIL_FROM");
    assert!(
        failed.stderr.contains("ferry config set web --env dev"),
        "{failed:?}"
    );
    assert_eq!(current(&dev.root, "web"), "releases/1.0.0@2");

    // A hand edit of a rendered file is drift. Capturing it is refused with what to do;
    // reverting writes it again from the values and keeps nothing of it in a backup (it
    // holds the secret).
    let env_file = prd.root.join("apps/web/current/.env");
    let rendered = fs::read_to_string(&env_file).unwrap();
    fs::set_permissions(&env_file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&env_file, format!("{rendered}DEBUG=1\n")).unwrap();
    server
        .admin(&["drift", "capture", "prd-1", "web", "--as", "1.0.2"])
        .fails(1, "undo the edit with `ferry drift revert prd-1 web`");
    let reverted = server.admin(&["drift", "revert", "prd-1", "web"]).success();
    assert!(
        reverted
            .stdout
            .contains(".env written again from the configuration's values"),
        "{reverted:?}"
    );
    assert_eq!(fs::read_to_string(&env_file).unwrap(), rendered);
    let backups = server.admin(&["backup", "list", "--json"]).success().json();
    assert_eq!(backups.as_array().unwrap().len(), 0, "{backups}");

    // The secret is in the agents' files, and nowhere on the server's side: not in its
    // answers, its log, its database or its blobs.
    for answer in [
        server.admin(&["status", "--json"]).success().stdout,
        server
            .admin(&["deployment", "list", "--json"])
            .success()
            .stdout,
        server.admin(&["audit", "--json"]).success().stdout,
        server
            .admin(&["config", "history", "web", "--env", "prd", "--json"])
            .success()
            .stdout,
    ] {
        assert!(!answer.contains(API_KEY), "{answer}");
    }
    assert!(!server.log().contains(API_KEY));
    let leaks = stored_containing(&server, API_KEY);
    assert!(leaks.is_empty(), "the secret is in {leaks:?}");
}

/// The id of the deployment a `--json` request started.
fn started_id(run: &crate::harness::Run) -> String {
    run.json()["id"].as_i64().unwrap().to_string()
}

#[test]
fn a_configuration_change_is_deployed_approved_health_checked_and_rolled_back() {
    let server = Server::start();
    setup(&server);
    server
        .admin(&["env", "set", "pp", "--optional", "true"])
        .success();
    let lee = server.create_user("lee", "viewer", &["shop:lead"]);
    let _dev = start_agent(&server, "dev", "dev-1");
    let prd = start_agent(&server, "prd", "prd-1");
    configured_release(&server, "1.0.0", FERRY_TOML);
    for env in ["dev", "prd"] {
        set(&server, env, "DATABASE_URL=postgres://db/web");
        set_api_key(&server, env, "first-key");
    }
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    let first = server
        .admin(&["deploy", "web", "1.0.0", "--to", "prd", "--json"])
        .success();
    server
        .ferry(&lee, &["approve", &started_id(&first)])
        .success();
    server
        .admin(&["deployment", "show", &started_id(&first), "--wait"])
        .success();
    assert!(served(&prd.root, ".env").contains("API_KEY=first-key"));

    // Nothing new to apply yet.
    server
        .admin(&["config", "apply", "web", "--env", "prd"])
        .fails(3, "nothing to apply");

    // A new key reaches prd only through a deployment that waits for its approval.
    set_api_key(&server, "prd", "second-key");
    let asked = server
        .admin(&["config", "apply", "web", "--env", "prd", "--json"])
        .success();
    assert_eq!(asked.json()["status"], "awaiting_approval", "{asked:?}");
    assert_eq!(asked.json()["config"], 3, "{asked:?}");
    assert!(served(&prd.root, ".env").contains("API_KEY=first-key"));
    let id = started_id(&asked);
    server.ferry(&lee, &["approve", &id]).success();
    server
        .admin(&["deployment", "show", &id, "--wait"])
        .success();
    assert_eq!(current(&prd.root, "web"), "releases/1.0.0@3");
    assert!(served(&prd.root, ".env").contains("API_KEY=second-key"));

    // Rolling back goes back to the previous pair: the same release, the previous key.
    server
        .admin(&["rollback", "web", "--env", "prd", "--wait"])
        .success();
    assert_eq!(current(&prd.root, "web"), "releases/1.0.0@2");
    assert!(served(&prd.root, ".env").contains("API_KEY=first-key"));

    // A value the health check rejects: the deployment goes back by itself.
    set_api_key(&server, "prd", "broken");
    let asked = server
        .admin(&["config", "apply", "web", "--env", "prd", "--json"])
        .success();
    let id = started_id(&asked);
    server.ferry(&lee, &["approve", &id]).success();
    server
        .admin(&["deployment", "show", &id, "--wait"])
        .fails(1, "rolled_back");
    assert!(served(&prd.root, ".env").contains("API_KEY=first-key"));

    // A freeze holds configuration changes as it holds releases.
    server
        .admin(&[
            "env",
            "freeze",
            "prd",
            "--for",
            "1h",
            "--reason",
            "sale weekend",
        ])
        .success();
    set_api_key(&server, "prd", "third-key");
    server
        .admin(&["config", "apply", "web", "--env", "prd"])
        .fails(3, "frozen");
}
