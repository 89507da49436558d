//! Keeping the content store lean and sound: retention per application, garbage collection
//! of blobs no release references, and an integrity check that re-hashes everything.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use ferry_cas::blobs::BlobHealth;
use ferry_cas::hash::ContentHash;
use ferry_domain::audit::AuditRecord;
use ferry_domain::audit_event::{AuditAction, ReleasePrune};
use ferry_domain::permission::Action;
use ferry_domain::retention::{kept_past_keep, releases_to_prune, RetainedRelease};
use ferry_domain::rollback::rollback_target;
use ferry_store::ContentHold;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::services::apps::visible_app;
use crate::services::manifests::load_manifest;
use crate::services::policy::live_history;
use crate::services::{Refusal, ServiceResult};
use crate::state::AppState;

/// What one retention pass over an application removed.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct PruneReport {
    pub app: String,
    /// Versions removed, newest first.
    pub removed: Vec<String>,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    /// Releases past the newest `keep` that stay because the pipeline still needs them,
    /// newest first.
    pub kept: Vec<KeptRelease>,
}

/// A release retention keeps past the newest `keep`, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeptRelease {
    pub version: String,
    pub reason: String,
}

/// Removes the releases retention no longer keeps (all but the newest `keep`, and never a
/// pinned one) and the content only they used; for anyone who may create releases of the
/// application.
pub async fn prune(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<PruneReport> {
    let app = visible_app(state, caller, name).await?;
    caller.require(Action::CreateRelease { team: &app.team })?;
    prune_app(
        state,
        &app,
        state.gc_grace,
        &caller.user.name,
        caller.now_ms(),
    )
    .await
}

/// Removes the releases of `app` that retention no longer keeps, then collects garbage;
/// `actor` made the change at `now_ms`.
async fn prune_app(
    state: &AppState,
    app: &ferry_store::App,
    grace: Duration,
    actor: &str,
    now_ms: i64,
) -> ServiceResult<PruneReport> {
    let releases = state.store.list_releases(&app.name).await?;
    let pins = pinned_versions(state, &app.name).await?;
    let retained: Vec<RetainedRelease> = releases
        .iter()
        .map(|r| RetainedRelease {
            version: r.version.clone(),
            pinned: pins.get(&r.version).cloned(),
        })
        .collect();
    let doomed = releases_to_prune(&retained, app.keep_releases);
    let mut report = PruneReport {
        app: app.name.clone(),
        kept: kept_past_keep(&retained, app.keep_releases)
            .into_iter()
            .map(|(version, reason)| KeptRelease {
                version: version.to_owned(),
                reason: reason.to_owned(),
            })
            .collect(),
        ..PruneReport::default()
    };
    if doomed.is_empty() {
        return Ok(report);
    }
    let mut deletions = Vec::new();
    for release in releases.iter().filter(|r| doomed.contains(&r.version)) {
        let manifest = load_manifest(state, release).await?;
        let mut blobs: Vec<String> = manifest.blobs().iter().map(|c| c.hash.to_hex()).collect();
        blobs.push(release.manifest_blob.clone());
        deletions.push((release.version.clone(), blobs));
    }
    state
        .store
        .delete_releases(
            &app.name,
            deletions,
            prune_record(app, &doomed, actor, now_ms),
        )
        .await?;
    let (blobs_removed, bytes_freed) = collect_garbage(state, grace).await?;
    report.removed = doomed;
    report.blobs_removed = blobs_removed;
    report.bytes_freed = bytes_freed;
    Ok(report)
}

/// Succeeded deployments to protected environments whose releases stay pinned.
const PROTECTED_DEPLOYMENTS_PINNED: usize = 5;

/// Why a release of `app` must be kept, by version, every reason in the order found. Retention never removes what the
/// pipeline still needs: what a target runs, is about to run or stages; what a deployment
/// awaiting approval or running deploys; what a rollback in each environment would go back
/// to, and the last releases deployed to a protected environment; and the hotfix and base of
/// every backport obligation that still guards (the regression guard compares candidates
/// with both, for good).
async fn pinned_versions(state: &AppState, app: &str) -> ServiceResult<HashMap<String, String>> {
    let mut pins: HashMap<String, Vec<String>> = HashMap::new();
    let mut pin = |version: &str, why: String| {
        let reasons = pins.entry(version.to_owned()).or_default();
        if !reasons.contains(&why) {
            reasons.push(why);
        }
    };
    for row in state.store.target_apps(None).await? {
        if row.app != app {
            continue;
        }
        for version in [&row.current_version, &row.desired_version]
            .into_iter()
            .flatten()
        {
            pin(version, format!("deployed on {}", row.target));
        }
        if let Some((served, _)) = &row.stage {
            pin(&served.version, format!("staged on {}", row.target));
        }
    }
    let deployments = state.store.list_deployments(Some(app), 1000).await?;
    for deployment in deployments.iter().filter(|d| d.status().is_active()) {
        pin(
            &deployment.version,
            format!("deployment {} is {}", deployment.id, deployment.status()),
        );
    }
    let pipeline = state.store.list_environments().await?;
    let live = live_history(state, app).await?;
    // One read for every environment, not one per environment.
    let every_bad = state.store.every_bad_version().await?;
    for env in &pipeline {
        let in_env: Vec<String> = live
            .iter()
            .filter(|d| d.env == env.name)
            .map(|d| d.version.clone())
            .collect();
        let bad: Vec<String> = every_bad
            .iter()
            .filter(|b| b.app == app && b.env == env.name)
            .map(|b| b.version.clone())
            .collect();
        if let Ok(back) = rollback_target(app, &env.name, &in_env, &bad, None) {
            pin(&back, format!("a rollback in {} goes back to it", env.name));
        }
    }
    let protected: Vec<&str> = pipeline
        .iter()
        .filter(|e| e.policy.protected)
        .map(|e| e.name.as_str())
        .collect();
    let recent = deployments
        .iter()
        .filter(|d| d.went_live() && protected.contains(&d.env.as_str()))
        .take(PROTECTED_DEPLOYMENTS_PINNED);
    for deployment in recent {
        pin(
            &deployment.version,
            format!("recently deployed to {}", deployment.env),
        );
    }
    for backport in state.store.backports(Some(app)).await? {
        if backport.status.guards() {
            let obligation = format!("backport obligation {}", backport.id);
            pin(
                &backport.hotfix_version,
                format!("the hotfix of {obligation}"),
            );
            pin(
                &backport.base_version,
                format!("the base of the hotfix of {obligation}"),
            );
        }
    }
    Ok(pins
        .into_iter()
        .map(|(version, reasons)| (version, reasons.join("; ")))
        .collect())
}

/// The audit record of pruning `removed` from `app`.
fn prune_record(
    app: &ferry_store::App,
    removed: &[String],
    actor: &str,
    now_ms: i64,
) -> AuditRecord {
    AuditAction::ReleasePrune(ReleasePrune {
        removed: removed.to_vec(),
        keep: app.keep_releases,
    })
    .record(now_ms, actor, format!("app/{}", app.name), Some(&app.name))
}

/// Deletes blobs no release references that are older than `grace`. Holds content
/// exclusively, so no release is being created meanwhile on any server.
pub async fn collect_garbage(state: &AppState, grace: Duration) -> ServiceResult<(u64, u64)> {
    let _exclusive = state.store.hold_content(ContentHold::Exclusive).await?;
    let referenced: HashSet<ContentHash> = state
        .store
        .referenced_blobs()
        .await?
        .iter()
        .filter_map(|hex| ContentHash::from_hex(hex))
        .collect();
    let older_than = SystemTime::now() - grace;
    let (mut n_blobs, mut n_bytes) = (0, 0);
    for blob in state.blobs.stored().await? {
        // A young blob may belong to an upload whose release is not created yet; an
        // object's last-modified time is its age, as a file's modification time is.
        if referenced.contains(&blob.hash) || blob.written >= older_than {
            continue;
        }
        state.blobs.remove(blob.hash).await?;
        n_blobs += 1;
        n_bytes += blob.size;
    }
    Ok((n_blobs, n_bytes))
}

/// What the integrity check found.
#[derive(Debug, Serialize, ToSchema)]
pub struct FsckReport {
    pub ok: bool,
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// Blobs whose content no longer matches their hash; moved to `quarantine/` in the blob
    /// storage (`DATA/blobs/quarantine` by default, `PREFIX/quarantine/` in a bucket), so
    /// creating the release again from its source uploads them anew.
    pub corrupt: Vec<String>,
    /// Blobs a release references that are not stored.
    pub missing: Vec<String>,
}

/// Re-hashes every blob, quarantines corrupt ones and checks every referenced blob is
/// present (admin).
pub async fn fsck(state: &AppState, caller: &Caller) -> ServiceResult<FsckReport> {
    caller.require(Action::Administer)?;
    let referenced = state.store.referenced_blobs().await?;
    let stored = state.blobs.stored().await?;
    let hashes: Vec<ContentHash> = stored.iter().map(|blob| blob.hash).collect();
    let blobs = state.blobs.clone();
    let healths: Vec<BlobHealth> = futures::stream::iter(hashes)
        .map(|hash| {
            let blobs = blobs.clone();
            async move { blobs.check(hash).await }
        })
        .buffered(CHECKS_AT_ONCE)
        .try_collect()
        .await?;
    let mut corrupt = Vec::new();
    for (blob, health) in stored.iter().zip(healths) {
        if health == BlobHealth::Corrupt {
            state.blobs.quarantine(blob.hash).await?;
            corrupt.push(blob.hash);
        }
    }
    let present: HashSet<String> = stored
        .iter()
        .filter(|blob| !corrupt.contains(&blob.hash))
        .map(|blob| blob.hash.to_hex())
        .collect();
    let mut missing: Vec<String> = referenced
        .into_iter()
        .filter(|h| !present.contains(h))
        .collect();
    missing.sort();
    Ok(FsckReport {
        ok: corrupt.is_empty() && missing.is_empty(),
        blobs_checked: stored.len() as u64,
        corrupt: corrupt.iter().map(ContentHash::to_hex).collect(),
        missing,
    })
}

/// Blobs fsck reads and re-hashes at once.
const CHECKS_AT_ONCE: usize = 8;

/// Runs retention on every application, then garbage collection, every `interval`.
pub async fn run_periodically(state: AppState, interval: Duration, grace: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if let Err(error) = prune_everything(&state, grace).await {
            tracing::warn!("periodic retention failed: {}", error.message);
        }
    }
}

async fn prune_everything(state: &AppState, grace: Duration) -> ServiceResult<()> {
    for app in state.store.list_apps().await? {
        let now = state.clock.now_ms();
        let report = match prune_app(state, &app, grace, crate::bootstrap::SERVER_ACTOR, now).await
        {
            Ok(report) => report,
            // Another server sharing the database pruned the same releases first (or the
            // application went meanwhile): nothing is left for this pass to do there.
            Err(error) if matches!(error.refusal, Refusal::NotFound(_)) => continue,
            Err(error) => return Err(error),
        };
        if !report.removed.is_empty() {
            tracing::info!(
                "retention removed {} releases of {}",
                report.removed.len(),
                app.name
            );
        }
    }
    super::backup_schedule::maintain(state).await?;
    collect_garbage(state, grace).await?;
    Ok(())
}
