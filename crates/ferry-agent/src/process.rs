//! The agent process: enrolls once, then long-polls the server for what this target should
//! run, fetches only the content its cache lacks, converges each application with the
//! deploy engine, and reports; alongside, it checks the releases served for drift and
//! reports that too ([`drift`]). It only ever connects out to the server.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ferry_api::{
    AgentCredential, AgentEnroll, AgentReport, DesiredApp, DesiredStage, DesiredState, Outcome,
};
use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Manifest, MAX_MANIFEST_BYTES};
use ferry_domain::step_log::StepLog;
use serde::{Deserialize, Serialize};

use crate::cleanup::cleanup;
use crate::config_files::ConfigValues;
use crate::deploy::{
    converge, prepare, rollback, serves_completed, DeployEvent, DeployOutcome, DeployRequest,
};
use crate::error::AgentError;
use crate::isolation::{CommandsAs, Isolation};
use crate::layout::{
    cache_dir, current_installed, current_version, state_dir, AppLayout, Installed,
};
use crate::stage::PreviousCheck;

mod backups;
mod capture;
mod config;
mod drift;
mod fetch;
mod heartbeat;
mod link;
mod pin;
mod progress;
mod prune;
mod revert;
mod tasks;
mod upload;

use heartbeat::Heartbeat;
use link::ServerLink;
use progress::{Progress, ProgressTo};

/// Where agents report how converging an application went.
const REPORT: &str = "/api/v1/agent/report";

/// What enrollment leaves in `ROOT/.ferry/agent.toml` (mode 0600).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AgentState {
    server: String,
    target: String,
    env: String,
    credential: String,
    /// The SHA-256 fingerprint of the server's CA certificate, from the enrollment token of a
    /// server with TLS: the only certificate authority the agent trusts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tls_fingerprint: Option<String>,
}

fn state_path(root: &Path) -> PathBuf {
    state_dir(root).join("agent.toml")
}

/// Releases kept per application on the target when the server does not say (never
/// `current` nor the last success).
const RELEASES_KEPT: usize = 5;
/// The longest pause between attempts to reach an unreachable server.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often to send a heartbeat while busy when the server does not say.
const DEFAULT_HEARTBEAT: Duration = ferry_domain::liveness::DEFAULT_HEARTBEAT;

/// How often the releases served are checked for drift when not told otherwise.
pub const DEFAULT_DRIFT_EVERY: Duration = Duration::from_secs(60);

/// How an agent's operator runs it.
#[derive(Clone, Copy, Debug)]
pub struct AgentOptions {
    /// How often the releases served are checked for drift (zero: never).
    pub drift_every: Duration,
    /// A root agent runs the hooks of applications without a `--run-as` user as root
    /// instead of refusing to deploy them.
    pub hooks_as_root: bool,
}

/// Runs the agent for the target managed under `root` until SIGINT or SIGTERM. On the first
/// run `enrollment` (server URL and one-time token) exchanges the token for a credential.
/// An enrolled agent reaches the server it enrolled with, unless `server` (the address its
/// operator gives now) says the server moved: then it keeps the new address.
pub async fn run(
    root: &Path,
    enrollment: Option<(String, String)>,
    server: Option<&str>,
    options: AgentOptions,
) -> anyhow::Result<()> {
    // Hooks run inside the release, so every path they are given must be absolute.
    let root = &std::path::absolute(root)
        .with_context(|| format!("making {} an absolute path", root.display()))?;
    let state = match (load_state(root)?, enrollment) {
        (Some(state), None) => match server.map(|s| s.trim_end_matches('/')) {
            Some(moved) if moved != state.server => {
                eprintln!(
                    "the server's address is {moved} now, not {} as when this target enrolled: keeping the new one ({} pins the same certificate authority)",
                    state.server,
                    state_path(root).display()
                );
                let state = AgentState {
                    server: moved.to_owned(),
                    ..state
                };
                save_state(root, &state)?;
                state
            }
            _ => state,
        },
        (Some(state), Some(_)) => return Err(enrolled_already(root, &state)),
        (None, Some((server, token))) => enroll(root, &server, &token).await?,
        (None, None) => bail!(
            "{} is not enrolled: run `ferry agent enroll --root {} --server URL TOKEN` with a token from `ferry target enroll`",
            root.display(),
            root.display()
        ),
    };
    fs::create_dir_all(state_dir(root))
        .with_context(|| format!("creating {}", state_dir(root).display()))?;
    // The credential, the cache and the agent's state are the agent's alone.
    fs::set_permissions(state_dir(root), fs::Permissions::from_mode(0o700))
        .with_context(|| format!("closing {} to other users", state_dir(root).display()))?;
    let isolation = Isolation::of_this_process(options.hooks_as_root);
    if isolation.hooks_as_root_allowed() {
        eprintln!(
            "warning: this agent runs as root with --hooks-as-root: applications without a \
             --run-as user run their hooks as root and can reach each other's files and this \
             agent's credential"
        );
    } else if isolation.is_root() {
        eprintln!(
            "this agent runs as root: each application's hooks and health checks run as its \
             --run-as user (`ferry app set APP --run-as USER`); an application with hooks or a \
             health-check command and no such user is refused"
        );
    }
    let (http, pin) = http_client(state.tls_fingerprint.as_deref())?;
    eprintln!(
        "agent for target {} in {} started: it deploys into {} what the server at {} asks",
        state.target,
        state.env,
        root.display(),
        state.server
    );
    let (runner, handed) = tokio::sync::mpsc::unbounded_channel();
    let (drift_now, drift_asked) = tokio::sync::mpsc::channel(16);
    let agent = Arc::new(Agent {
        link: ServerLink::new(http, &state.server, &state.credential, root),
        pin,
        state,
        root: root.to_owned(),
        cache: Arc::new(BlobStore::open(&cache_dir(root))?),
        intake: Default::default(),
        configs: Default::default(),
        runner,
        drift_now,
        isolation: std::sync::Mutex::new(isolation),
        prune: Default::default(),
    });
    tokio::select! {
        result = agent.serve() => result,
        () = agent.watch_drift(options.drift_every, drift_asked) => Ok(()),
        () = Arc::clone(&agent).run_tasks(handed) => Ok(()),
        _ = shutdown_signal() => {
            eprintln!("agent stopped");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
}

fn load_state(root: &Path) -> anyhow::Result<Option<AgentState>> {
    match fs::read_to_string(state_path(root)) {
        Ok(text) => {
            Ok(Some(toml::from_str(&text).with_context(|| {
                format!("reading {}", state_path(root).display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", state_path(root).display())),
    }
}

/// The agent's HTTP client; with a fingerprint it trusts only the CA certificate that has
/// it, and the verifier tells why a handshake failed.
fn http_client(
    pin: Option<&str>,
) -> anyhow::Result<(reqwest::Client, Option<std::sync::Arc<pin::PinnedCa>>)> {
    // Every request says which agent asks: the server refuses a protocol it does not serve,
    // and shows the version in `ferry target list`.
    let mut says = reqwest::header::HeaderMap::new();
    says.insert(
        ferry_api::AGENT_VERSION_HEADER,
        reqwest::header::HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    says.insert(
        ferry_api::AGENT_PROTOCOL_HEADER,
        reqwest::header::HeaderValue::from(ferry_api::AGENT_PROTOCOL),
    );
    let builder = reqwest::Client::builder()
        .default_headers(says)
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    Ok(match pin {
        Some(pin) => {
            let (config, verifier) = pin::pinned_config(pin)?;
            (
                builder.use_preconfigured_tls(config).build()?,
                Some(verifier),
            )
        }
        None => (builder.build()?, None),
    })
}

/// The fingerprint of the CA certificate the https server at `server` presents, as an
/// enrollment token pins it, whoever issued it: for saying which CA a pin or a client's
/// certificate file does not match.
pub async fn presented_ca_fingerprint(server: &str) -> anyhow::Result<String> {
    // A pin no certificate has: the verifier records what was presented instead.
    let (http, verifier) = http_client(Some(&"0".repeat(64)))?;
    let answer = http.get(format!("{server}/healthz")).send().await;
    let mismatch = verifier.and_then(|v| v.mismatch.lock().ok().and_then(|m| m.clone()));
    match (mismatch, answer) {
        (Some(mismatch), _) => Ok(mismatch.presented),
        (None, Err(e)) => Err(e).with_context(|| format!("reaching {server}")),
        (None, Ok(_)) => bail!("{server} answered without presenting a certificate"),
    }
}

/// Enrolls the target managed under `root` with `server`'s one-time `token`, without running
/// the agent (for a service started afterwards); returns the target's name.
pub async fn enroll_only(root: &Path, server: &str, token: &str) -> anyhow::Result<String> {
    let root = &std::path::absolute(root)
        .with_context(|| format!("making {} an absolute path", root.display()))?;
    if let Some(state) = load_state(root)? {
        return Err(enrolled_already(root, &state));
    }
    Ok(enroll(root, server, token).await?.target)
}

fn enrolled_already(root: &Path, state: &AgentState) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is enrolled already as target {:?}; remove {} to enroll it again",
        root.display(),
        state.target,
        state_path(root).display()
    )
}

/// Exchanges the one-time token for the target's credential and stores it with the server
/// and the pinned fingerprint. Nothing is written unless the server accepted the token.
async fn enroll(root: &Path, server: &str, token: &str) -> anyhow::Result<AgentState> {
    let server = server.trim_end_matches('/').to_owned();
    let (token, pin) = pin::split_token(token)?;
    if pin.is_some() && !server.starts_with("https://") {
        bail!(
            "the enrollment token pins the server's certificate fingerprint, so the server URL must be https://, not {server}"
        );
    }
    let (http, verifier) = http_client(pin.as_deref())?;
    let sent = http
        .post(format!("{server}/api/v1/agent/enroll"))
        .json(&AgentEnroll {
            token: token.to_owned(),
        })
        .send()
        .await;
    let mismatch = verifier.and_then(|v| v.mismatch.lock().ok().and_then(|m| m.clone()));
    if let Some(mismatch) = mismatch {
        bail!(
            "the server at {server} is not the one that issued the enrollment token: its certificate fingerprint is {}, the token expects {}; check --server and the token (nothing was changed)",
            mismatch.presented,
            mismatch.expected
        );
    }
    let response = sent.with_context(|| format!("reaching {server}"))?;
    if !response.status().is_success() {
        bail!(
            "enrollment refused: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let credential: AgentCredential = response.json().await?;
    let state = AgentState {
        server,
        target: credential.target,
        env: credential.env,
        credential: credential.credential,
        tls_fingerprint: pin,
    };
    save_state(root, &state)?;
    Ok(state)
}

/// Writes the agent's state (its credential among it) to `ROOT/.ferry/agent.toml`, mode
/// 0600 in a directory of mode 0700, synced and renamed into place.
fn save_state(root: &Path, state: &AgentState) -> anyhow::Result<()> {
    fs::create_dir_all(state_dir(root))
        .with_context(|| format!("creating {}", state_dir(root).display()))?;
    // The credential, the cache and the agent's state are the agent's alone, from the start.
    fs::set_permissions(state_dir(root), fs::Permissions::from_mode(0o700))
        .with_context(|| format!("closing {} to other users", state_dir(root).display()))?;
    let path = state_path(root);
    let tmp = path.with_extension("toml.tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(toml::to_string(state)?.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &path)?;
    fs::File::open(state_dir(root))?.sync_all()?;
    Ok(())
}

/// How converging one application went, for the report.
struct Converged {
    outcome: Outcome,
    reason: Option<String>,
    output_tail: Option<String>,
    /// The hooks and health check that ran.
    logs: Vec<StepLog>,
}

impl Converged {
    fn succeeded(warning: Option<String>) -> Converged {
        Converged {
            outcome: Outcome::Succeeded,
            reason: warning,
            output_tail: None,
            logs: Vec::new(),
        }
    }
}

/// How switching back to a release on disk went.
enum SwitchedBack {
    /// `current` serves it; the warning about a repair made first, if any.
    Done { warning: Option<String> },
    /// It could not be switched to as it is: it is deployed instead.
    DeployInstead,
}

struct Agent {
    link: ServerLink,
    /// The pinned CA certificate (with TLS), which records a server that presented another.
    pin: Option<Arc<pin::PinnedCa>>,
    state: AgentState,
    root: PathBuf,
    /// The content cache, shared with the deploy engine's threads: it remembers the blobs
    /// this process fetched, so staging right after trusts them without reading them again.
    cache: Arc<BlobStore>,
    /// The tasks the long-poll handed to the task runner.
    intake: std::sync::Mutex<tasks::TaskIntake>,
    /// The values of the configuration revisions fetched, in memory only.
    configs: config::ConfigCache,
    /// Where the long-poll hands tasks to the task runner.
    runner: tokio::sync::mpsc::UnboundedSender<ferry_api::AgentTask>,
    /// Where a task asks the drift watch to check an application now.
    drift_now: tokio::sync::mpsc::Sender<drift::CheckNow>,
    /// Who each application's commands run as, from the last desired state.
    isolation: std::sync::Mutex<Isolation>,
    /// When the content cache is pruned next.
    prune: std::sync::Mutex<crate::cache_prune::PruneSchedule>,
}

impl Agent {
    /// Who runs `app`'s commands on this target.
    fn commands_as(&self, app: &str) -> CommandsAs {
        match self.isolation.lock() {
            Ok(isolation) => isolation.commands_as(app),
            Err(_) => Err("the agent's record of who runs each application broke".to_owned()),
        }
    }

    /// The certificate the server presented when it was not the pinned one.
    fn certificate_mismatch(&self) -> Option<pin::Mismatch> {
        let pin = self.pin.as_ref()?;
        pin.mismatch.lock().ok()?.clone()
    }

    /// Long-polls for the desired state and converges, reconnecting with backoff.
    async fn serve(&self) -> anyhow::Result<()> {
        let mut generation: Option<u64> = None;
        // What was converged per application: the deployment and the version it asked for.
        // One deployment can ask twice (deploy, then go back after another target failed).
        let mut handled: HashMap<String, (i64, Option<String>, u64)> = HashMap::new();
        let mut staged: HashMap<String, i64> = HashMap::new();
        let mut backoff = Duration::from_millis(200);
        // Why the server could not be reached, while it cannot: said once, not per retry.
        let mut lost: Option<String> = None;
        let mut reached = false;
        loop {
            let path = match generation {
                Some(g) => format!("/api/v1/agent/desired?after={g}"),
                None => "/api/v1/agent/desired".to_owned(),
            };
            let desired: DesiredState = match self
                .link
                .heartbeat_get(&path, Duration::from_secs(40))
                .await
            {
                Ok(desired) => desired,
                Err(error) => {
                    // Another server answering at the address never becomes reachable
                    // by waiting: stop and say so.
                    if let Some(mismatch) = self.certificate_mismatch() {
                        bail!(
                            "the server at {} is not the one this target enrolled with: its certificate fingerprint is {}, {} pins {}; check the server's address, or enroll the target again",
                            self.state.server,
                            mismatch.presented,
                            state_path(&self.root).display(),
                            mismatch.expected
                        );
                    }
                    if error.downcast_ref::<link::CredentialRefused>().is_some() {
                        return Err(error);
                    }
                    let why = plainly(&error);
                    if lost.as_ref() != Some(&why) {
                        let again = match (&lost, reached) {
                            (None, true) => "lost",
                            _ => "cannot reach",
                        };
                        eprintln!(
                            "{again} the server at {} ({why}): retrying in {}, then less and less often (every {} at most)",
                            self.state.server,
                            seconds(backoff),
                            seconds(MAX_BACKOFF)
                        );
                        lost = Some(why);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if lost.take().is_some() {
                match reached {
                    true => eprintln!("reconnected to the server at {}", self.state.server),
                    false => eprintln!("reached the server at {}", self.state.server),
                }
            }
            reached = true;
            generation = Some(desired.generation);
            if let Ok(mut isolation) = self.isolation.lock() {
                isolation.learn(&desired.apps);
            }
            if let Ok(mut intake) = self.intake.lock() {
                intake.take(desired.tasks, &self.runner);
            }
            // Busy from here to the next question: heartbeats keep the target online.
            let every = desired
                .heartbeat_ms
                .map_or(DEFAULT_HEARTBEAT, Duration::from_millis);
            let _beating = Heartbeat::start(self.link.clone(), every);
            let mut all_converged = true;
            for app in desired.apps {
                if let Some(deployment) = app.deployment.filter(|&d| {
                    handled.get(&app.app) != Some(&(d, app.version.clone(), app.config))
                }) {
                    match self.converge(&app, deployment).await {
                        Ok(()) => {
                            let converged = (deployment, app.version.clone(), app.config);
                            handled.insert(app.app.clone(), converged);
                        }
                        Err(error) => {
                            eprintln!(
                                "could not finish deploying {} (deployment {deployment}): {}; trying again in {}",
                                app.app,
                                plainly(&error),
                                seconds(backoff)
                            );
                            all_converged = false;
                        }
                    }
                }
                if let Some(stage) = app
                    .stage
                    .filter(|s| staged.get(&app.app) != Some(&s.deployment))
                {
                    match self.stage(&app.app, &stage).await {
                        Ok(()) => {
                            staged.insert(app.app.clone(), stage.deployment);
                        }
                        Err(error) => {
                            eprintln!(
                                "could not stage {} {} ahead (deployment {}): {}; trying again in {}",
                                app.app,
                                stage.version,
                                stage.deployment,
                                plainly(&error),
                                seconds(backoff)
                            );
                            all_converged = false;
                        }
                    }
                }
            }
            // Between rounds, when nothing of this loop relies on the cache.
            self.prune_cache_when_due().await;
            if all_converged {
                backoff = Duration::from_millis(200);
            } else {
                // Try again soon (what was fetched and verified stays in the cache), not
                // only when the desired state next changes.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                generation = None;
            }
        }
    }

    /// Brings one application to its desired version and reports how it went.
    async fn converge(&self, desired: &DesiredApp, deployment: i64) -> anyhow::Result<()> {
        let _relying = self.relying_on_cache().await?;
        let app = desired.app.clone();
        let started = std::time::Instant::now();
        let target = (desired.version.as_deref()).map(|v| Installed::new(v, desired.config));
        let (did, converged) = match &target {
            Some(target) if serves_completed(&self.root, &app, target) => {
                (Did::AlreadyServing, Converged::succeeded(None))
            }
            Some(target) if desired.switch_back && self.has_release(&app, target) => {
                match self.switch_back(&app, target).await? {
                    SwitchedBack::Done { warning } => {
                        (Did::SwitchedBack, Converged::succeeded(warning))
                    }
                    SwitchedBack::DeployInstead => (
                        Did::Deployed,
                        self.deploy_reporting_steps(&app, target, deployment, desired.backup_first)
                            .await?,
                    ),
                }
            }
            Some(target) => (
                Did::Deployed,
                self.deploy_reporting_steps(&app, target, deployment, desired.backup_first)
                    .await?,
            ),
            None => {
                let link = AppLayout::new(&self.root, &app)?.current_link();
                let removed = match fs::remove_file(&link) {
                    Ok(()) => Converged::succeeded(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Converged::succeeded(None)
                    }
                    Err(e) => Converged {
                        outcome: Outcome::Failed,
                        reason: Some(format!("removing {}: {e}", link.display())),
                        output_tail: None,
                        logs: Vec::new(),
                    },
                };
                (Did::Stopped, removed)
            }
        };
        let outcome = converged.outcome;
        let report = AgentReport {
            app: app.clone(),
            deployment,
            outcome,
            reason: converged.reason.clone(),
            output_tail: converged.output_tail,
            current_version: current_version(&self.root, &app),
            version: desired.version.clone(),
            current_config: served_config(&self.root, &app),
            config: desired.config,
            logs: converged.logs,
        };
        self.link.post(REPORT, &report).await?;
        eprintln!("{}", converged_sentence(did, &report, started.elapsed()));
        // Old releases go after the report, so their removal never delays a deployment.
        if outcome == Outcome::Succeeded {
            let (root, app_name) = (self.root.clone(), app.clone());
            let keep = desired.keep.map_or(RELEASES_KEPT, |keep| keep as usize);
            let cleaned =
                tokio::task::spawn_blocking(move || cleanup(&root, &app_name, keep)).await?;
            match cleaned {
                Ok(report) if !report.removed.is_empty() => self.releases_removed(),
                Ok(_) => {}
                Err(error) => eprintln!("could not remove old releases of {app}: {error}"),
            }
        }
        Ok(())
    }

    /// Fetches and stages a release ahead of its switch, and reports how that went.
    async fn stage(&self, app: &str, stage: &DesiredStage) -> anyhow::Result<()> {
        let _relying = self.relying_on_cache().await?;
        let version = stage.version.as_str();
        let installed = &Installed::new(version, stage.config);
        let staged = if current_installed(&self.root, app).as_ref() == Some(installed) {
            Ok(())
        } else {
            let manifest = self.manifest(app, version).await?;
            let values = self.config_values(app, stage.config).await?;
            // As for a deploy: a release on disk already is checked by staging itself, and
            // what it lacks is fetched below; asking first would check it twice.
            if !AppLayout::new(&self.root, app)?.has_release(installed) {
                self.fetch_missing(app, installed, &manifest, PreviousCheck::Recorded)
                    .await?;
            }
            let stage_ahead = || {
                self.with_engine(app, version, &manifest, &values, |root, request, cache| {
                    prepare(root, request, cache)
                })
            };
            let mut staged = stage_ahead().await?;
            // A file of the release served was changed by hand (the first fetch trusted its
            // stat index): fetch what staging could not take from it, and try again.
            if matches!(staged, Err(AgentError::Missing { .. }))
                && self
                    .fetch_missing(app, installed, &manifest, PreviousCheck::Verified)
                    .await?
                    > 0
            {
                staged = stage_ahead().await?;
            }
            staged.map(|_| ())
        };
        let report = AgentReport {
            app: app.to_owned(),
            deployment: stage.deployment,
            outcome: if staged.is_ok() {
                Outcome::Staged
            } else {
                Outcome::StageFailed
            },
            reason: staged.err().map(|e| e.to_string()),
            output_tail: None,
            current_version: current_version(&self.root, app),
            version: Some(version.to_owned()),
            current_config: served_config(&self.root, app),
            config: stage.config,
            logs: Vec::new(),
        };
        self.link.post(REPORT, &report).await?;
        match &report.reason {
            None => eprintln!(
                "staged {app} {version} ahead (deployment {})",
                stage.deployment
            ),
            Some(reason) => eprintln!(
                "could not stage {app} {version} ahead (deployment {}): {}",
                stage.deployment,
                first_line(reason)
            ),
        }
        Ok(())
    }

    /// Where progress reports of a deploy delivering configuration revision `config` go.
    fn progress_to(&self, app: &str, deployment: i64, config: u64) -> ProgressTo {
        ProgressTo {
            link: self.link.clone(),
            app: app.to_owned(),
            deployment,
            config,
            root: self.root.clone(),
        }
    }

    /// Deploys `version` of `app`, posting the steps it reaches for `deployment`; with
    /// `backup_first`, after backing up the application's data.
    async fn deploy_reporting_steps(
        &self,
        app: &str,
        installed: &Installed,
        deployment: i64,
        backup_first: bool,
    ) -> anyhow::Result<Converged> {
        let progress = Progress::start(self.progress_to(app, deployment, installed.config));
        if backup_first {
            if let Some(failed) = self
                .back_up_before(app, &installed.version, &progress)
                .await
            {
                progress.finish().await;
                return Ok(failed);
            }
        }
        let deployed = self.deploy(app, installed, &progress).await;
        progress.finish().await;
        match deployed {
            // Asking again would fill nothing: the deployment fails now, and says why.
            Err(error) if disk_full(&error) => Ok(Converged {
                outcome: Outcome::Failed,
                reason: Some(format!(
                    "the target's disk is full, so {} could not be fetched and nothing was \
                     switched: free space on it and deploy again ({error})",
                    installed.version
                )),
                output_tail: None,
                logs: Vec::new(),
            }),
            deployed => deployed,
        }
    }

    /// Backs up `app`'s data before `version` is deployed (a protected environment): nothing
    /// to do when it runs no release yet, or its release names no backup paths. A failure
    /// is the deploy's: nothing is switched, and the reason carries the hook's output.
    async fn back_up_before(
        &self,
        app: &str,
        version: &str,
        progress: &Progress,
    ) -> Option<Converged> {
        let layout = AppLayout::new(&self.root, app).ok()?;
        let declared = tokio::task::spawn_blocking(move || {
            crate::app_backup::take::release_config(&layout).map(|(_, c)| !c.backup.is_empty())
        })
        .await
        .ok()?
        .unwrap_or(false);
        if !declared {
            return None;
        }
        progress.step(format!("backing up the data of {app} before {version}"));
        match self
            .back_up(app, ferry_api::BackupReason::BeforeDeployment, None)
            .await
        {
            Ok(backup) => {
                eprintln!(
                    "backed up {app} before deploying {version}: backup {}, {} bytes new",
                    backup.id, backup.new_bytes
                );
                None
            }
            Err(error) => Some(Converged {
                outcome: Outcome::Failed,
                reason: Some(format!(
                    "the backup of {app}'s data before deploying {version} failed, so nothing \
                     was switched (deploy with --skip-backup REASON to go ahead without it): {}",
                    plainly(&error)
                )),
                output_tail: None,
                logs: Vec::new(),
            }),
        }
    }

    async fn deploy(
        &self,
        app: &str,
        installed: &Installed,
        progress: &Progress,
    ) -> anyhow::Result<Converged> {
        let version = installed.version.as_str();
        progress.step(format!("fetching the manifest of {version}"));
        let manifest = self.manifest(app, version).await?;
        if installed.config > 0 {
            progress.step(format!(
                "fetching configuration revision {} of {app}",
                installed.config
            ));
        }
        let values = self.config_values(app, installed.config).await?;
        // A release already on disk (staged ahead) needs nothing: the engine checks it is
        // intact, and if it is not, the fetch below brings what it lacks. Not asking first
        // keeps the switch of a release staged ahead to one pass over its files.
        if !AppLayout::new(&self.root, app)?.has_release(installed) {
            progress.step(format!(
                "fetching the content of {version} the target lacks"
            ));
            self.fetch_missing(app, installed, &manifest, PreviousCheck::Recorded)
                .await?;
        }
        progress.step(format!("staging {installed}"));
        let (mut outcome, mut logs) = self
            .run_engine(app, version, &manifest, &values, progress)
            .await?;
        // The engine moves a cache blob that no longer matches its hash aside and fails;
        // fetching what is missing now brings it back, so try once more. The first fetch
        // trusted the previous release's stat index; this one looks at its files, so a file
        // changed there by hand (which staging refused to link) is fetched too.
        if !matches!(outcome, DeployOutcome::Succeeded { .. })
            && self
                .fetch_missing(app, installed, &manifest, PreviousCheck::Verified)
                .await?
                > 0
        {
            (outcome, logs) = self
                .run_engine(app, version, &manifest, &values, progress)
                .await?;
        }
        let (outcome, reason, output_tail) = match outcome {
            DeployOutcome::Succeeded { report } => (
                Outcome::Succeeded,
                self.warn(app, &report.warning(version)),
                None,
            ),
            DeployOutcome::RolledBack {
                reason,
                output_tail,
            } => (Outcome::RolledBack, Some(reason), Some(output_tail)),
            DeployOutcome::Failed {
                reason,
                output_tail,
            } => (Outcome::Failed, Some(reason), Some(output_tail)),
        };
        Ok(Converged {
            outcome,
            reason,
            output_tail,
            logs,
        })
    }

    /// A release's manifest as the server stores it (zstd-compressed), checked against the
    /// digest the server names.
    async fn manifest(&self, app: &str, version: &str) -> anyhow::Result<Manifest> {
        let path = format!("/api/v1/agent/manifest/{app}/{version}");
        let request = self
            .link
            .http
            .get(self.link.url(&path))
            .timeout(Duration::from_secs(120));
        let mut response = self.link.send(&path, request).await?;
        let digest = response
            .headers()
            .get("x-ferry-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(ContentHash::from_hex)
            .with_context(|| format!("{path}: the server named no manifest digest"))?;
        // Read only as much as a manifest can be, whatever the server says it sends.
        let too_big = || {
            anyhow::anyhow!(
                "{path}: the manifest is larger than {MAX_MANIFEST_BYTES} bytes, more than any release may have"
            )
        };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_MANIFEST_BYTES)
        {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        while let Some(piece) = response.chunk().await? {
            if (bytes.len() + piece.len()) as u64 > MAX_MANIFEST_BYTES {
                return Err(too_big());
            }
            bytes.extend_from_slice(&piece);
        }
        Ok(Manifest::from_blob(&bytes, &digest)?)
    }

    /// Whether release directory `installed` of `app` is on disk.
    fn has_release(&self, app: &str, installed: &Installed) -> bool {
        AppLayout::new(&self.root, app).is_ok_and(|layout| layout.has_release(installed))
    }

    /// Switches to a release directory still on disk, as a rollback does: no hooks, but
    /// checked against its manifest (and the configuration rendered into it) first and
    /// repaired if it changed since it was staged (fetching what the repair needs).
    async fn switch_back(&self, app: &str, installed: &Installed) -> anyhow::Result<SwitchedBack> {
        let version = installed.version.as_str();
        let manifest = self.manifest(app, version).await?;
        let values = self.config_values(app, installed.config).await?;
        let mut switched = self
            .with_engine(app, version, &manifest, &values, |root, request, cache| {
                rollback(root, request, cache)
            })
            .await?;
        // A file changed in the release whose blob is not in the cache (or is corrupt, and
        // was moved aside): fetch what is missing, looking at the files, and try again.
        if matches!(switched, Err(AgentError::Missing { .. }))
            && self
                .fetch_missing(app, installed, &manifest, PreviousCheck::Verified)
                .await?
                > 0
        {
            switched = self
                .with_engine(app, version, &manifest, &values, |root, request, cache| {
                    rollback(root, request, cache)
                })
                .await?;
        }
        Ok(match switched {
            Ok(report) => SwitchedBack::Done {
                warning: self.warn(app, &report.warning(version)),
            },
            Err(error) => {
                eprintln!(
                    "could not switch {app} back to {installed} ({error}): deploying it instead"
                );
                SwitchedBack::DeployInstead
            }
        })
    }

    /// Logs a warning about `app` and passes it on (for the report).
    fn warn(&self, app: &str, warning: &Option<String>) -> Option<String> {
        if let Some(warning) = warning {
            eprintln!("{app}: warning: {warning}");
        }
        warning.clone()
    }

    async fn run_engine(
        &self,
        app: &str,
        version: &str,
        manifest: &Manifest,
        values: &ConfigValues,
        progress: &Progress,
    ) -> anyhow::Result<(DeployOutcome, Vec<StepLog>)> {
        let steps = progress.sender();
        self.with_engine(
            app,
            version,
            manifest,
            values,
            move |root, request, cache| {
                let mut logs = Vec::new();
                let outcome = converge(root, request, cache, &mut |event| match event {
                    // The step being worked on, so a slow one shows what the target does.
                    DeployEvent::Started(what) => {
                        let _ = steps.send(what);
                    }
                    DeployEvent::Completed(step) => {
                        let _ = steps.send(format!("{}: {}", step.kind.label(), step.detail));
                    }
                    DeployEvent::Logged(log) => logs.push(log),
                });
                (outcome, logs)
            },
        )
        .await
    }

    /// Runs a step of the deploy engine for `version` of `app` with the configuration
    /// `values` on a blocking thread.
    async fn with_engine<T: Send + 'static>(
        &self,
        app: &str,
        version: &str,
        manifest: &Manifest,
        values: &ConfigValues,
        step: impl FnOnce(&Path, &DeployRequest, &BlobStore) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let request = DeployRequest {
            app: app.to_owned(),
            env: self.state.env.clone(),
            version: version.to_owned(),
            manifest: manifest.clone(),
            config: values.clone(),
            commands_as: self.commands_as(app),
        };
        let root = self.root.clone();
        let cache = Arc::clone(&self.cache);
        Ok(tokio::task::spawn_blocking(move || step(&root, &request, &cache)).await?)
    }
}

/// The configuration revision the release `current` serves was staged with (0: none, or
/// no release served).
fn served_config(root: &Path, app: &str) -> u64 {
    current_installed(root, app).map_or(0, |installed| installed.config)
}

/// What converging an application came to do.
#[derive(Clone, Copy)]
enum Did {
    /// Nothing: it served the release already.
    AlreadyServing,
    /// Switched back to a release on disk (a go-back, no hooks).
    SwitchedBack,
    Deployed,
    /// Stopped serving the application.
    Stopped,
}

/// The sentence the agent logs once it reported on a deployment.
fn converged_sentence(did: Did, report: &AgentReport, took: Duration) -> String {
    let (app, deployment, took) = (&report.app, report.deployment, seconds(took));
    let version = report.version.as_deref().unwrap_or_default();
    let reason = report.reason.as_deref().map(first_line).unwrap_or_default();
    match (did, report.outcome) {
        (Did::AlreadyServing, _) => {
            format!("{app} serves {version} already (deployment {deployment})")
        }
        (Did::SwitchedBack, _) => {
            format!("switched {app} back to {version} (deployment {deployment}) in {took}")
        }
        (Did::Stopped, Outcome::Succeeded) => {
            format!("stopped serving {app} (deployment {deployment})")
        }
        (Did::Stopped, _) => {
            format!("could not stop serving {app} (deployment {deployment}): {reason}")
        }
        (Did::Deployed, Outcome::Succeeded) => {
            format!("deployed {app} {version} (deployment {deployment}) in {took}")
        }
        (Did::Deployed, Outcome::RolledBack) => format!(
            "deploying {app} {version} (deployment {deployment}) failed after {took} and was rolled back to {}: {reason}",
            report.current_version.as_deref().unwrap_or("nothing")
        ),
        (Did::Deployed, _) => format!(
            "deploying {app} {version} (deployment {deployment}) failed after {took}: {reason}"
        ),
    }
}

/// Whether `error` comes from a disk (or a quota) that is full: an I/O error somewhere in
/// its chain says so (the content store's and the engine's errors keep theirs as source).
fn disk_full(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(ferry_cas::error::is_disk_full)
}

/// What went wrong, without the layers around it (`connection refused`, not the request
/// that met it).
fn plainly(error: &anyhow::Error) -> String {
    match error.downcast_ref::<reqwest::Error>() {
        Some(_) => error.root_cause().to_string(),
        None => format!("{error:#}"),
    }
}

/// A duration as people read it: `0.2 s`, `30 s`, `under 0.1 s`.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 0.05 {
        "under 0.1 s".to_owned()
    } else if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        for (millis, said) in [
            (10, "under 0.1 s"),
            (200, "0.2 s"),
            (1_340, "1.3 s"),
            (30_000, "30 s"),
        ] {
            assert_eq!(seconds(Duration::from_millis(millis)), said);
        }
    }

    #[test]
    fn what_was_done_is_said_in_a_sentence() {
        let report = |outcome, reason: Option<&str>| AgentReport {
            app: "shop".into(),
            deployment: 7,
            outcome,
            reason: reason.map(str::to_owned),
            output_tail: None,
            current_version: Some("1.1.0".into()),
            version: Some("1.2.0".into()),
            current_config: 0,
            config: 0,
            logs: Vec::new(),
        };
        let took = Duration::from_millis(1_300);
        let cases = [
            (
                Did::Deployed,
                report(Outcome::Succeeded, None),
                "deployed shop 1.2.0 (deployment 7) in 1.3 s",
            ),
            (
                Did::Deployed,
                report(Outcome::RolledBack, Some("health check `x` failed\nits output")),
                "deploying shop 1.2.0 (deployment 7) failed after 1.3 s and was rolled back to 1.1.0: health check `x` failed",
            ),
            (
                Did::AlreadyServing,
                report(Outcome::Succeeded, None),
                "shop serves 1.2.0 already (deployment 7)",
            ),
            (
                Did::SwitchedBack,
                report(Outcome::Succeeded, None),
                "switched shop back to 1.2.0 (deployment 7) in 1.3 s",
            ),
        ];
        for (did, report, said) in cases {
            assert_eq!(converged_sentence(did, &report, took), said);
        }
    }
}
