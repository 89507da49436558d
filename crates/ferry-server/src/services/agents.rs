//! What a target's agent may do: enroll, learn what to run, read the releases it is asked
//! to run and nothing else, and report on what it was asked to do and nothing else. The
//! agent is trusted only with its own target: every answer here is limited to it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use ferry_api::{AgentConfig, AgentReport, DesiredApp, DesiredStage};
use ferry_cas::hash::ContentHash;
use ferry_domain::agent_build::AgentBuild;
use ferry_domain::audit_event::{AuditAction, TargetEnroll};
use ferry_domain::deployment::{Ahead, Kind, Outcome, Report};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::step_log::check_report;
use ferry_domain::token::hash_token;
use ferry_store::{Release, StoreError, Target, TargetApp, TargetReport};

use super::manifests::load_manifest_blobs;
use super::orchestrator::{apply_report, record_progress};
use super::{ServiceError, ServiceResult};
use crate::auth::new_token;
use crate::state::AppState;

/// Exchanges a one-time enrollment token (as `ferry target enroll` printed it, perhaps
/// ending in `.FINGERPRINT`) for the agent's long-lived credential, which exists nowhere
/// else: the server keeps its hash.
/// Ten failed enrollments a minute from one address make the next wait
/// ([`super::throttles`]).
pub async fn enroll(
    state: &AppState,
    token: &str,
    from: IpAddr,
) -> ServiceResult<(Target, String)> {
    let now = state.clock.now_ms();
    state.throttles.check_enrollment(from, now)?;
    let credential = new_token().map_err(|e| ServiceError::internal(e.to_string()))?;
    // The store makes the subject `target/NAME` once it knows which target enrolled.
    let record =
        AuditAction::TargetEnroll(TargetEnroll {}).record(now, "agent", String::new(), None);
    let token = token.trim();
    let token = token.split_once('.').map_or(token, |(token, _)| token);
    let enrolled = state
        .store
        .enroll_target(&hash_token(token), &hash_token(&credential), now, record)
        .await;
    if let Err(StoreError::Refused(_)) = &enrolled {
        state.throttles.enrollment_failed(from, now);
    }
    Ok((enrolled?, credential))
}

/// Records that `target`'s agent is there (`heartbeats.rs`): the store's last contact stays
/// within two intervals of the truth, inside the three after which the target counts as
/// offline.
/// A heartbeat from `target`'s agent, with what it `said` of itself (its build, its disk).
pub async fn heartbeat(
    state: &AppState,
    target: &Target,
    said: Option<AgentBuild>,
) -> ServiceResult<()> {
    let now_ms = state.clock.now_ms();
    state
        .heartbeats
        .heard(
            state.store.as_ref(),
            state.liveness,
            &target.name,
            target.last_seen_ms,
            now_ms,
        )
        .await?;
    // What the agent says of itself is written when it changed enough to matter.
    if let Some(build) = said {
        if target
            .agent
            .as_ref()
            .is_none_or(|known| known.outdated_by(&build))
        {
            state.store.record_agent_build(&target.name, &build).await?;
        }
    }
    Ok(())
}

/// What `target` should run now; the question also counts as its agent's heartbeat.
pub async fn desired(
    state: &AppState,
    target: &Target,
    said: Option<AgentBuild>,
) -> ServiceResult<Vec<DesiredApp>> {
    heartbeat(state, target, said).await?;
    let rows: Vec<TargetApp> = state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .filter(|row| row.deployment_id.is_some() || row.stage.is_some())
        .collect();
    let mut desired = Vec::with_capacity(rows.len());
    for row in rows {
        let backup_first = backs_up_first(state, &row).await?;
        desired.push(DesiredApp {
            // A rollback, or a target asked to go back after another target failed.
            switch_back: row.deployment_kind == Some(Kind::Rollback)
                || row.desired_version != row.deployment_version
                || row.desired_config != row.deployment_config,
            stage: row.stage.map(|(served, deployment)| DesiredStage {
                version: served.version,
                deployment,
                config: served.config,
            }),
            app: row.app,
            version: row.desired_version,
            deployment: row.deployment_id,
            keep: Some(row.keep_releases),
            backup_first,
            config: row.desired_config,
            run_as: row.run_as.map(|user| user.to_string()),
        });
    }
    Ok(desired)
}

/// Whether the target backs up the application's data before it switches for the
/// deployment it is asked to run: a deployment (not a rollback, nor a go-back) to a
/// protected environment, without `--skip-backup`.
async fn backs_up_first(state: &AppState, row: &TargetApp) -> ServiceResult<bool> {
    let deploys = row.deployment_kind == Some(Kind::Deploy)
        && row.desired_version.is_some()
        && row.desired_version == row.deployment_version
        && (row.current_version != row.desired_version || row.current_config != row.desired_config);
    let Some(id) = row.deployment_id.filter(|_| deploys) else {
        return Ok(false);
    };
    let protected = state
        .store
        .list_environments()
        .await?
        .iter()
        .any(|env| env.name == row.env && env.policy.protected);
    if !protected {
        return Ok(false);
    }
    Ok(match state.store.deployment(id).await? {
        Some(record) => super::policy::Overrides::of(&record)?.skip_backup.is_none(),
        None => false,
    })
}

/// The release to stage ahead on a target, if any.
fn staged_version(row: &TargetApp) -> Option<&str> {
    row.stage
        .as_ref()
        .map(|(served, _)| served.version.as_str())
}

/// The values of configuration revision `revision` of `app`, for `target`'s agent: only a
/// revision of its own environment that the target is asked to run or stage, or runs now
/// (its drift check renders the files it serves); anything else looks missing.
pub async fn config(
    state: &AppState,
    target: &Target,
    app: &str,
    revision: u64,
) -> ServiceResult<AgentConfig> {
    let missing = || {
        ServiceError::not_found(format!(
            "target {} is not asked to run {app} with configuration revision {revision}",
            target.name
        ))
    };
    let asked = revision > 0
        && (state.store.target_apps(Some(&target.name)).await?.iter()).any(|row| {
            row.app == app
                && (row.desired_config == revision
                    || row.current_config == revision
                    || row
                        .stage
                        .as_ref()
                        .is_some_and(|(s, _)| s.config == revision))
        });
    if !asked {
        return Err(missing());
    }
    let stored = (state
        .store
        .config_revision(app, &target.env, Some(revision))
        .await?)
        .ok_or_else(missing)?;
    let values = super::config::settings(state, &stored)?
        .into_iter()
        .map(|(key, setting)| (key.to_string(), setting.value))
        .collect();
    Ok(AgentConfig {
        app: app.to_owned(),
        env: target.env.clone(),
        revision,
        values,
    })
}

/// A release `target` runs or is asked to run or stage; anything else is not its business
/// and looks missing.
pub async fn release(
    state: &AppState,
    target: &Target,
    app: &str,
    version: &str,
) -> ServiceResult<Release> {
    let asked = state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .any(|r| {
            r.app == app
                && (r.desired_version.as_deref() == Some(version)
                    || r.current_version.as_deref() == Some(version)
                    || staged_version(&r) == Some(version))
        });
    let release = if asked {
        state.store.release(app, version).await?
    } else {
        None
    };
    release.ok_or_else(|| {
        ServiceError::not_found(format!(
            "target {:?} runs no release {app} {version}",
            target.name
        ))
    })
}

/// `target`'s agent as an uploader of content of `app`, which the target must run or be
/// asked to run; any other application looks missing.
pub async fn uploader(
    state: &AppState,
    target: &Target,
    app: &str,
) -> ServiceResult<super::releases::ReleaseAuthor> {
    validate_name(NameKind::App, app)?;
    let runs = state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .any(|r| r.app == app && (r.current_version.is_some() || r.desired_version.is_some()));
    let record = match runs {
        true => state.store.app(app).await?,
        false => None,
    };
    let record = record.ok_or_else(|| {
        ServiceError::not_found(format!("target {:?} does not run {app}", target.name))
    })?;
    Ok(super::releases::ReleaseAuthor::agent(record, &target.name))
}

/// The blobs asked for, if every one belongs to a release `target` is asked to run or
/// stage.
pub async fn fetchable(
    state: &AppState,
    target: &Target,
    hashes: &[String],
) -> ServiceResult<Vec<ContentHash>> {
    let mut allowed: Vec<Arc<HashSet<ContentHash>>> = Vec::new();
    for row in state.store.target_apps(Some(&target.name)).await? {
        for version in [row.desired_version.as_deref(), staged_version(&row)]
            .into_iter()
            .flatten()
        {
            if let Some(release) = state.store.release(&row.app, version).await? {
                allowed.push(load_manifest_blobs(state, &release).await?);
            }
        }
    }
    let hashes = super::blobs::parse_hashes(hashes)?;
    let outside = |allowed: &[Arc<HashSet<ContentHash>>]| {
        hashes
            .iter()
            .any(|hash| !allowed.iter().any(|blobs| blobs.contains(hash)))
    };
    // The backups of the applications it runs, in its environment: what a restore reads.
    if outside(&allowed) {
        let mut apps: Vec<String> = state
            .store
            .target_apps(Some(&target.name))
            .await?
            .into_iter()
            .filter(|r| r.current_version.is_some())
            .map(|r| r.app)
            .collect();
        apps.dedup();
        for app in apps {
            allowed.extend(super::app_backups::fetchable_blobs(state, &app, &target.env).await?);
        }
    }
    match hashes
        .iter()
        .find(|hash| !allowed.iter().any(|blobs| blobs.contains(hash)))
    {
        Some(hash) => Err(ServiceError::not_found(format!(
            "blob {hash} is not part of a release this target runs, nor of a backup of an \
             application it runs"
        ))),
        None => Ok(hashes),
    }
}

/// Records how converging one application went on `target` and moves its deployment on.
/// An agent reports only on what its own target was asked to do; staging ahead is reported
/// as `staged` or `stage_failed` and leaves what the target runs as it was. The logs of the
/// hooks and health check it ran are checked against the bounds an agent keeps to (a report
/// past them is refused whole) and kept with the deployment before it moves on, so they are
/// there once it ends.
pub async fn report(state: &AppState, target: &Target, report: AgentReport) -> ServiceResult<()> {
    check_report(&report.logs).map_err(ServiceError::invalid)?;
    let reason = report
        .reason
        .clone()
        .unwrap_or_else(|| "no reason given".to_owned());
    let detail = match &report.output_tail {
        Some(tail) if !tail.is_empty() => format!("{reason}\n{tail}"),
        _ => reason.clone(),
    };
    let staging = report.outcome.is_staging();
    let asked = state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .find(|r| {
            let deployment = if staging {
                r.stage.as_ref().map(|(_, d)| *d)
            } else {
                r.deployment_id
            };
            r.app == report.app && deployment == Some(report.deployment)
        });
    let Some(asked) = asked else {
        return Err(ServiceError::not_found(format!(
            "target {:?} was not asked to {} {} in deployment {}",
            target.name,
            if staging { "stage" } else { "run" },
            report.app,
            report.deployment
        )));
    };
    if !report.logs.is_empty() {
        // The logs go with the release the agent ran: the deployment's, or the one it was
        // told to go back to (a report on the first may arrive after it was told that).
        let version = report
            .version
            .clone()
            .or_else(|| asked.desired_version.clone())
            .unwrap_or_default();
        let asked_for = |v: &Option<String>| v.as_deref() == Some(version.as_str());
        if !asked_for(&asked.desired_version) && !asked_for(&asked.deployment_version) {
            return Err(ServiceError::invalid(format!(
                "the report logs steps of release {version:?} of {}, which deployment {} did not ask target {:?} to run",
                report.app, report.deployment, target.name
            )));
        }
        state
            .store
            .record_step_logs(
                report.deployment,
                &target.name,
                &version,
                report.logs.clone(),
                state.clock.now_ms(),
            )
            .await?;
    }
    // A success carries a detail only when the agent noted something (a repair).
    let noted = report.outcome != Outcome::Succeeded || report.reason.is_some();
    let reported = |detail: &str| {
        report
            .outcome
            .target_app_state()
            .map(|target_state| TargetReport {
                current_config: report.current_config,
                target: target.name.clone(),
                app: report.app.clone(),
                current_version: report.current_version.clone(),
                state: target_state,
                detail: noted.then(|| detail.to_owned()),
                at_ms: state.clock.now_ms(),
            })
    };
    if report.outcome == Outcome::Progress {
        if let Some(progress) = reported(&reason) {
            record_progress(state, report.deployment, progress).await?;
        }
        return Ok(());
    }
    let outcome = report.outcome;
    let ahead = match outcome {
        Outcome::Staged => Some(Ahead::Staged),
        Outcome::StageFailed => Some(Ahead::Failed {
            reason: detail.clone(),
        }),
        _ => None,
    };
    apply_report(
        state,
        report.deployment,
        &target.name,
        |step| Report::from_agent(step, outcome, &detail),
        ahead.as_ref(),
        reported(&detail),
    )
    .await
}
