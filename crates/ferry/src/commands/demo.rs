//! `ferry demo`: a server, one agent per environment under the data directory, and a sample
//! application released and deployed to dev, in the foreground.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_api::{CreateApp, CreateDeployment, CreateTeam, EnrollTarget, EnrollmentToken};
use ferry_server::ServerConfig;

use crate::client::Client;
use crate::error::{CliError, CliResult};

/// The sample application's files, with a `ferry.toml` whose health check runs on deploy.
const SAMPLE_FILES: [(&str, &str); 3] = [
    (
        "index.html",
        "<!doctype html>\n<title>hello</title>\n<h1>Hello from ferry</h1>\n",
    ),
    (
        "css/site.css",
        "body { font-family: sans-serif; color: #134; }\n",
    ),
    (
        "ferry.toml",
        "[health]\ncommand = \"test -s index.html\"\ntimeout = \"10s\"\n",
    ),
];

pub async fn run(data: PathBuf, listen: SocketAddr) -> CliResult {
    // The demo has no TLS: its tokens must not cross a network.
    if !ferry_server::is_loopback(listen.ip()) {
        return Err(CliError::refused(format!(
            "ferry demo serves plain HTTP for this machine only, not on {listen}: use a loopback address such as --listen 127.0.0.1:7070; a real installation runs `ferry server --tls`"
        )));
    }
    let config = ServerConfig {
        database: ferry_server::Database::Sqlite(data.join("ferry.db")),
        data_dir: data.clone(),
        listen,
        maintenance_every: Duration::from_secs(3600),
        gc_grace: Duration::from_secs(3600),
        deploy_timeout: Duration::from_secs(120),
        deployment_deadline: Duration::from_secs(3600),
        heartbeat_every: ferry_domain::liveness::DEFAULT_HEARTBEAT,
        header_timeout: Duration::from_secs(30),
        clock_offset_file: None,
        audit_key_file: None,
        secret_key_file: None,
        blobs: None,
        tls: None,
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        CliError::failed(format!(
            "cannot listen on {listen}: {e}; try --listen 127.0.0.1:0 for any free port"
        ))
    })?;
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_err(|e| CliError::failed(e.to_string()))?
    );
    let mut server = tokio::spawn(ferry_server::serve(listener, config));
    let token = wait_for_admin_token(&data, &url, &mut server).await?;
    let client = Client::new(&url, &token, None)?;
    // The file keeps the first token: an admin who rotated it since must say which to use.
    let _: ferry_api::WhoAmI = client.get("/api/v1/me").await.map_err(|refused| {
        CliError::failed(format!(
            "the admin token in {} no longer works ({}): it was rotated or its user disabled; write the admin's current token into that file, or start a new demo with another --data folder",
            data.join("admin-token").display(),
            refused.message.split(':').next().unwrap_or_default()
        ))
    })?;
    let fresh = set_up(&client, &data, &url).await?;
    if fresh {
        deploy_sample(&client, &data).await?;
    }
    let password = admin_password(&client, &data).await?;
    println!("ferry demo is running");
    println!("  dashboard  {url}/");
    println!("  log in as  admin, password {password}");
    println!(
        "             (also in {}; `ferry user set-password` changes it)",
        data.join(ADMIN_PASSWORD_FILE).display()
    );
    println!("  server     {url}");
    println!("  token      {token}");
    println!(
        "             (also in {})",
        data.join("admin-token").display()
    );
    println!("  targets    {}", data.join("targets").display());
    println!("try:");
    println!(
        "  export FERRY_SERVER={url} FERRY_TOKEN=$(cat {})",
        data.join("admin-token").display()
    );
    println!("  ferry status");
    println!("  ferry release list hello");
    println!("stop with Ctrl-C");
    stopped(&mut server).await
}

/// Where the demo keeps the admin's first dashboard password.
const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// The admin's dashboard password: made up and set the first time (kept in
/// `DATA/admin-password`, mode 0600), read back from there afterwards.
async fn admin_password(client: &Client, data: &Path) -> CliResult<String> {
    let file = data.join(ADMIN_PASSWORD_FILE);
    if let Ok(kept) = std::fs::read_to_string(&file) {
        return Ok(kept.trim().to_owned());
    }
    let password = new_password()?;
    let _: ferry_api::PasswordSet = client
        .put(
            "/api/v1/users/admin/password",
            &ferry_api::SetPassword {
                password: password.clone(),
            },
        )
        .await?;
    write_private(&file, &password)?;
    Ok(password)
}

/// Four groups of five letters and digits: about 100 bits, easy to type.
fn new_password() -> CliResult<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut random = [0u8; 20];
    getrandom::fill(&mut random)
        .map_err(|e| CliError::failed(format!("no randomness for the admin's password: {e}")))?;
    let letters: Vec<char> = random
        .iter()
        .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
        .collect();
    Ok(letters
        .chunks(5)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// Writes `contents` to a new file only its owner may read.
fn write_private(file: &Path, contents: &str) -> CliResult {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .and_then(|mut f| f.write_all(contents.as_bytes()).and_then(|_| f.sync_all()))
        .map_err(|e| CliError::failed(format!("writing {}: {e}", file.display())))
}

/// What the server task ended with.
async fn stopped(server: &mut ServerTask) -> CliResult {
    match server.await {
        Ok(result) => result.map_err(|e| CliError::failed(format!("{e:#}"))),
        Err(e) => Err(CliError::failed(format!("the server task failed: {e}"))),
    }
}

/// The demo's server, running on a task of its own.
type ServerTask = tokio::task::JoinHandle<anyhow::Result<()>>;

/// The admin token, once the server answers; the server's own error if it stops first
/// (a data directory it refuses, say).
async fn wait_for_admin_token(
    data: &Path,
    url: &str,
    server: &mut ServerTask,
) -> CliResult<String> {
    let health = format!("{url}/healthz");
    for _ in 0..300 {
        if server.is_finished() {
            stopped(server).await?;
            return Err(CliError::failed(
                "the demo server stopped before it answered",
            ));
        }
        if reqwest::get(&health)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return std::fs::read_to_string(data.join("admin-token"))
                .map(|t| t.trim().to_owned())
                .map_err(|e| CliError::failed(format!("reading the admin token: {e}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(CliError::failed(format!(
        "the demo server did not answer at {url}"
    )))
}

/// Creates the team, the application and one agent per environment, unless an earlier
/// demo did. Returns whether it did.
async fn set_up(client: &Client, data: &Path, url: &str) -> CliResult<bool> {
    let targets = data.join("targets");
    let fresh = !targets.exists();
    if fresh {
        let _: serde_json::Value = client
            .post(
                "/api/v1/teams",
                &CreateTeam {
                    name: "demo".into(),
                },
            )
            .await?;
        let _: serde_json::Value = client
            .post(
                "/api/v1/apps",
                &CreateApp {
                    name: "hello".into(),
                    team: "demo".into(),
                    keep: None,
                },
            )
            .await?;
    }
    for env in ["dev", "pp", "prd"] {
        let root = targets.join(env);
        let enrollment = if fresh {
            let token: EnrollmentToken = client
                .post(
                    "/api/v1/targets/enroll",
                    &EnrollTarget {
                        env: env.into(),
                        name: format!("{env}-1"),
                    },
                )
                .await?;
            Some((url.to_owned(), token.token))
        } else {
            None
        };
        tokio::spawn(async move {
            // The demo's applications are all its own, on one machine: run as root, its
            // agents run their hooks as root rather than refuse them.
            let options = ferry_agent::process::AgentOptions {
                drift_every: ferry_agent::process::DEFAULT_DRIFT_EVERY,
                hooks_as_root: true,
            };
            if let Err(e) = ferry_agent::process::run(&root, enrollment, None, options).await {
                eprintln!("error: the {} agent stopped: {e:#}", root.display());
            }
        });
    }
    Ok(fresh)
}

async fn deploy_sample(client: &Client, data: &Path) -> CliResult {
    let sample = data.join("sample");
    for (path, content) in SAMPLE_FILES {
        let file = sample.join(path);
        std::fs::create_dir_all(file.parent().expect("sample files have a directory"))
            .and_then(|_| std::fs::write(&file, content))
            .map_err(|e| CliError::failed(format!("writing {}: {e}", file.display())))?;
    }
    let output = crate::output::Output { json: false };
    super::release::create_from(
        client,
        output,
        "hello",
        "1.0.0",
        sample.to_str().unwrap_or_default(),
    )
    .await?;
    // Wait for the dev agent to be online before deploying.
    for _ in 0..100 {
        let targets: Vec<ferry_api::Target> = client.get("/api/v1/targets").await?;
        if targets
            .iter()
            .any(|t| t.env == "dev" && t.health == "online")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = deploy(client, "1.0.0").await?;
    // Something to look at on the dashboard: 1.0.0 promoted to pp once it runs in dev,
    // and 1.1.0 on its way to dev.
    if finished(client, first.id).await? != ferry_api::DeploymentStatus::Succeeded {
        return Ok(());
    }
    let promotion = ferry_api::CreatePromotion {
        from: "dev".into(),
        to: "pp".into(),
        strategy: None,
        reason: Some("ferry demo".into()),
        allow_downgrade: false,
        break_glass: false,
        override_guard: false,
        skip_offline: false,
        skip_backup: None,
    };
    let promoted: ferry_api::Deployment = client
        .post("/api/v1/apps/hello/promotions", &promotion)
        .await?;
    println!("promoting hello 1.0.0 to pp (deployment {})", promoted.id);
    finished(client, promoted.id).await?;
    std::fs::write(sample.join("index.html"), SAMPLE_1_1)
        .map_err(|e| CliError::failed(format!("writing the sample: {e}")))?;
    super::release::create_from(
        client,
        output,
        "hello",
        "1.1.0",
        sample.to_str().unwrap_or_default(),
    )
    .await?;
    deploy(client, "1.1.0").await?;
    Ok(())
}

/// The sample's page in its second release.
const SAMPLE_1_1: &str =
    "<!doctype html>\n<title>hello</title>\n<h1>Hello from ferry</h1>\n<p>Now in 1.1.0.</p>\n";

/// Deploys `version` of the sample to dev.
async fn deploy(client: &Client, version: &str) -> CliResult<ferry_api::Deployment> {
    let request = CreateDeployment {
        version: version.into(),
        env: "dev".into(),
        strategy: None,
        reason: Some("ferry demo".into()),
        ..CreateDeployment::default()
    };
    let deployment: ferry_api::Deployment = client
        .post("/api/v1/apps/hello/deployments", &request)
        .await?;
    println!(
        "deploying hello {version} to dev (deployment {})",
        deployment.id
    );
    Ok(deployment)
}

/// How deployment `id` ended, waiting up to a minute for it.
async fn finished(client: &Client, id: i64) -> CliResult<ferry_api::DeploymentStatus> {
    for _ in 0..2 {
        let shown: ferry_api::Deployment = client
            .get(&format!("/api/v1/deployments/{id}?wait=30"))
            .await?;
        if !shown.status.is_active() {
            return Ok(shown.status);
        }
    }
    Err(CliError::failed(format!(
        "the demo's deployment {id} did not finish within a minute: `ferry deployment show {id}` says why"
    )))
}
