//! The application page's sections, each built from what the page read once: rows for the
//! template, with nothing a viewer may not see (secret values are left out here, never
//! merely hidden by the template).

use ferry_api::{AppBackup, AppStatus};
use ferry_cas::source::Source;
use ferry_domain::permission::{Action, Level};
use ferry_domain::pipeline::Environment;
use ferry_store::{App, DeploymentRecord, IncidentRecord, Release};

use super::{
    BackupRow, ConfigCard, ConfigLine, DeploymentRow, EnvBackups, EnvRow, GuardVerdict,
    IncidentRow, ReleaseRow,
};
use crate::auth::Caller;
use crate::dashboard::page::PageError;
use crate::services::incidents::may_see;
use crate::services::{config, support};
use crate::state::AppState;
use crate::views::rfc3339;

/// Each environment of the pipeline: what runs there and what the viewer may do.
pub(super) fn environments(
    caller: &Caller,
    app: &App,
    pipeline: &[Environment],
    status: Option<&AppStatus>,
) -> Vec<EnvRow> {
    pipeline
        .iter()
        .enumerate()
        .map(|(at, env)| {
            let here = status.and_then(|s| s.environments.iter().find(|e| e.env == env.name));
            EnvRow {
                name: env.name.clone(),
                served: here.and_then(|e| {
                    e.version.as_ref().map(|v| match e.config {
                        0 => v.clone(),
                        config => format!("{v} with configuration {config}"),
                    })
                }),
                previous: at.checked_sub(1).map(|p| pipeline[p].name.clone()),
                may_deploy: caller.level_on(app, &env.name) >= Level::Deploy,
                confirm: env.policy.protected.then(|| {
                    format!(
                        "{} is protected: change what {} runs there?",
                        env.name, app.name
                    )
                }),
            }
        })
        .collect()
}

/// What the regression guard says of each of `releases` going to `production`, in their
/// order: the guard's own judgement, the one a deployment there gets.
pub(super) async fn guard_verdicts(
    state: &AppState,
    app: &App,
    production: &str,
    releases: &[Release],
) -> Vec<GuardVerdict> {
    match support::guard_each(state, &app.name, production, releases).await {
        Ok(outcomes) => outcomes
            .into_iter()
            .map(|o| match o.undone.is_empty() {
                true => GuardVerdict::MayGo,
                false => GuardVerdict::Undoes(o.undone),
            })
            .collect(),
        Err(why) => releases
            .iter()
            .map(|_| GuardVerdict::Unknown(why.message.clone()))
            .collect(),
    }
}

/// One release with where it came from, as `ferry release show` describes it.
pub(super) fn release_row((release, guard): (Release, GuardVerdict)) -> ReleaseRow {
    let source = serde_json::from_str::<Source>(&release.source)
        .map(|s| s.describe())
        .unwrap_or_else(|_| "unknown".to_owned());
    ReleaseRow {
        created: rfc3339(release.created_ms),
        version: release.version,
        created_by: release.created_by,
        source,
        notes: release.notes,
        hotfix_of: release.hotfix_of,
        guard,
    }
}

/// One deployment.
pub(super) fn deployment_row(d: &DeploymentRecord) -> DeploymentRow {
    DeploymentRow {
        id: d.id,
        status: d.status().to_string(),
        kind: d.kind.to_string(),
        version: d.version.clone(),
        env: d.env.clone(),
        requested_by: d.requested_by.clone(),
        created: rfc3339(d.created_ms),
    }
}

/// The backups the viewer may see, by environment in the pipeline's order.
pub(super) fn backups(
    caller: &Caller,
    app: &App,
    pipeline: &[Environment],
    backups: &[AppBackup],
) -> Vec<EnvBackups> {
    pipeline
        .iter()
        .map(|env| EnvBackups {
            env: env.name.clone(),
            rows: (backups.iter())
                .filter(|b| b.env == env.name)
                .map(|b| backup_row(caller, app, b))
                .collect(),
        })
        .filter(|group| !group.rows.is_empty())
        .collect()
}

fn backup_row(caller: &Caller, app: &App, backup: &AppBackup) -> BackupRow {
    BackupRow {
        may_restore: caller.may(Action::BackUpApp {
            team: &app.team,
            app: &app.name,
            env: &backup.env,
        }),
        confirm: format!(
            "Restore backup {} on {}? What {} holds there now is backed up first.",
            backup.id, backup.target, app.name
        ),
        id: backup.id,
        target: backup.target.clone(),
        version: backup.version.clone().unwrap_or_else(|| "-".to_owned()),
        reason: backup.reason.to_string(),
        created: backup.created.clone(),
        files: backup.files,
        bytes: backup.bytes,
    }
}

/// The newest configuration of each environment the viewer may see it in, secret values
/// left out (never revealed here: revealing is audited, `ferry config show --reveal`).
pub(super) async fn configs(
    state: &AppState,
    caller: &Caller,
    app: &App,
    pipeline: &[Environment],
) -> Result<Vec<ConfigCard>, PageError> {
    let mut cards = Vec::with_capacity(pipeline.len());
    for env in pipeline {
        let view = match config::show(state, caller, &app.name, &env.name, None, false).await {
            Ok(view) => view,
            Err(refused) => {
                let refused = PageError::from(refused);
                if refused.status == axum::http::StatusCode::FORBIDDEN {
                    continue;
                }
                return Err(refused);
            }
        };
        cards.push(ConfigCard {
            env: view.env,
            revision: view.revision,
            author: view.author,
            created: view.created,
            entries: (view.entries.into_iter())
                .map(|e| ConfigLine {
                    key: e.key,
                    value: if e.secret { None } else { e.value },
                })
                .collect(),
        });
    }
    Ok(cards)
}

/// The application's open incidents the viewer may see.
pub(super) fn open_incidents(
    caller: &Caller,
    app: &App,
    incidents: Vec<IncidentRecord>,
) -> Vec<IncidentRow> {
    incidents
        .into_iter()
        .filter(|i| may_see(caller, app, i))
        .map(|i| IncidentRow {
            id: i.id,
            env: i.env,
            severity: i.severity.to_string(),
            status: i.status.to_string(),
            title: i.title,
            opened: rfc3339(i.opened_ms),
        })
        .collect()
}
