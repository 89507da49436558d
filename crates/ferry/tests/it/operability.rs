//! ferry on a server and in a terminal: config files for the server and the agent (flags
//! win, then the environment, then the file), `check-config`, an agent enrolled by `ferry
//! agent enroll` and run from its config file, the version, shell completions and man pages.

use std::fs;
use std::process::{Command, Stdio};

use crate::deployments::{current, release, setup};
use crate::harness::{Agent, Run, Server, FERRY};

fn ferry(args: &[&str]) -> Run {
    Run::of(Command::new(FERRY).args(args))
}

#[test]
fn a_server_takes_its_settings_from_a_config_file_after_its_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    // The harness passes --listen 127.0.0.1:0: were the file's port taken, no server would
    // start on port 1.
    fs::write(&config, "listen = \"127.0.0.1:1\"\ntls = true\n").unwrap();
    let config = config.to_str().unwrap();

    let from_file = Server::start_with(&["--config", config]);
    assert!(from_file.url.starts_with("https://"), "{}", from_file.url);
    let from_env = Server::start_with_env(&["--config", config], &[("FERRY_TLS", "false".into())]);
    assert!(from_env.url.starts_with("http://"), "{}", from_env.url);
    let named_by_env = Server::start_with_env(&[], &[("FERRY_SERVER_CONFIG", config.into())]);
    assert!(
        named_by_env.url.starts_with("https://"),
        "{}",
        named_by_env.url
    );
}

#[test]
fn a_wrong_config_file_is_refused_with_each_problem_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("server.toml");
    fs::write(
        &config,
        "data = \"/var/lib/ferry\"\nlisen = \"0.0.0.0:7070\"\ndeploy-timeout = \"15 minutes\"\n",
    )
    .unwrap();
    let path = config.to_str().unwrap();

    let checked = ferry(&["server", "check-config", path]).fails(1, "is not valid");
    for expected in [
        format!("{path}:2:1: unknown key `lisen`"),
        "did you mean `listen`?".to_owned(),
        format!("{path}:3:18: `deploy-timeout`: invalid value '15 minutes'"),
    ] {
        assert!(
            checked.stderr.contains(&expected),
            "{expected}: {checked:#?}"
        );
    }
    // The server refuses to start on it, with the same lines, before anything is created.
    let data = dir.path().join("data");
    let started = ferry(&["server", "--config", path, "--data", data.to_str().unwrap()]);
    assert_eq!(started.code, 2, "{started:#?}");
    assert!(started
        .stderr
        .contains(&format!("{path}:2:1: unknown key `lisen`")));
    assert!(!data.exists());

    fs::write(
        &config,
        "data = \"/var/lib/ferry\"\ntls = true\ntls-name = [\"a.example\"]\n",
    )
    .unwrap();
    let valid = ferry(&["server", "check-config", path]).success();
    assert!(valid.stdout.contains("valid, 3 settings"), "{valid:#?}");
    let json = ferry(&["server", "check-config", path, "--json"])
        .success()
        .json();
    assert_eq!(json["settings"], 3);

    // What the server refuses at its start, the check refuses too.
    fs::write(&config, "listen = \"0.0.0.0:7070\"\n").unwrap();
    ferry(&["server", "check-config", path])
        .fails(1, "refusing to serve plain HTTP on 0.0.0.0:7070");
    fs::write(&config, "data = \"d\"\nheartbeat-every = \"2m\"\n").unwrap();
    ferry(&["server", "check-config", path])
        .fails(1, &format!("{path}:2:1: --heartbeat-every must be between"));
    fs::write(&config, "database = \"mysql://db/ferry\"\n").unwrap();
    ferry(&["server", "check-config", path]).fails(1, "is not a PostgreSQL URL");
    fs::write(
        &config,
        "root = \"/srv/ferry\"\nserver = \"ferry.example.com\"\n",
    )
    .unwrap();
    ferry(&["agent", "check-config", path]).fails(1, "must start with http:// or https://");
    fs::write(&config, "drift-every = \"5m\"\n").unwrap();
    ferry(&["agent", "check-config", path])
        .fails(1, "required arguments were not provided: --root <ROOT>");

    let missing = ferry(&["agent", "check-config", "/nonexistent/agent.toml"]);
    assert_eq!(missing.code, 1, "{missing:#?}");
    assert!(
        missing.stderr.contains("cannot read the config file"),
        "{missing:#?}"
    );
}

#[test]
fn an_agent_enrolled_by_its_config_file_deploys() {
    let server = Server::start();
    setup(&server);
    let root = server.dir.path().join("target-dev-1");
    let config = server.dir.path().join("agent.toml");
    fs::write(
        &config,
        format!(
            "root = \"{}\"\nserver = \"{}\"\nhooks-as-root = true\n",
            root.display(),
            server.url
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    ferry(&["agent", "check-config", config]).success();

    let token = server.enrollment_token("dev", "dev-1");
    let enrolled = ferry(&["agent", "enroll", "--config", config, &token]).success();
    assert!(
        enrolled.stdout.contains("enrolled as target dev-1"),
        "{enrolled:#?}"
    );
    ferry(&["agent", "enroll", "--config", config, &token]).fails(1, "is enrolled already");
    assert_eq!(crate::harness::mode(&root.join(".ferry")), 0o700);

    let agent = Agent {
        child: Command::new(FERRY)
            .args(["agent", "--config", config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        root: root.clone(),
    };
    release(&server, "1.0.0", "");
    server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait"])
        .success();
    assert_eq!(current(&agent.root, "web"), "releases/1.0.0");
}

#[test]
fn the_version_names_its_commit_and_build_date() {
    let version = ferry(&["--version"]).success().stdout;
    let (name, rest) = version.trim().split_once(' ').unwrap();
    assert_eq!(name, "ferry");
    let (semver, stamp) = rest.split_once(' ').unwrap();
    assert_eq!(semver, env!("CARGO_PKG_VERSION"));
    let stamp = stamp.trim_start_matches('(').trim_end_matches(')');
    let (commit, date) = stamp
        .split_once(", built ")
        .unwrap_or_else(|| panic!("{version}"));
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if head.status.success() {
        assert_eq!(
            commit,
            String::from_utf8_lossy(&head.stdout).trim(),
            "{version}"
        );
    }
    assert!(
        date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        "{version}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_command_line() {
    let bash = ferry(&["completions", "bash"]).success().stdout;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ferry.bash");
    fs::write(&script, &bash).unwrap();
    // The script loads, registers itself for `ferry`, and offers the subcommands.
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p ferry && COMP_WORDS=(ferry serv) COMP_CWORD=1 \
             && _ferry ferry serv ferry && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        loaded.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert!(said.lines().any(|l| l == "server"), "{said}");
    for shell in ["zsh", "fish"] {
        let script = ferry(&["completions", shell]).success().stdout;
        assert!(script.contains("check-config"), "{shell}: {script}");
    }
    ferry(&["completions", "tcsh"]).fails(2, "invalid value 'tcsh'");

    let man = dir.path().join("man1");
    let written = ferry(&["man", "--out", man.to_str().unwrap()]).success();
    assert!(written.stdout.contains("man pages written"), "{written:#?}");
    for page in [
        "ferry.1",
        "ferry-server.1",
        "ferry-server-check-config.1",
        "ferry-deploy.1",
    ] {
        let roff = fs::read_to_string(man.join(page)).unwrap();
        assert!(roff.starts_with(".ie \\n(.g .ds Aq"), "{page}: {roff}");
    }
    let deploy = fs::read_to_string(man.join("ferry-deploy.1")).unwrap();
    assert!(deploy.contains("ferry deploy"), "{deploy}");
    assert!(deploy.contains("break\\-glass"), "{deploy}");
    assert!(!man.join("ferry-help.1").exists());
}

/// libfaketime, which sets one process's clock (Debian's `faketime`).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn the_doctor_finds_a_wrong_token_a_stopped_agent_a_wrong_ca_and_a_skewed_clock() {
    let server = Server::start_with(&["--tls", "--heartbeat-every", "1s"]);
    let other = Server::start_with(&["--tls"]);
    let agent = crate::deployments::start_agent(&server, "dev", "dev-1");
    server.admin(&["target", "enroll", "pp", "pp-1"]).success();

    let healthy = server.admin(&["doctor"]).success().stdout;
    for expected in [
        "ok       server  https://",
        "ok       tls     the server's certificate is from the CA in ",
        "ok       clock   this machine's clock agrees with the server's",
        "ok       token   valid: you are admin (role admin)",
        "ok       agents  1 of 2 targets online",
        "warning  agent   pp-1 (pp) is not enrolled",
    ] {
        assert!(healthy.contains(expected), "{expected}: {healthy}");
    }
    let json = server.admin(&["doctor", "--json"]).success().json();
    assert_eq!(json["findings"][0]["verdict"], "ok");

    let wrong_token = server
        .ferry("not-a-token", &["doctor"])
        .fails(1, "1 problem found");
    assert!(wrong_token
        .stdout
        .contains("problem  token   the server refuses this token"));
    assert!(wrong_token.stdout.contains("fix: the token was rotated"));
    assert!(
        wrong_token
            .stdout
            .contains("put it in FERRY_TOKEN, which holds the refused one"),
        "{wrong_token:#?}"
    );
    // Without a token, what needs none is still checked.
    let tokenless = Run::of(
        Command::new(FERRY)
            .arg("doctor")
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_CONFIG", server.dir.path().join("no-login.toml"))
            .env("FERRY_CA_CERT", server.data_dir().join("tls/ca.pem")),
    )
    .fails(1, "1 problem found");
    assert!(
        tokenless.stdout.contains("ok       server"),
        "{tokenless:#?}"
    );
    assert!(
        tokenless.stdout.contains("problem  token   no API token"),
        "{tokenless:#?}"
    );

    // Another server's CA: the client is pinned to the wrong one, and is told which it met.
    let wrong_ca = Run::of(
        Command::new(FERRY)
            .arg("doctor")
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_TOKEN", &server.admin_token)
            .env("FERRY_CONFIG", server.dir.path().join("config.toml"))
            .env("FERRY_CA_CERT", other.data_dir().join("tls/ca.pem")),
    )
    .fails(1, "1 problem found");
    let presented = crate::tls::logged_fingerprint(&server);
    let pinned = crate::tls::logged_fingerprint(&other);
    for expected in [
        "problem  tls     pinning mismatch: the server's certificate is from the CA with fingerprint",
        &presented,
        &pinned,
        "copy DATA/tls/ca.pem from the server",
    ] {
        assert!(wrong_ca.stdout.contains(expected), "{expected}: {wrong_ca:#?}");
    }

    // A stopped agent is offline once it missed three heartbeats.
    drop(agent);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stopped = loop {
        let run = server.admin(&["doctor"]);
        if run.stdout.contains("dev-1 (dev) is offline") {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "{run:#?}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert_eq!(stopped.code, 1, "{stopped:#?}");
    assert!(
        stopped.stdout.contains("fix: on dev-1: start the agent"),
        "{stopped:#?}"
    );

    if !std::path::Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var_os("FERRY_TEST_REQUIRE_FAKETIME").is_none(),
            "FERRY_TEST_REQUIRE_FAKETIME is set, but {LIBFAKETIME} is missing"
        );
        eprintln!("skipped the clock: it needs libfaketime (apt-get install faketime)");
        return;
    }
    let mut skewed = Command::new(FERRY);
    skewed
        .arg("doctor")
        .env("FERRY_SERVER", &server.url)
        .env("FERRY_TOKEN", &server.admin_token)
        .env("FERRY_CONFIG", server.dir.path().join("config.toml"))
        .env("FERRY_CA_CERT", server.data_dir().join("tls/ca.pem"))
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", "+90s")
        .env("DONT_FAKE_MONOTONIC", "1");
    let skewed = Run::of(&mut skewed);
    assert!(
        skewed
            .stdout
            .contains("problem  clock   this machine's clock is about 1m30s ahead of the server's"),
        "{skewed:#?}"
    );
}

/// Asks for the desired state as an agent whose headers are `headers`.
async fn desired_as(server: &Server, credential: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .get(format!("{}/api/v1/agent/desired", server.url))
        .bearer_auth(credential);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn agents_say_their_version_and_the_server_refuses_a_protocol_it_does_not_speak() {
    let server = Server::start();
    let token = server.enrollment_token("dev", "dev-1");
    let enrolled: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/agent/enroll", server.url))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential = enrolled["credential"].as_str().unwrap();

    // An agent of the versions before agents said which they are: served, as protocol 1.
    let (status, _) = desired_as(&server, credential, &[]).await;
    assert_eq!(status, 200);
    for (protocol, code, says) in [
        ("0", "agent_too_old", "upgrade ferry on this target"),
        (
            "999",
            "server_too_old",
            "upgrade the server first, then its agents",
        ),
    ] {
        let headers = [
            ("ferry-agent-protocol", protocol),
            ("ferry-agent-version", "0.0.1"),
        ];
        let (status, body) = desired_as(&server, credential, &headers).await;
        assert_eq!(status, 426, "{body}");
        assert!(body.contains(code) && body.contains(says), "{body}");
        assert!(
            body.contains("this agent (ferry 0.0.1, agent protocol"),
            "{body}"
        );
    }

    // A real agent says its version and its disk, which `ferry target list` shows.
    let root = server.dir.path().join("target-dev-2");
    let _agent = crate::deployments::start_agent_at(&server, "dev", "dev-2", &root);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let listed = loop {
        let listed = server.admin(&["target", "list", "--json"]).success().json();
        let said = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "dev-2")
            .is_some_and(|t| t.get("agent").is_some());
        if said {
            break listed;
        }
        assert!(std::time::Instant::now() < deadline, "{listed}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let dev_2 = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "dev-2")
        .unwrap();
    assert_eq!(dev_2["agent"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(dev_2["agent"]["protocol"], 1);
    let (free, total) = (&dev_2["agent"]["disk_free"], &dev_2["agent"]["disk_total"]);
    assert!(free.as_u64().unwrap() <= total.as_u64().unwrap() && total.as_u64().unwrap() > 0);
    let table = server.admin(&["target", "list"]).success().stdout;
    assert!(
        table.contains("AGENT") && table.contains("DISK FREE"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dev-2") && l.contains(env!("CARGO_PKG_VERSION"))),
        "{table}"
    );
}

#[test]
fn status_and_a_deployment_are_drawn_again_with_watch() {
    let server = Server::start();
    setup(&server);
    let _agent = crate::deployments::start_agent(&server, "dev", "dev-1");
    release(&server, "1.0.0", "");
    let deployed = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--json"])
        .success()
        .json();
    let id = deployed["id"].to_string();

    // A deployment is drawn until it finishes, then the command ends as --wait does.
    let watched = server
        .admin(&["deployment", "show", &id, "--watch", "200ms"])
        .success();
    assert!(watched
        .stdout
        .contains(&format!("every 200ms: ferry deployment show {id}")));
    assert!(watched.stdout.contains("succeeded"), "{watched:#?}");

    // The status is drawn until stopped: two views in a second.
    let mut status = Command::new(FERRY);
    status
        .args(["status", "--watch", "300ms"])
        .env("FERRY_SERVER", &server.url)
        .env("FERRY_TOKEN", &server.admin_token)
        .env("FERRY_CONFIG", server.dir.path().join("config.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = status.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let views = String::from_utf8_lossy(&out.stdout);
    assert!(
        views.matches("every 300ms: ferry status").count() >= 2,
        "{views}"
    );
    assert!(views.contains("web"), "{views}");

    server
        .admin(&["status", "--watch", "--json"])
        .fails(2, "--watch draws a view again and again");
}

#[test]
fn the_dashboard_renders_the_api_reference_from_the_openapi_document() {
    use crate::dashboard::{set_password, Web, PASSWORD};
    let server = Server::start();
    set_password(&server, &server.admin_token);
    let web = Web::log_in(&server, &[("user", "admin"), ("password", PASSWORD)]).unwrap();
    let page = web.get("/api/docs");
    assert_eq!(page.status, 200, "{page:?}");
    let openapi: serde_json::Value =
        serde_json::from_str(&web.get("/api/v1/openapi.json").body).unwrap();
    // Every operation and every schema of the document is on the page.
    let paths = openapi["paths"].as_object().unwrap();
    assert!(paths.len() > 50, "{}", paths.len());
    for path in paths.keys() {
        let shown = format!("<code>{}</code>", path.replace('&', "&amp;"));
        assert!(page.body.contains(&shown), "{path} is not on the page");
    }
    for schema in openapi["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            page.body.contains(&format!("id=\"schema-{schema}\"")),
            "{schema}"
        );
    }
    assert!(
        page.body.contains("aria-current=\"page\">API</a>"),
        "{}",
        page.body
    );

    // Like every page of the dashboard, it is for people logged in.
    use std::io::{Read, Write};
    let address = server.url.trim_start_matches("http://");
    let mut anonymous = std::net::TcpStream::connect(address).unwrap();
    write!(
        anonymous,
        "GET /api/docs HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    anonymous.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    assert!(
        answer.to_lowercase().contains("location: /login"),
        "{answer}"
    );
}
