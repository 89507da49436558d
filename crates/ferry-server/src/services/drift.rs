//! Drift: what differs, on targets, from the release they run. Agents report what their
//! checks find (`POST /api/v1/agent/drift`); the latest findings per target and application
//! are kept, shown in status, and listed by `ferry drift`.

use ferry_api::{AgentDrift, DriftedPath, TargetDrift};
use ferry_cas::manifest::validate_path;
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::permission::Action;
use ferry_store::{DriftReport, DriftedPathRecord, Target};

use super::apps::no_such_app;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;
use crate::views::rfc3339;

/// The most drifted paths kept per target and application; a report naming more keeps the
/// first of them (by path) and how many there were. Ten thousand paths say plenty about a
/// target edited by hand, and keep a report's row and `ferry drift` bounded.
pub const MAX_KEPT_PATHS: usize = 10_000;

/// Keeps what `target`'s agent found comparing `report.app`'s files with the release it
/// runs. Only an application the target runs or is asked to run may be reported on;
/// anything else looks missing. Paths are checked like a manifest's, each named once.
pub async fn record(state: &AppState, target: &Target, report: AgentDrift) -> ServiceResult<()> {
    validate_name(NameKind::App, &report.app)?;
    validate_version(&report.version)?;
    let runs = state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .any(|r| {
            r.app == report.app && (r.current_version.is_some() || r.desired_version.is_some())
        });
    if !runs {
        return Err(ServiceError::not_found(format!(
            "target {:?} does not run {}",
            target.name, report.app
        )));
    }
    let mut paths = report.paths;
    for drifted in &paths {
        validate_path(&drifted.path).map_err(|why| {
            ServiceError::invalid(format!("drifted path {:?}: {why}", drifted.path))
        })?;
    }
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(twice) = paths.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(ServiceError::invalid(format!(
            "drifted path {:?} is named twice",
            twice[0].path
        )));
    }
    let path_count = paths.len() as u64;
    paths.truncate(MAX_KEPT_PATHS);
    state
        .store
        .record_drift(DriftReport {
            target: target.name.clone(),
            app: report.app,
            version: report.version,
            paths: paths
                .into_iter()
                .map(|p| DriftedPathRecord {
                    path: p.path,
                    change: p.change,
                    first_seen_ms: p.first_seen_ms,
                })
                .collect(),
            path_count,
            checked_ms: state.clock.now_ms(),
        })
        .await?;
    Ok(())
}

/// The drift of every target `caller` may see (view on the application, as in status), of
/// one application or all, in one environment or all: findings that name at least one path
/// and are about the release the target runs now.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
    env: Option<&str>,
) -> ServiceResult<Vec<TargetDrift>> {
    if let Some(env) = env {
        validate_name(NameKind::Environment, env)?;
        if !state
            .store
            .list_environments()
            .await?
            .iter()
            .any(|e| e.name == env)
        {
            return Err(ferry_store::StoreError::NotFound {
                kind: "environment",
                name: env.to_owned(),
            }
            .into());
        }
    }
    let apps = state.store.list_apps().await?;
    let visible = |name: &str| {
        apps.iter().any(|a| {
            a.name == name
                && caller.may(Action::ViewApp {
                    team: &a.team,
                    app: &a.name,
                })
        })
    };
    if let Some(app) = app {
        validate_name(NameKind::App, app)?;
        if !visible(app) {
            return Err(no_such_app(app));
        }
    }
    let (found, running) =
        tokio::try_join!(state.store.target_drift(app), state.store.target_apps(None),)?;
    let runs = |target: &str, app: &str, version: &str| {
        running.iter().any(|r| {
            r.target == target && r.app == app && r.current_version.as_deref() == Some(version)
        })
    };
    Ok(found
        .into_iter()
        .filter(|d| env.is_none_or(|env| d.env == env))
        .filter(|d| visible(&d.report.app))
        .filter(|d| !d.report.paths.is_empty())
        .filter(|d| runs(&d.report.target, &d.report.app, &d.report.version))
        .map(|d| TargetDrift {
            target: d.report.target,
            env: d.env,
            app: d.report.app,
            version: d.report.version,
            count: d.report.path_count,
            paths: d
                .report
                .paths
                .into_iter()
                .map(|p| DriftedPath {
                    path: p.path,
                    change: p.change,
                    first_seen_ms: p.first_seen_ms,
                })
                .collect(),
            checked: rfc3339(d.report.checked_ms),
        })
        .collect())
}
