//! The periodic drift check: every `--drift-every` (60 s by default), each application the
//! target serves is compared with its release ([`crate::drift`], on a blocking thread), and
//! the findings are posted to the server when they differ from the last ones it got, and
//! at least every hour anyway (so a server that lost them, or restarted, hears again).
//!
//! It never disturbs a deployment: the check takes the application's lock without waiting
//! and skips a busy application, and its failures are logged (once per reason), never
//! fatal. The manifest and published `ferry.toml` of the release served are kept in memory,
//! with the configuration files rendered into its directory (from the values of the
//! revision it serves, fetched once: the server answers for the revision a target runs),
//! so a check costs no request but the report (a `ferry.toml` edited in place while the
//! agent was down, which changed the cache's copy too, is fetched again). A server too old
//! to take drift reports (404) is told about once, and asked again an hour later.
//!
//! A task can ask for a check of one application now ([`CheckNow`], `ferry drift
//! --refresh`): the watch does it between its rounds, reports what it found whatever it
//! sent before, and answers the task; this works with periodic checks turned off too.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use ferry_api::{AgentDrift, BlobHashes};
use ferry_cas::manifest::Manifest;
use ferry_cas::release_config::{ReleaseConfig, CONFIG_FILE};
use tokio::sync::{mpsc, oneshot};

use super::{plainly, Agent};
use crate::config_files::ConfigOf;
use crate::content::FileFacts;
use crate::drift::{self, DriftCheck};
use crate::error::AgentError;
use crate::layout::Installed;

/// Where agents report drift.
const DRIFT: &str = "/api/v1/agent/drift";
/// Findings unchanged since the last report are sent again after this long.
const RESEND_EVERY: Duration = Duration::from_secs(3600);

/// A task's request to check one application now; answered with what was found, once the
/// server has it.
pub(super) struct CheckNow {
    pub app: String,
    pub answer: oneshot::Sender<anyhow::Result<AgentDrift>>,
}

/// What the drift watch remembers between checks.
#[derive(Default)]
pub(super) struct DriftWatch {
    /// The release each application serves, as last seen, with what its check needs.
    releases: HashMap<String, ServedTree>,
    /// The last report the server took per application, and when.
    sent: HashMap<String, (AgentDrift, Instant)>,
    /// The server answered 404 (it predates drift reports): not asked again until then.
    unsupported_until: Option<Instant>,
    /// The last findings logged per application, so a change is said once.
    told: HashMap<String, AgentDrift>,
    /// The last failure to check logged per application, so it is said once.
    check_failed: HashMap<String, String>,
    /// The last failure to report logged per application, so it is said once.
    report_failed: HashMap<String, String>,
}

/// A release directory served, with its manifest (the release's and the configuration files
/// rendered into it) and published `ferry.toml`.
#[derive(Clone)]
struct ServedTree {
    installed: Installed,
    manifest: Arc<Manifest>,
    config: Arc<ReleaseConfig>,
}

impl Agent {
    /// Checks drift every `every` (zero: never), and whenever a task asks, forever.
    pub(super) async fn watch_drift(&self, every: Duration, mut asked: mpsc::Receiver<CheckNow>) {
        let mut watch = DriftWatch::default();
        let mut ticks = (!every.is_zero()).then(|| {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        loop {
            let tick = async {
                match &mut ticks {
                    Some(ticks) => ticks.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick => self.check_drift(&mut watch).await,
                Some(ask) = asked.recv() => {
                    let found = self.check_app_now(&mut watch, &ask.app).await;
                    let _ = ask.answer.send(found);
                }
            }
        }
    }

    /// Checks `app` now for a task, and reports what it found.
    async fn check_app_now(&self, watch: &mut DriftWatch, app: &str) -> anyhow::Result<AgentDrift> {
        let root = self.root.clone();
        let served = tokio::task::spawn_blocking(move || drift::served(&root)).await?;
        let Some((_, installed)) = served.iter().find(|(a, _)| a == app) else {
            bail!("this target serves no release of {app}");
        };
        let Some(found) = self.check_app_drift(watch, app, installed).await? else {
            bail!("{app} is being deployed or rolled back right now; ask again when that is over");
        };
        tell(watch, &found);
        watch.sent.remove(app);
        self.report_drift(watch, found.clone()).await;
        if let Some(why) = watch.report_failed.get(app) {
            bail!("checked, but could not report what was found: {why}");
        }
        Ok(found)
    }

    /// Asks the drift watch to check `app` now: what it found, once the server has it.
    pub(super) async fn drift_found_now(&self, app: &str) -> anyhow::Result<AgentDrift> {
        let (answer, answered) = oneshot::channel();
        self.drift_now
            .send(CheckNow {
                app: app.to_owned(),
                answer,
            })
            .await
            .map_err(|_| anyhow::anyhow!("the drift watch has stopped"))?;
        answered
            .await
            .map_err(|_| anyhow::anyhow!("the drift watch has stopped"))?
    }

    /// Checks `app` for drift now, for a task: a sentence and what was found.
    pub(super) async fn check_drift_now(
        &self,
        app: &str,
    ) -> anyhow::Result<(String, Option<serde_json::Value>)> {
        let found = self.drift_found_now(app).await?;
        let message = match found.paths.len() {
            0 => format!("{app} {} serves its release exactly", found.version),
            1 => format!("{app} {}: 1 path differs from the release", found.version),
            n => format!("{app} {}: {n} paths differ from the release", found.version),
        };
        Ok((
            message,
            Some(serde_json::json!({ "version": found.version, "paths": found.paths.len() })),
        ))
    }

    /// One round: every application served is checked and, when due, reported.
    async fn check_drift(&self, watch: &mut DriftWatch) {
        let root = self.root.clone();
        let served = tokio::task::spawn_blocking(move || drift::served(&root))
            .await
            .unwrap_or_default();
        let serves = |app: &str| served.iter().any(|(a, _)| a == app);
        watch.releases.retain(|app, _| serves(app));
        watch.sent.retain(|app, _| serves(app));
        watch.told.retain(|app, _| serves(app));
        watch.check_failed.retain(|app, _| serves(app));
        watch.report_failed.retain(|app, _| serves(app));
        for (app, installed) in &served {
            let version = &installed.version;
            match self.check_app_drift(watch, app, installed).await {
                Ok(Some(found)) => {
                    watch.check_failed.remove(app);
                    tell(watch, &found);
                    self.report_drift(watch, found).await;
                }
                Ok(None) => {}
                Err(error) => {
                    let why = plainly(&error);
                    if watch.check_failed.get(app) != Some(&why) {
                        eprintln!("could not check {app} {version} for drift: {why}; trying again at the next check");
                        watch.check_failed.insert(app.clone(), why);
                    }
                }
            }
        }
    }

    /// The drift of `app`, serving `installed`; `None` when it was busy or moved on.
    async fn check_app_drift(
        &self,
        watch: &mut DriftWatch,
        app: &str,
        installed: &Installed,
    ) -> anyhow::Result<Option<AgentDrift>> {
        // The release served is rendered from the cache when it is first seen.
        let _relying = self.relying_on_cache().await?;
        let release = match watch.releases.get(app) {
            Some(release) if release.installed == *installed => release.clone(),
            _ => {
                let manifest = Arc::new(self.manifest(app, &installed.version).await?);
                let config = Arc::new(self.published_config(app, installed, &manifest).await?);
                let values = self.config_values(app, installed.config).await?;
                let (root, cache) = (self.root.clone(), Arc::clone(&self.cache));
                let (a, env, i) = (app.to_owned(), self.state.env.clone(), installed.clone());
                let (m, c) = (Arc::clone(&manifest), Arc::clone(&config));
                let served = tokio::task::spawn_blocking(move || {
                    let of = ConfigOf {
                        app: &a,
                        env: &env,
                        version: &i.version,
                    };
                    drift::served_manifest(&root, of, &i, &m, &c, &values, &cache)
                })
                .await??;
                let release = ServedTree {
                    installed: installed.clone(),
                    manifest: Arc::new(served),
                    config,
                };
                watch.releases.insert(app.to_owned(), release.clone());
                release
            }
        };
        let root = self.root.clone();
        let (a, i) = (app.to_owned(), installed.clone());
        let checked = tokio::task::spawn_blocking(move || {
            drift::check(
                &root,
                &a,
                &i,
                &release.manifest,
                &release.config,
                drift::now_ms(),
            )
        })
        .await??;
        Ok(match checked {
            DriftCheck::Checked(found) => Some(found),
            DriftCheck::Busy | DriftCheck::Moved => None,
        })
    }

    /// The published `ferry.toml` of `version` of `app`. One edited in place (its inode is
    /// the cache's blob too, so neither holds the published content any more) is fetched
    /// again, so an edit cannot decide what is ignored.
    pub(super) async fn published_config(
        &self,
        app: &str,
        version: &Installed,
        manifest: &Arc<Manifest>,
    ) -> anyhow::Result<ReleaseConfig> {
        let read = || {
            let (root, cache) = (self.root.clone(), Arc::clone(&self.cache));
            let (app, version, manifest) = (app.to_owned(), version.clone(), Arc::clone(manifest));
            tokio::task::spawn_blocking(move || {
                drift::release_config(&root, &app, &version, &manifest, &cache)
            })
        };
        match read().await? {
            Err(AgentError::Missing { .. }) => {
                let hashes = manifest
                    .get(CONFIG_FILE)
                    .and_then(|entry| FileFacts::of(entry, &ReleaseConfig::default()))
                    .map(|file| file.blobs().iter().map(|b| b.hash.to_hex()).collect())
                    .unwrap_or_default();
                self.fetch_batch(&BlobHashes { hashes }).await?;
                Ok(read().await??)
            }
            read => Ok(read?),
        }
    }

    /// Posts `found` unless the server has it already (and heard of it within the hour).
    async fn report_drift(&self, watch: &mut DriftWatch, found: AgentDrift) {
        let due = watch
            .sent
            .get(&found.app)
            .is_none_or(|(last, at)| *last != found || at.elapsed() >= RESEND_EVERY);
        let unsupported = watch
            .unsupported_until
            .is_some_and(|until| Instant::now() < until);
        if !due || unsupported {
            return;
        }
        let request = self.link.post_request(DRIFT, &found);
        let app = found.app.clone();
        match self.link.answer(request).await {
            Ok(response) if response.status().is_success() => {
                watch.unsupported_until = None;
                watch.report_failed.remove(&app);
                watch.sent.insert(app, (found, Instant::now()));
            }
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                if watch.unsupported_until.is_none() {
                    eprintln!(
                        "the server at {} does not take drift reports (it is older than this agent): drift is still checked and kept in {}, and offered again in an hour",
                        self.state.server,
                        crate::layout::drift_record_path(&self.root, &app).display()
                    );
                }
                watch.unsupported_until = Some(Instant::now() + RESEND_EVERY);
            }
            Ok(response) => {
                let why = format!(
                    "{DRIFT}: {} {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                );
                if watch.report_failed.get(&app) != Some(&why) {
                    eprintln!("could not report the drift of {app}: {why}; trying again at the next check");
                    watch.report_failed.insert(app, why);
                }
            }
            Err(error) => {
                let why = plainly(&error);
                if watch.report_failed.get(&app) != Some(&why) {
                    eprintln!("could not report the drift of {app}: {why}; trying again at the next check");
                    watch.report_failed.insert(app, why);
                }
            }
        }
    }
}

/// Logs what drift was found when it changed since last told.
fn tell(watch: &mut DriftWatch, found: &AgentDrift) {
    let before = watch.told.get(&found.app);
    let same = |a: &AgentDrift, b: &AgentDrift| {
        a.version == b.version
            && a.paths.len() == b.paths.len()
            && a.paths
                .iter()
                .zip(&b.paths)
                .all(|(x, y)| x.path == y.path && x.change == y.change)
    };
    if before.is_some_and(|before| same(before, found)) {
        return;
    }
    let (app, version) = (&found.app, &found.version);
    match found.paths.len() {
        0 if before.is_some_and(|b| !b.paths.is_empty()) => {
            eprintln!("{app} serves {version} exactly again: no drift")
        }
        0 => {}
        n => {
            let shown: Vec<String> = found
                .paths
                .iter()
                .take(5)
                .map(|p| format!("{} ({})", p.path, p.change))
                .collect();
            let more = if n > 5 {
                format!(" and {} more", n - 5)
            } else {
                String::new()
            };
            let paths = if n == 1 {
                "path differs"
            } else {
                "paths differ"
            };
            eprintln!(
                "drift on {app} {version}: {n} {paths} from the release: {}{more}",
                shown.join(", ")
            );
        }
    }
    watch.told.insert(found.app.clone(), found.clone());
}
