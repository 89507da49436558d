//! Backups of applications' data on a schedule, and their retention: the maintenance pass
//! asks targets whose newest backup is as old as the application's interval for one
//! (`ferry app set --backup-every`), and removes what the application's policy no longer
//! keeps (`--backup-keep`). Backups of what a drift revert kept are neither counted nor
//! removed: they are not data.

use std::collections::HashMap;
use std::time::Duration;

use ferry_api::TaskWork;
use ferry_cas::hash::ContentHash;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::backup_retention::{backups_to_remove, BackupKeep, RetainedBackup};
use ferry_domain::duration::{format_duration, parse_duration};
use ferry_domain::permission::Action;
use ferry_store::{App, BackupSchedule};

use super::manifests::manifest_blobs_of;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::bootstrap::SERVER_ACTOR;
use crate::state::AppState;

/// The maintenance pass's share: scheduled backups that are due are asked for, and
/// retention removes the backups each application's policy no longer keeps (their blobs go
/// with the next garbage collection, past its grace).
pub async fn maintain(state: &AppState) -> ServiceResult<()> {
    let schedules: HashMap<String, BackupSchedule> =
        state.store.backup_schedules().await?.into_iter().collect();
    ask_scheduled(state, &schedules).await?;
    for app in state.store.list_apps().await? {
        let keep = schedules
            .get(&app.name)
            .map_or(Ok(BackupKeep::DEFAULT), |s| s.keep.parse::<BackupKeep>())
            .map_err(|e| {
                ServiceError::internal(format!(
                    "the backup policy of {} is unreadable: {e}",
                    app.name
                ))
            })?;
        prune(state, &app.name, keep).await?;
    }
    Ok(())
}

/// Asks each target that runs an application on a schedule, and whose newest backup of it
/// is as old as the schedule's interval (or that has none), for a backup: once, as a task
/// no one else is waiting on is not asked twice. Offline targets are asked when they are back.
async fn ask_scheduled(
    state: &AppState,
    schedules: &HashMap<String, BackupSchedule>,
) -> ServiceResult<()> {
    let now = state.clock.now_ms();
    let due_apps: Vec<(&String, i64)> = schedules
        .iter()
        .filter_map(|(app, s)| Some((app, s.every_ms?)))
        .collect();
    if due_apps.is_empty() {
        return Ok(());
    }
    let (targets, running) =
        tokio::try_join!(state.store.list_targets(), state.store.target_apps(None))?;
    for (app, every_ms) in due_apps {
        let backups = state.store.list_app_backups(Some(app)).await?;
        for row in running
            .iter()
            .filter(|r| &r.app == app && r.current_version.is_some())
        {
            let Some(target) = targets.iter().find(|t| t.name == row.target) else {
                continue;
            };
            let newest = backups
                .iter()
                .filter(|b| b.target == target.name && b.reason.is_data())
                .map(|b| b.created_ms)
                .max();
            if newest.is_some_and(|at| now.saturating_sub(at) < every_ms)
                || super::tasks::require_online(state, target).is_err()
            {
                continue;
            }
            let since = now.saturating_sub(ferry_domain::task::ANSWER_WITHIN_MS);
            let asked = state
                .store
                .pending_tasks(&target.name, since)
                .await?
                .into_iter()
                .any(|task| {
                    &task.app == app
                        && serde_json::from_str::<TaskWork>(&task.work)
                            .is_ok_and(|work| matches!(work, TaskWork::BackUp { .. }))
                });
            if asked {
                continue;
            }
            let work = TaskWork::BackUp {
                reason: ferry_api::BackupReason::Scheduled,
            };
            let audit = AuditAction::BackupRequest(audit_event::BackupRequest {
                env: target.env.clone(),
                task: 0,
            })
            .record(
                now,
                SERVER_ACTOR,
                format!("target/{}", target.name),
                Some(app),
            );
            state
                .store
                .request_task(
                    ferry_store::NewTask {
                        target: target.name.clone(),
                        app: app.clone(),
                        work: serde_json::to_string(&work).expect("a task's work serializes"),
                        requested_by: SERVER_ACTOR.to_owned(),
                        requested_ms: now,
                    },
                    audit,
                )
                .await?;
            state.wakeups.targets_changed(vec![target.name.clone()]);
        }
    }
    Ok(())
}

/// Removes the backups of `app` that `keep` does not keep, target by target, audited as
/// one `backup.prune`.
async fn prune(state: &AppState, app: &str, keep: BackupKeep) -> ServiceResult<()> {
    let now = state.clock.now_ms();
    let backups = state.store.list_app_backups(Some(app)).await?;
    let mut by_target: HashMap<(&str, &str), Vec<RetainedBackup>> = HashMap::new();
    for backup in backups.iter().filter(|b| b.reason.is_data()) {
        by_target
            .entry((backup.env.as_str(), backup.target.as_str()))
            .or_default()
            .push(RetainedBackup {
                id: backup.id,
                created_ms: backup.created_ms,
                pinned: false,
            });
    }
    let mut removed = Vec::new();
    for retained in by_target.values() {
        for id in backups_to_remove(retained, keep, now) {
            let backup = backups
                .iter()
                .find(|b| b.id == id)
                .expect("retention removes backups it was given");
            let mut blobs: Vec<String> =
                manifest_blobs_of(state, &backup.digest, &backup.manifest_blob)
                    .await?
                    .iter()
                    .map(ContentHash::to_hex)
                    .collect();
            blobs.push(backup.manifest_blob.clone());
            removed.push((id, blobs));
        }
    }
    if removed.is_empty() {
        return Ok(());
    }
    removed.sort_by_key(|(id, _)| *id);
    let audit = AuditAction::BackupPrune(audit_event::BackupPrune {
        removed: removed.iter().map(|(id, _)| *id).collect(),
        keep: keep.to_string(),
    })
    .record(now, SERVER_ACTOR, format!("app/{app}"), Some(app));
    let n = removed.len();
    match state.store.delete_app_backups(app, removed, audit).await {
        Ok(()) => {
            tracing::info!("retention removed {n} backups of {app}");
            Ok(())
        }
        // Another server sharing the database removed them first.
        Err(ferry_store::StoreError::NotFound { .. }) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

/// Sets how often `app`'s data is backed up and what retention keeps of its backups (its
/// team's lead, or an admin), audited as `app.backups`. Returns the schedule as it stands.
/// How often `app`'s data is backed up (`None`: not on a schedule) and which backups
/// retention keeps, as `ferry app show` says it.
pub async fn schedule_of(state: &AppState, app: &str) -> ServiceResult<(Option<String>, String)> {
    let schedule = current_schedule(state, app).await?;
    let every = schedule
        .as_ref()
        .and_then(|s| s.every_ms)
        .map(|ms| format_duration(Duration::from_millis(ms as u64)));
    let keep = schedule.map_or(BackupKeep::DEFAULT.to_string(), |s| s.keep);
    Ok((every, keep))
}

/// The schedule stored for `app`, if one was ever set.
async fn current_schedule(state: &AppState, app: &str) -> ServiceResult<Option<BackupSchedule>> {
    Ok(state
        .store
        .backup_schedules()
        .await?
        .into_iter()
        .find(|(name, _)| name == app)
        .map(|(_, schedule)| schedule))
}

pub async fn set_schedule(
    state: &AppState,
    caller: &Caller,
    app: &App,
    every: Option<&str>,
    keep: Option<&str>,
) -> ServiceResult<(Option<String>, String)> {
    let current = current_schedule(state, &app.name).await?;
    let every_ms = match every {
        None => current.as_ref().and_then(|s| s.every_ms),
        Some("off") => None,
        Some(text) => {
            let every = parse_duration(text).map_err(|e| {
                ServiceError::invalid(format!("--backup-every {text:?}: {e}; or `off`"))
            })?;
            if every < MIN_BACKUP_EVERY {
                return Err(ServiceError::invalid(format!(
                    "--backup-every {text:?} is shorter than a minute: back up at most once a minute"
                )));
            }
            Some(every.as_millis().min(i64::MAX as u128) as i64)
        }
    };
    let keep = match keep {
        None => current
            .as_ref()
            .map_or(BackupKeep::DEFAULT.to_string(), |s| s.keep.clone()),
        Some(text) => text
            .parse::<BackupKeep>()
            .map_err(|e| ServiceError::invalid(format!("--backup-keep: {e}")))?
            .to_string(),
    };
    caller.require(Action::ManageTeamRoles { team: &app.team })?;
    let every_text = every_ms.map(|ms| format_duration(Duration::from_millis(ms as u64)));
    let schedule = BackupSchedule {
        every_ms,
        keep: keep.clone(),
    };
    if current.as_ref() != Some(&schedule) {
        let audit = caller.audit(
            AuditAction::AppBackups(audit_event::AppBackups {
                every: every_text.clone(),
                keep: keep.clone(),
            }),
            format!("app/{}", app.name),
            Some(&app.name),
        );
        state
            .store
            .set_backup_schedule(&app.name, schedule, audit)
            .await?;
    }
    Ok((every_text, keep))
}

/// The shortest interval of scheduled backups.
const MIN_BACKUP_EVERY: Duration = Duration::from_secs(60);
