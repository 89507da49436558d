//! Configuration per application and environment through the binary: revisions, secrets
//! masked and encrypted at rest (found nowhere on the server's disk, in its log or in its
//! answers but `--reveal`), what each role may do, another team seeing nothing, and the
//! secret key rotated with every value still readable.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::deployments::setup;
use crate::harness::{Run, Server};

const SECRET: &str = "sk-live-5ecret-4242-do-not-leak";

/// `ferry ARGS` as the admin with `input` on standard input.
pub(crate) fn admin_with_input(server: &Server, args: &[&str], input: &str) -> Run {
    with_input(server, &server.admin_token, args, input)
}

/// `ferry ARGS` with `token` and `input` on standard input.
pub(crate) fn with_input(server: &Server, token: &str, args: &[&str], input: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_SERVER", &server.url)
        .env("FERRY_TOKEN", token)
        .env("FERRY_CONFIG", server.dir.path().join("config.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The entries of `web`'s configuration in `env` as `ferry config show --json` gives them,
/// `key → value` (`null` for a masked secret).
fn shown(server: &Server, token: &str, env: &str, extra: &[&str]) -> Value {
    let mut args = vec!["config", "show", "web", "--env", env, "--json"];
    args.extend(extra);
    let view = server.ferry(token, &args).success().json();
    let mut entries = serde_json::Map::new();
    for entry in view["entries"].as_array().unwrap() {
        entries.insert(
            entry["key"].as_str().unwrap().to_owned(),
            entry["value"].clone(),
        );
    }
    Value::Object(entries)
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = fs::read(&path) {
                if bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
                {
                    found.push(path.display().to_string());
                }
            }
        }
    }
    found
}

#[test]
fn values_per_environment_in_revisions_with_secrets_masked_and_sealed() {
    let server = Server::start();
    setup(&server);
    let developer = server.create_user("dana", "developer", &["shop"]);
    let viewer = server.create_user("vic", "viewer", &["shop"]);
    server.admin(&["team", "create", "blog"]).success();
    let stranger = server.create_user("olga", "developer", &["blog"]);

    // dev and prd get their own values; the secret is read from standard input.
    let set = server
        .ferry(
            &developer,
            &[
                "config",
                "set",
                "web",
                "--env",
                "dev",
                "DATABASE_URL=postgres://dev-db/web",
                "FEATURE_X=on",
            ],
        )
        .success();
    assert!(set.stdout.contains("revision 1"), "{set:#?}");
    assert!(
        set.stdout.contains("ferry config apply web --env dev"),
        "{set:#?}"
    );
    let set_prd_database = || {
        server.admin(&[
            "config",
            "set",
            "web",
            "--env",
            "prd",
            "DATABASE_URL=postgres://prd-db/web",
        ])
    };
    set_prd_database().success();
    let secret = admin_with_input(
        &server,
        &[
            "config", "set", "web", "--env", "prd", "--secret", "API_KEY",
        ],
        &format!("{SECRET}\n"),
    )
    .success();
    assert!(
        secret.stdout.contains("API_KEY added (secret)"),
        "{secret:#?}"
    );
    assert!(!secret.stdout.contains(SECRET) && !secret.stderr.contains(SECRET));
    // Nothing to read (a failed `cat`, an empty variable echoed) is no empty secret.
    for nothing in ["", "\n"] {
        admin_with_input(
            &server,
            &[
                "config",
                "set",
                "web",
                "--env",
                "prd",
                "--secret",
                "OTHER_KEY",
            ],
            nothing,
        )
        .fails(2, "the value of OTHER_KEY is empty");
    }

    // Shown masked to everyone of the team, in people's words and in JSON.
    let prd = shown(&server, &viewer, "prd", &[]);
    assert_eq!(prd["DATABASE_URL"], "postgres://prd-db/web");
    assert_eq!(prd["API_KEY"], Value::Null);
    let table = server
        .ferry(&viewer, &["config", "show", "web", "--env", "prd"])
        .success();
    assert!(table.stdout.contains("(secret)") && !table.stdout.contains(SECRET));

    // Set again without --secret, it stays a secret; the same value again changes nothing.
    admin_with_input(
        &server,
        &["config", "set", "web", "--env", "prd", "API_KEY"],
        SECRET,
    )
    .success();
    assert_eq!(shown(&server, &viewer, "prd", &[])["API_KEY"], Value::Null);
    let same = set_prd_database().success();
    assert!(same.stdout.contains("nothing changed"), "{same:#?}");

    // History: who, which keys, how; the diff names keys only.
    let history = server
        .ferry(
            &viewer,
            &["config", "history", "web", "--env", "prd", "--json"],
        )
        .success()
        .json();
    let revisions: Vec<(u64, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let changes: Vec<String> = r["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    format!(
                        "{} {}",
                        c["key"].as_str().unwrap(),
                        c["change"].as_str().unwrap()
                    )
                })
                .collect();
            (r["revision"].as_u64().unwrap(), changes.join(","))
        })
        .collect();
    assert_eq!(
        revisions,
        vec![
            (2, "API_KEY added".to_owned()),
            (1, "DATABASE_URL added".to_owned())
        ]
    );
    let diff = server
        .ferry(&viewer, &["config", "diff", "web", "dev", "prd", "--json"])
        .success()
        .json();
    assert_eq!(diff["only_in_first"], serde_json::json!(["FEATURE_X"]));
    assert_eq!(diff["only_in_second"], serde_json::json!(["API_KEY"]));
    assert_eq!(diff["differ"], serde_json::json!(["DATABASE_URL"]));

    // Values from a file; unset; what is refused and why, changing nothing.
    let env_file = server.dir.path().join("dev.env");
    fs::write(
        &env_file,
        "# dev settings\nexport CACHE_URL='redis://dev-cache:6379'\nWORKERS=2\n",
    )
    .unwrap();
    server
        .ferry(
            &developer,
            &[
                "config",
                "set",
                "web",
                "--env",
                "dev",
                "--from-env-file",
                env_file.to_str().unwrap(),
            ],
        )
        .success();
    assert_eq!(
        shown(&server, &developer, "dev", &[])["CACHE_URL"],
        "redis://dev-cache:6379"
    );
    server
        .ferry(
            &developer,
            &["config", "unset", "web", "--env", "dev", "WORKERS"],
        )
        .success();
    server
        .ferry(
            &developer,
            &["config", "unset", "web", "--env", "dev", "WORKERS"],
        )
        .fails(3, "WORKERS is not set");
    server
        .ferry(
            &developer,
            &["config", "set", "web", "--env", "dev", "lower=1"],
        )
        .fails(2, "capital letters");
    server
        .ferry(&developer, &["config", "set", "web", "--env", "qa", "A=1"])
        .fails(1, "no environment named \"qa\"");

    // Roles: a viewer may look, not change; only an admin reads a secret back; another
    // team's developer does not even see the application.
    server
        .ferry(&viewer, &["config", "set", "web", "--env", "dev", "A=1"])
        .fails(3, "changing configuration needs deploy on \"dev\"");
    server
        .ferry(
            &developer,
            &["config", "show", "web", "--env", "prd", "--reveal"],
        )
        .fails(3, "only admins may read back a secret's value");
    for args in [
        &["config", "show", "web", "--env", "prd"][..],
        &["config", "history", "web", "--env", "prd"],
        &["config", "diff", "web", "dev", "prd"],
        &["config", "set", "web", "--env", "dev", "A=1"],
    ] {
        server
            .ferry(&stranger, args)
            .fails(1, "no application named \"web\"");
    }
    let revealed = shown(&server, &server.admin_token, "prd", &["--reveal"]);
    assert_eq!(revealed["API_KEY"], SECRET);
    let audit = server.admin(&["audit", "--json"]).success();
    let actions: Vec<String> = audit
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.iter().any(|a| a == "config.reveal"), "{actions:?}");
    assert!(actions.iter().filter(|a| *a == "config.change").count() >= 5);

    // The secret is nowhere but in the one answer that revealed it: not in the audit
    // trail, the server's log, its database or its blobs.
    assert!(!audit.stdout.contains(SECRET));
    assert!(!server.log().contains(SECRET));
    let leaks = stored_containing(&server, SECRET);
    assert!(leaks.is_empty(), "the secret is in {leaks:?}");
    // The search finds what is there: a plain value is stored as it is.
    assert!(!stored_containing(&server, "postgres://prd-db/web").is_empty());
}

/// Where `needle` is in what the server stores: files of its data directory (the SQLite
/// database and its journal, blobs, keys) and, on PostgreSQL, a dump of its database.
pub(crate) fn stored_containing(server: &Server, needle: &str) -> Vec<String> {
    let mut found = files_containing(&server.data_dir(), needle);
    if let Some(url) = server.database_url() {
        let dump = Command::new("pg_dump").arg(&url).output().unwrap();
        assert!(dump.status.success(), "pg_dump: {dump:?}");
        if String::from_utf8_lossy(&dump.stdout).contains(needle) {
            found.push(format!("the PostgreSQL database {url}"));
        }
    }
    found
}

/// Sets `API_KEY` to [`SECRET`] in `web`'s prd configuration.
fn set_secret(server: &Server) {
    admin_with_input(
        server,
        &[
            "config", "set", "web", "--env", "prd", "--secret", "API_KEY",
        ],
        SECRET,
    )
    .success();
}

fn revealed(server: &Server) -> Value {
    shown(server, &server.admin_token, "prd", &["--reveal"])["API_KEY"].clone()
}

#[test]
fn rotating_the_secret_key_seals_every_secret_again() {
    let server = Server::start();
    setup(&server);
    set_secret(&server);
    server
        .admin(&["config", "set", "web", "--env", "dev", "DEBUG=1"])
        .success();
    let url = server.database_url();
    let rotate = |data: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
        command
            .args(["server", "rotate-secret-key", "--json", "--data"])
            .arg(data);
        if let Some(url) = &url {
            command.args(["--database", url]);
        }
        Run::of(&mut command)
    };
    let data = server.data_dir();
    if url.is_none() {
        rotate(&data).fails(1, "a server is running on");
    }
    let (_, dir, _) = server.stop();
    let old_key = fs::read_to_string(data.join("secret-key")).unwrap();

    let rotated = rotate(&data).success().json();
    assert_eq!(rotated["revisions"], 1, "{rotated}");
    let new_key = fs::read_to_string(data.join("secret-key")).unwrap();
    assert_ne!(new_key, old_key);
    let retired = data.join(format!(
        "secret-key.retired-{}",
        rotated["previous_key_id"].as_str().unwrap()
    ));
    assert_eq!(fs::read_to_string(&retired).unwrap(), old_key);

    // The old key no longer opens the database: a server started with it says so.
    let old_key_file = dir.path().join("old-secret-key");
    fs::write(&old_key_file, &old_key).unwrap();
    let mut with_old = crate::harness::server_command(&data);
    with_old.arg("--secret-key").arg(&old_key_file);
    if let Some(url) = &url {
        with_old.args(["--database", url]);
    }
    let refused = Run::of(&mut with_old);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "the database's secrets are sealed with secret key {}",
            rotated["key_id"].as_str().unwrap()
        )),
        "{refused:?}"
    );

    // With the new key every value reads as before, and the rotation is in the trail.
    let server = Server::start_in(dir);
    assert_eq!(revealed(&server), SECRET);
    assert_eq!(
        shown(&server, &server.admin_token, "dev", &[])["DEBUG"],
        "1"
    );
    let audit = server.admin(&["audit", "--json"]).success().stdout;
    assert!(audit.contains("config.reseal"), "{audit}");
    assert!(stored_containing(&server, SECRET).is_empty());
}

#[test]
fn servers_sharing_a_database_share_the_secret_key() {
    let Some(first) = Server::start_on_postgres(&[]) else {
        return;
    };
    let second = first.start_peer(&[]);
    setup(&first);
    set_secret(&first);
    assert_eq!(revealed(&second), SECRET);
    // A server without the key file refuses to start, naming the key it needs.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut without_key = crate::harness::server_command(elsewhere.path());
    without_key
        .env("FERRY_DATABASE", first.database_url().unwrap())
        .arg("--audit-key")
        .arg(first.data_dir().join("audit-key"));
    let refused = Run::of(&mut without_key);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("is missing, but the database's secrets are sealed with secret key")
            && refused.stderr.contains("--secret-key FILE"),
        "{refused:?}"
    );
}
