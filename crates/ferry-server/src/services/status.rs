//! The status document (`GET /api/v1/status`): what runs where, for every application.
//!
//! It is built from one read of each kind of data, whatever the number of applications, and
//! kept. Every write that can change it bumps the store's status revision in the same
//! transaction (triggers in SQLite), so while the revision stays the same a request costs one
//! read of that number; after any change, the next request builds the document again. The
//! revision lives in the database, not in this process, so servers sharing one database
//! never serve each other's stale documents.
//!
//! The kept document holds every application, each serialized once per build. What a caller
//! may see is decided per request from their own permissions, and their answer is made of
//! the applications they see; whole answers are kept per set of visible applications (the
//! admin's "all of them" is one such set), never per user.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use ferry_api::{AppStatus, Backport, DriftSummary, EnvStatus, TargetStatus};
use ferry_domain::backport::ObligationStatus;
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_store::{BadVersion, DeploymentRecord, DriftReport, Store, TargetApp};

use crate::auth::Caller;
use crate::services::apps::no_such_app;
use crate::services::ServiceResult;
use crate::views::{backport_json, rfc3339};

/// The status document built last, and the lock that lets one request at a time build it.
#[derive(Default)]
pub struct StatusCache {
    built: RwLock<Option<Arc<Built>>>,
    /// Held while building, so requests that arrive together after a change build once.
    building: tokio::sync::Mutex<()>,
}

/// A status document, by application, as of one revision.
struct Built {
    /// The revision read before the data: the document holds at least every change up to it.
    revision: i64,
    /// Every application, in the store's order (by name).
    apps: Vec<BuiltApp>,
    /// Whole answers by the applications they show (one bit per application of `apps`).
    bodies: Mutex<HashMap<Vec<u64>, Bytes>>,
}

/// One application's part of the document.
struct BuiltApp {
    name: String,
    /// The team that owns it, which decides who may see it.
    team: String,
    /// Its `AppStatus`, for the dashboard.
    status: Arc<AppStatus>,
    /// Its `AppStatus`, serialized.
    json: Vec<u8>,
}

/// Whole answers kept per build; a build that has seen more sets of visible applications
/// than this starts over (each answer is one copy of the document at most).
const BODIES_KEPT: usize = 64;

impl StatusCache {
    /// The status document as `caller` may see it, of every application or of `app` only,
    /// as the JSON body to send.
    pub async fn body(
        &self,
        store: &dyn Store,
        caller: &Caller,
        app: Option<&str>,
    ) -> ServiceResult<Bytes> {
        if let Some(name) = app {
            validate_name(NameKind::App, name)?;
        }
        let built = self.current(store).await?;
        let may_see = |app: &BuiltApp| {
            caller.may(Action::ViewApp {
                team: &app.team,
                app: &app.name,
            })
        };
        if let Some(name) = app {
            let app = built
                .apps
                .iter()
                .find(|a| a.name == name)
                .filter(|app| may_see(app))
                .ok_or_else(|| no_such_app(name))?;
            return Ok(document([app].into_iter()));
        }
        let mut visible = vec![0u64; built.apps.len().div_ceil(64)];
        for (at, app) in built.apps.iter().enumerate() {
            if may_see(app) {
                visible[at / 64] |= 1 << (at % 64);
            }
        }
        let mut bodies = built
            .bodies
            .lock()
            .expect("the cache lock is never poisoned");
        if let Some(body) = bodies.get(&visible) {
            return Ok(body.clone());
        }
        let body = document(
            built
                .apps
                .iter()
                .enumerate()
                .filter(|(at, _)| visible[at / 64] & (1 << (at % 64)) != 0)
                .map(|(_, app)| app),
        );
        if bodies.len() >= BODIES_KEPT {
            bodies.clear();
        }
        bodies.insert(visible, body.clone());
        Ok(body)
    }

    /// The status of every application `caller` may see, with the team that owns it, by
    /// name: the dashboard's overview.
    pub async fn visible(
        &self,
        store: &dyn Store,
        caller: &Caller,
    ) -> ServiceResult<Vec<(String, Arc<AppStatus>)>> {
        let built = self.current(store).await?;
        Ok(built
            .apps
            .iter()
            .filter(|app| {
                caller.may(Action::ViewApp {
                    team: &app.team,
                    app: &app.name,
                })
            })
            .map(|app| (app.team.clone(), app.status.clone()))
            .collect())
    }

    /// The document as of the store's revision now: the kept one if the revision has not
    /// moved since it was built, else a new one.
    async fn current(&self, store: &dyn Store) -> ServiceResult<Arc<Built>> {
        let revision = store.status_revision().await?;
        if let Some(built) = self.kept(revision) {
            return Ok(built);
        }
        let _building = self.building.lock().await;
        // Another request may have built it while this one waited.
        if let Some(built) = self.kept(revision) {
            return Ok(built);
        }
        let built = Arc::new(build(store).await?);
        *self
            .built
            .write()
            .expect("the cache lock is never poisoned") = Some(built.clone());
        Ok(built)
    }

    /// The kept document, if it was built at `revision`. Only an equal revision counts: a
    /// database restored from a backup can go back to an older one.
    fn kept(&self, revision: i64) -> Option<Arc<Built>> {
        self.built
            .read()
            .expect("the cache lock is never poisoned")
            .as_ref()
            .filter(|built| built.revision == revision)
            .cloned()
    }
}

/// `{"apps":[...]}` made of the applications' serialized parts: the same bytes as
/// serializing a `Status` of them.
fn document<'a>(apps: impl Iterator<Item = &'a BuiltApp>) -> Bytes {
    let mut body = b"{\"apps\":[".to_vec();
    for (at, app) in apps.enumerate() {
        if at > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&app.json);
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// Builds the document with one read of each kind of data: applications, the pipeline,
/// what targets report, the deployments that went live, the releases rolled back and the
/// backport obligations.
async fn build(store: &dyn Store) -> ServiceResult<Built> {
    // The revision before the data: whatever changes meanwhile moves it again, and the next
    // request builds anew. Read after, it could name changes the data does not hold.
    let revision = store.status_revision().await?;
    let (apps, pipeline, reported, live, bad, backports, drift) = tokio::try_join!(
        store.list_apps(),
        store.list_environments(),
        store.target_apps(None),
        store.live_deployments(),
        store.every_bad_version(),
        store.backports(None),
        store.target_drift(None),
    )?;
    let drift: HashMap<(&str, &str), &DriftReport> = drift
        .iter()
        .map(|d| ((d.report.target.as_str(), d.report.app.as_str()), &d.report))
        .collect();
    let mut live_versions: HashMap<(&str, &str), &DeploymentRecord> = HashMap::new();
    for deployment in &live {
        live_versions.insert((&deployment.app, &deployment.env), deployment);
    }
    let mut rolled_back_from: HashMap<(&str, &str), Vec<String>> = HashMap::new();
    for BadVersion { app, env, version } in &bad {
        rolled_back_from
            .entry((app, env))
            .or_default()
            .push(version.clone());
    }
    let mut targets: HashMap<(&str, &str), Vec<TargetStatus>> = HashMap::new();
    for row in &reported {
        targets
            .entry((&row.app, &row.env))
            .or_default()
            .push(target_status(
                row,
                drift.get(&(row.target.as_str(), row.app.as_str())).copied(),
            ));
    }
    let mut open_backports: HashMap<String, Vec<Backport>> = HashMap::new();
    for backport in backports
        .into_iter()
        .filter(|b| b.status == ObligationStatus::Open)
    {
        open_backports
            .entry(backport.app.clone())
            .or_default()
            .push(backport_json(backport));
    }
    let apps = apps
        .iter()
        .map(|app| {
            let environments = pipeline
                .iter()
                .map(|env| {
                    let key = (app.name.as_str(), env.name.as_str());
                    EnvStatus {
                        env: env.name.clone(),
                        version: live_versions.get(&key).map(|d| d.version.clone()),
                        config: live_versions.get(&key).map_or(0, |d| d.config),
                        back_from: live_versions
                            .get(&key)
                            .and_then(|d| d.went_back_from())
                            .map(str::to_owned),
                        targets: targets.remove(&key).unwrap_or_default(),
                        rolled_back_from: rolled_back_from.remove(&key).unwrap_or_default(),
                    }
                })
                .collect();
            let status = AppStatus {
                environments,
                backports: open_backports.remove(&app.name).unwrap_or_default(),
                app: app.name.clone(),
            };
            BuiltApp {
                json: serde_json::to_vec(&status).expect("status documents serialize"),
                status: Arc::new(status),
                name: app.name.clone(),
                team: app.team.clone(),
            }
        })
        .collect();
    Ok(Built {
        revision,
        apps,
        bodies: Mutex::default(),
    })
}

/// A target's line in the document; its drift shows only when its agent's latest findings
/// are about the release it runs now (findings about the one it ran before are stale until
/// the next check) and name at least one path.
fn target_status(row: &TargetApp, drift: Option<&DriftReport>) -> TargetStatus {
    TargetStatus {
        target: row.target.clone(),
        version: row.current_version.clone(),
        config: row.current_config,
        state: row.state,
        drift: drift
            .filter(|d| row.current_version.as_deref() == Some(d.version.as_str()))
            .and_then(drift_summary),
    }
}

/// Findings in short: how many paths, since when; none when no path differs.
pub fn drift_summary(report: &DriftReport) -> Option<DriftSummary> {
    let since = report.paths.iter().map(|p| p.first_seen_ms).min()?;
    Some(DriftSummary {
        version: report.version.clone(),
        paths: report.path_count,
        since: rfc3339(since),
    })
}

#[cfg(test)]
mod tests {
    use ferry_api::Status;

    use super::*;

    fn app_status(name: &str, n_targets: usize) -> AppStatus {
        AppStatus {
            app: name.to_owned(),
            environments: vec![EnvStatus {
                config: 0,
                env: "dev".to_owned(),
                version: Some("1.0".to_owned()),
                back_from: None,
                targets: (0..n_targets)
                    .map(|i| TargetStatus {
                        config: 0,
                        target: format!("dev-{i}"),
                        version: None,
                        state: ferry_domain::deployment::TargetAppState::Unknown,
                        drift: None,
                    })
                    .collect(),
                rolled_back_from: vec!["0.9".to_owned()],
            }],
            backports: Vec::new(),
        }
    }

    /// The answer is put together from each application's part; it must be byte for byte
    /// what serializing the whole `Status` gave before, for none, one or several.
    #[test]
    fn a_document_of_parts_is_the_serialized_status() {
        for n_apps in 0..4 {
            let apps: Vec<AppStatus> = (0..n_apps)
                .map(|i| app_status(&format!("app-{i}"), i))
                .collect();
            let parts: Vec<BuiltApp> = apps
                .iter()
                .map(|app| BuiltApp {
                    name: app.app.clone(),
                    team: "shop".to_owned(),
                    status: Arc::new(app.clone()),
                    json: serde_json::to_vec(app).unwrap(),
                })
                .collect();
            assert_eq!(
                document(parts.iter()),
                serde_json::to_vec(&Status { apps }).unwrap(),
                "{n_apps} applications"
            );
        }
    }
}
