//! `ferry server --tls`: the server's own CA in DATA/tls, clients trusting it with
//! `--ca-cert`, agents pinning it through the enrollment token, and the refusal to serve plain
//! HTTP beyond loopback.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{mode, Agent, Run, Server, FERRY};

/// The fingerprint the server logged for its CA.
pub(crate) fn logged_fingerprint(server: &Server) -> String {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("SHA-256 fingerprint"))
        .unwrap_or_else(|| panic!("no fingerprint in the log: {log}"));
    let at = line.find("fingerprint ").unwrap() + "fingerprint ".len();
    line[at..at + 64].to_owned()
}

/// The SHA-256 of the first certificate in a PEM file, hex: the DER is the base64 between
/// the PEM markers.
fn pem_fingerprint(path: &Path) -> String {
    let pem = fs::read_to_string(path).unwrap();
    let base64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = Run::of(
        Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s '{base64}' | base64 -d | sha256sum")),
    )
    .success();
    der.stdout.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_tls_server_makes_its_ca_once_and_clients_need_it() {
    let server = Server::start_with(&["--tls"]);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let tls = server.data_dir().join("tls");
    for file in ["ca.pem", "server.pem", "server.key"] {
        assert!(tls.join(file).is_file(), "{file} is missing");
    }
    assert_eq!(mode(&tls.join("server.key")), 0o600);
    let fingerprint = logged_fingerprint(&server);
    assert_eq!(fingerprint, pem_fingerprint(&tls.join("ca.pem")));
    assert!(server.log().contains("ca.pem"), "{}", server.log());

    // With the CA (here through FERRY_CA_CERT, set by the harness) and with --ca-cert.
    server.admin(&["team", "create", "shop"]).success();
    let ca = tls.join("ca.pem");
    let listed = Run::of(
        Command::new(FERRY)
            .args(["--ca-cert", ca.to_str().unwrap(), "team", "list", "--json"])
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_TOKEN", &server.admin_token)
            .env("FERRY_CONFIG", server.dir.path().join("config.toml"))
            .env_remove("FERRY_CA_CERT"),
    )
    .success()
    .json();
    assert_eq!(listed[0]["name"], "shop", "{listed}");

    // Without it the certificate is not trusted, and the error says what to do.
    let refused = Run::of(
        Command::new(FERRY)
            .args(["team", "list"])
            .env("FERRY_SERVER", &server.url)
            .env("FERRY_TOKEN", &server.admin_token)
            .env("FERRY_CONFIG", server.dir.path().join("config.toml"))
            .env_remove("FERRY_CA_CERT"),
    );
    let refused = refused.fails(1, "certificate");
    assert!(refused.stderr.contains("--ca-cert"), "{refused:?}");

    // `ferry login --ca-cert` stores it for later commands.
    let config = server.dir.path().join("login.toml");
    let client = |args: &[&str]| {
        Run::of(
            Command::new(FERRY)
                .args(args)
                .env("FERRY_CONFIG", &config)
                .env_remove("FERRY_SERVER")
                .env_remove("FERRY_TOKEN")
                .env_remove("FERRY_CA_CERT"),
        )
    };
    client(&[
        "login",
        "--server",
        &server.url,
        "--token",
        &server.admin_token,
        "--ca-cert",
        ca.to_str().unwrap(),
    ])
    .success();
    client(&["team", "list"]).success();

    // A restart keeps the CA and the certificate.
    let leaf = fs::read(tls.join("server.pem")).unwrap();
    let (status, dir, _) = server.stop();
    assert!(status.success());
    let again = Server::start_in_with(dir, &["--tls"]);
    assert_eq!(logged_fingerprint(&again), fingerprint);
    assert_eq!(fs::read(tls_of(&again).join("server.pem")).unwrap(), leaf);
    again.admin(&["team", "list"]).success();

    // Asking for another name issues a new certificate from the same CA.
    let (_, dir, _) = again.stop();
    let renamed = Server::start_in_with(dir, &["--tls", "--tls-name", "ferry.example.org"]);
    assert_eq!(logged_fingerprint(&renamed), fingerprint);
    assert_ne!(fs::read(tls_of(&renamed).join("server.pem")).unwrap(), leaf);
    renamed.admin(&["team", "list"]).success();
}

fn tls_of(server: &Server) -> PathBuf {
    server.data_dir().join("tls")
}

fn agent(server: &Server, root: &Path, token: &str) -> Command {
    let mut command = Command::new(FERRY);
    command
        .args(["agent", "--hooks-as-root", "--root"])
        .arg(root)
        .args(["--server", &server.url, "--enroll", token])
        .env_remove("FERRY_CA_CERT")
        .stdin(Stdio::null());
    command
}

#[test]
fn an_agent_pins_the_servers_ca_from_its_token_and_deploys() {
    let server = Server::start_with(&["--tls"]);
    let fingerprint = logged_fingerprint(&server);
    server.admin(&["team", "create", "shop"]).success();
    server
        .admin(&["app", "create", "web", "--team", "shop"])
        .success();

    let token = server.enrollment_token("dev", "dev-1");
    let (bare, pin) = token.split_once('.').expect("TOKEN.FINGERPRINT");
    assert_eq!(pin, fingerprint);

    // A token whose fingerprint was altered: refused, nothing written.
    let last = pin.chars().last().unwrap();
    let other = if last == '0' { '1' } else { '0' };
    let forged = format!("{bare}.{}{other}", &pin[..63]);
    let root = server.dir.path().join("target-dev-1");
    let run = Run::of(agent(&server, &root, &forged).stdout(Stdio::null()));
    let run = run.fails(1, "certificate fingerprint");
    assert!(
        run.stderr.contains(&forged[forged.len() - 64..]) && run.stderr.contains(pin),
        "both fingerprints: {run:?}"
    );
    assert!(!root.join(".ferry/agent.toml").exists());

    // The real token still works: the refused attempt never reached the server.
    let child = agent(&server, &root, &token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent {
        child,
        root: root.clone(),
    };
    let site = server.dir.path().join("site");
    fs::create_dir_all(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>over TLS</h1>\n").unwrap();
    server
        .admin(&[
            "release",
            "create",
            "web",
            "1.0.0",
            "--from",
            site.to_str().unwrap(),
        ])
        .success();
    let done = server
        .admin(&["deploy", "web", "1.0.0", "--to", "dev", "--wait", "--json"])
        .success()
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        fs::read_to_string(agent.root.join("apps/web/current/index.html")).unwrap(),
        "<h1>over TLS</h1>\n"
    );
    let state = fs::read_to_string(agent.root.join(".ferry/agent.toml")).unwrap();
    assert!(state.contains(&fingerprint), "the pin is kept: {state}");
    assert!(state.contains("https://"), "{state}");

    // Started again with only --root, the agent pins the CA from agent.toml.
    drop(agent);
    let child = Command::new(FERRY)
        .args(["agent", "--hooks-as-root", "--root"])
        .arg(&root)
        .env_remove("FERRY_CA_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent { child, root };
    fs::write(site.join("index.html"), "<h1>again</h1>\n").unwrap();
    server
        .admin(&[
            "release",
            "create",
            "web",
            "1.0.1",
            "--from",
            site.to_str().unwrap(),
        ])
        .success();
    server
        .admin(&["deploy", "web", "1.0.1", "--to", "dev", "--wait"])
        .success();
    assert_eq!(
        fs::read_to_string(agent.root.join("apps/web/current/index.html")).unwrap(),
        "<h1>again</h1>\n"
    );

    // Another server at the address (here: a pin that no longer matches): the agent stops
    // with the reason instead of retrying for ever, and serves what it served.
    let root = agent.root.clone();
    drop(agent);
    let state_file = root.join(".ferry/agent.toml");
    let state = fs::read_to_string(&state_file).unwrap();
    fs::write(
        &state_file,
        state.replace(pin, &forged[forged.len() - 64..]),
    )
    .unwrap();
    let run = Run::of(
        Command::new(FERRY)
            .args(["agent", "--hooks-as-root", "--root"])
            .arg(&root)
            .env_remove("FERRY_CA_CERT")
            .stdin(Stdio::null()),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("error: the server at")
            && run
                .stderr
                .contains("is not the one this target enrolled with")
            && run.stderr.contains(pin),
        "the reason, with the presented fingerprint: {run:?}"
    );
    assert_eq!(
        fs::read_to_string(root.join("apps/web/current/index.html")).unwrap(),
        "<h1>again</h1>\n"
    );
}

#[test]
fn plain_http_beyond_loopback_needs_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let refused = Run::of(
        Command::new(FERRY)
            .args(["server", "--listen", "0.0.0.0:0", "--data"])
            .arg(dir.path().join("data")),
    );
    refused.fails(
        3,
        "refusing to serve plain HTTP on 0.0.0.0:0: use --tls, or --insecure if a proxy in front terminates TLS",
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
    // The demo has no TLS at all.
    Run::of(
        Command::new(FERRY)
            .args(["demo", "--listen", "0.0.0.0:0", "--data"])
            .arg(dir.path().join("demo")),
    )
    .fails(3, "ferry demo serves plain HTTP for this machine only");
    assert!(!dir.path().join("demo").exists(), "nothing was created");

    let server = Server::start_with(&["--listen", "0.0.0.0:0", "--insecure"]);
    assert!(server.url.starts_with("http://0.0.0.0:"), "{}", server.url);
    let port = server.url.rsplit(':').next().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = format!("http://127.0.0.1:{port}");
    loop {
        let run = Run::of(
            Command::new(FERRY)
                .args(["team", "list"])
                .env("FERRY_SERVER", &url)
                .env("FERRY_TOKEN", &server.admin_token)
                .env("FERRY_CONFIG", server.dir.path().join("config.toml")),
        );
        if run.code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{run:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server.log().contains("plain HTTP"),
        "a warning: {}",
        server.log()
    );
}
