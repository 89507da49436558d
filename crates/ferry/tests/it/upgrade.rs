//! Upgrades: this version started on the state the previous version left, as SQLite in a
//! data directory and as a PostgreSQL database (fixtures made by that version's own binary,
//! `tests/fixtures/make-previous-version.sh`), with the agents' roots it left; what
//! `--check-upgrade` says before and after; and a database a newer version wrote, refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::deployments::{current, site};
use crate::harness::{postgres_database, Run, Server, FERRY};

/// The version the fixtures were made with.
const PREVIOUS: &str = "0.1.0";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The previous version's data directory (with its agents' roots in `targets/`), unpacked
/// into `dir`.
fn previous_data(dir: &Path) -> PathBuf {
    let archive = fixture(&format!("previous-{PREVIOUS}.tar.zst"));
    Run::of(
        Command::new("tar")
            .args(["--zstd", "-xf"])
            .arg(&archive)
            .arg("-C")
            .arg(dir),
    )
    .success();
    dir.join("data")
}

fn check_upgrade(data: &Path, database: Option<&str>) -> Run {
    let mut command = Command::new(FERRY);
    command
        .args(["server", "--check-upgrade", "--data"])
        .arg(data);
    if let Some(url) = database {
        command.args(["--database", url]);
    }
    Run::of(&mut command)
}

/// The previous version's agents, on the roots it left, told the server's new address
/// (`--server`), as after moving the server: each keeps the new address from then on.
fn previous_agents(server: &Server, targets: &Path) -> Vec<crate::harness::Agent> {
    ["dev", "pp", "prd"]
        .iter()
        .map(|env| {
            let root = targets.join(env);
            let child = Command::new(FERRY)
                .args([
                    "agent",
                    "--hooks-as-root",
                    "--server",
                    &server.url,
                    "--root",
                ])
                .arg(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            crate::harness::Agent { child, root }
        })
        .collect()
}

/// What a server of this version must find in the previous version's state, and do with it.
fn works_on_previous_state(server: &Server, targets: &Path) {
    server.admin(&["audit", "verify"]).success();
    let releases = server.admin(&["release", "list", "hello"]).success().stdout;
    assert!(
        releases.contains("1.0.0") && releases.contains("1.1.0"),
        "{releases}"
    );
    let status = server.admin(&["status", "--json"]).success().stdout;
    assert!(status.contains("1.1.0"), "{status}");
    server.admin(&["server", "fsck"]).success();

    // The agents it left deploy a release made now, and say which version they are.
    let agents = previous_agents(server, targets);
    let dir = tempfile::tempdir().unwrap();
    let tree = site(dir.path(), "2.0.0", "");
    server
        .admin(&[
            "release",
            "create",
            "hello",
            "2.0.0",
            "--from",
            tree.to_str().unwrap(),
        ])
        .success();
    server
        .admin(&["deploy", "hello", "2.0.0", "--to", "dev", "--wait"])
        .success();
    assert_eq!(current(&targets.join("dev"), "hello"), "releases/2.0.0");
    let kept = fs::read_to_string(agents[0].root.join(".ferry/agent.toml")).unwrap();
    assert!(
        kept.contains(&format!("server = \"{}\"", server.url)),
        "{kept}"
    );
    let listed = server.admin(&["target", "list"]).success().stdout;
    assert!(
        listed
            .lines()
            .filter(|l| l.contains(env!("CARGO_PKG_VERSION")))
            .count()
            == 3,
        "{listed}"
    );
}

#[test]
fn this_version_starts_on_the_previous_versions_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = previous_data(dir.path());

    let before = check_upgrade(&data, None).success().stdout;
    assert!(before.contains("starting applies 1 more"), "{before}");
    assert!(
        before.contains("What each target's agent last said of itself"),
        "{before}"
    );

    let server = Server::start_on_data(&data, None, &[], &[]);
    works_on_previous_state(&server, &data.join("targets"));
    drop(server);

    let after = check_upgrade(&data, None).success().stdout;
    assert!(after.contains("nothing to change"), "{after}");
}

#[test]
fn this_version_starts_on_the_previous_versions_postgresql_database() {
    let Some(database) = postgres_database() else {
        return;
    };
    let loaded = Run::of(
        Command::new("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &database.url, "-f"])
            .arg(fixture(&format!("previous-{PREVIOUS}.sql")))
            .stdout(Stdio::null()),
    );
    assert_eq!(loaded.code, 0, "{loaded:#?}");
    let dir = tempfile::tempdir().unwrap();
    // The keys and the agents' roots come with the data directory; the state is in the dump.
    let data = previous_data(dir.path());
    for file in ["ferry.db", "ferry.db-wal", "ferry.db-shm"] {
        let _ = fs::remove_file(data.join(file));
    }

    let before = check_upgrade(&data, Some(&database.url)).success().stdout;
    assert!(before.contains("starting applies 1 more"), "{before}");

    let server = Server::start_on_data(&data, Some(database.clone()), &[], &[]);
    works_on_previous_state(&server, &data.join("targets"));
    drop(server);
    let after = check_upgrade(&data, Some(&database.url)).success().stdout;
    assert!(after.contains("nothing to change"), "{after}");
}

#[test]
fn a_database_a_newer_version_wrote_is_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_on_data(&data, None, &[], &[]);
    drop(server);
    // What a newer version's first schema change would leave.
    let url = format!("sqlite://{}", data.join("ferry.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, \
             checksum, execution_time) VALUES (9999, 'later', CURRENT_TIMESTAMP, 1, x'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    });
    let checked = check_upgrade(&data, None);
    assert_eq!(checked.code, 1, "{checked:#?}");
    assert!(
        checked.stdout.contains("cannot start")
            && checked
                .stdout
                .contains("written by a newer ferry (schema change 9999"),
        "{checked:#?}"
    );
    let started = Run::of(
        Command::new(FERRY)
            .args(["server", "--listen", "127.0.0.1:0", "--data"])
            .arg(&data),
    );
    assert_eq!(started.code, 1, "{started:#?}");
    assert!(
        started.stderr.contains("written by a newer ferry"),
        "{started:#?}"
    );
}
