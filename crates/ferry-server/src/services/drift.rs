//! Drift: what differs, on targets, from the release they run. Agents report what their
//! checks find (`POST /api/v1/agent/drift`); the latest findings per target and application
//! are kept, shown in status, and listed by `ferry drift`. The first drift found on a
//! release is audited (`drift.detected`), which tells the maintaining team once. People
//! can ask agents to check now (`drift.check`, an agent task).

use ferry_api::{AgentDrift, CheckDrift, DriftChecks, DriftedPath, TargetDrift, TaskWork};
use ferry_cas::manifest::validate_path;
use ferry_domain::audit_event::{AuditAction, DriftCheck, DriftDetected, DriftedExample};
use ferry_domain::name::{validate_name, validate_version, NameKind};
use ferry_domain::permission::Action;
use ferry_store::{App, DriftReport, DriftedPathRecord, Target};

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
    let now = state.clock.now_ms();
    let team = state
        .store
        .app(&report.app)
        .await?
        .map(|app| app.maintainer.unwrap_or(app.team))
        .unwrap_or_default();
    let detected = AuditAction::DriftDetected(DriftDetected {
        env: target.env.clone(),
        version: report.version.clone(),
        paths: path_count,
        examples: paths
            .iter()
            .take(DriftDetected::EXAMPLES)
            .map(|p| DriftedExample {
                path: p.path.clone(),
                change: p.change,
            })
            .collect(),
        team,
    })
    .record(
        now,
        "agent",
        format!("target/{}", target.name),
        Some(&report.app),
    );
    state
        .store
        .record_drift(
            DriftReport {
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
                checked_ms: now,
            },
            detected,
        )
        .await?;
    Ok(())
}

/// The drift of every target `caller` may see (view on the application, as in status), of
/// one application or all, in one environment or all, on one target or all: findings that
/// name at least one path and are about the release the target runs now.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
    env: Option<&str>,
    target: Option<&str>,
) -> ServiceResult<Vec<TargetDrift>> {
    let apps = visible_apps(state, caller, app, env).await?;
    if let Some(target) = target {
        check_target(state, caller, target, env).await?;
    }
    let visible = |name: &str| apps.iter().any(|a| a.name == name);
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
        .filter(|d| target.is_none_or(|target| d.report.target == target))
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

/// The applications `caller` may see (view on the application, as in status), or only
/// `app`; an environment named must exist, and an application named must be visible.
async fn visible_apps(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
    env: Option<&str>,
) -> ServiceResult<Vec<App>> {
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
    if let Some(app) = app {
        validate_name(NameKind::App, app)?;
    }
    let apps: Vec<App> = state
        .store
        .list_apps()
        .await?
        .into_iter()
        .filter(|a| app.is_none_or(|app| a.name == app))
        .filter(|a| {
            caller.may(Action::ViewApp {
                team: &a.team,
                app: &a.name,
            })
        })
        .collect();
    match app {
        Some(app) if apps.is_empty() => Err(no_such_app(app)),
        _ => Ok(apps),
    }
}

/// Asks the agents of the targets that run `request.app` (or each application `caller` may
/// see), in `request.env` or on `request.target` if named, to check it for drift now: one
/// task per target and application, each audited. Offline targets are left out; with none
/// online it is refused.
pub async fn check_now(
    state: &AppState,
    caller: &Caller,
    request: CheckDrift,
) -> ServiceResult<DriftChecks> {
    let apps = visible_apps(
        state,
        caller,
        request.app.as_deref(),
        request.env.as_deref(),
    )
    .await?;
    let (targets, running) =
        tokio::try_join!(state.store.list_targets(), state.store.target_apps(None))?;
    if let Some(target) = &request.target {
        check_target(state, caller, target, request.env.as_deref()).await?;
    }
    let chosen = |t: &Target| {
        request.env.as_ref().is_none_or(|env| &t.env == env)
            && request.target.as_ref().is_none_or(|name| &t.name == name)
    };
    let mut asked: Vec<(&Target, &str)> = Vec::new();
    for row in running.iter().filter(|r| r.current_version.is_some()) {
        let Some(target) = targets.iter().find(|t| t.name == row.target && chosen(t)) else {
            continue;
        };
        if apps.iter().any(|a| a.name == row.app) {
            asked.push((target, &row.app));
        }
    }
    let Some(&(first, _)) = asked.first() else {
        let what = request
            .app
            .as_deref()
            .unwrap_or("an application you may see");
        let nothing = match (&request.target, &request.env) {
            (Some(target), _) => format!("target {target} does not run {what}"),
            (None, Some(env)) => format!("no target in {env} runs {what}"),
            (None, None) => format!("no target runs {what}"),
        };
        return Err(ServiceError::not_found(format!(
            "{nothing}: nothing to check (`ferry status` shows what runs where)"
        )));
    };
    let (online, offline): (Vec<_>, Vec<_>) = asked
        .iter()
        .copied()
        .partition(|(target, _)| super::tasks::require_online(state, target).is_ok());
    if online.is_empty() {
        // Every one is offline: the first's refusal says when it was last seen.
        super::tasks::require_online(state, first)?;
    }
    let mut tasks = Vec::with_capacity(online.len());
    for (target, app) in online {
        let audit = AuditAction::DriftCheck(DriftCheck {
            env: target.env.clone(),
            task: 0,
        })
        .record(
            state.clock.now_ms(),
            &caller.user.name,
            format!("target/{}", target.name),
            Some(app),
        );
        tasks.push(
            super::tasks::request(state, caller, target, app, TaskWork::CheckDrift, audit).await?,
        );
    }
    let mut offline: Vec<String> = offline.iter().map(|(t, _)| t.name.clone()).collect();
    offline.sort();
    offline.dedup();
    Ok(DriftChecks { tasks, offline })
}

/// Refuses a `target` that is not in service, or not in `env` when one is named.
async fn check_target(
    state: &AppState,
    caller: &Caller,
    target: &str,
    env: Option<&str>,
) -> ServiceResult<()> {
    let found = super::targets::in_service(state, caller, target).await?;
    match env {
        Some(env) if found.env != env => Err(ServiceError::invalid(format!(
            "target {target} is in {}, not {env}: name one or the other",
            found.env
        ))),
        _ => Ok(()),
    }
}
