//! Backups of applications' data (`ferry backup`; not the server's own backup, which is
//! `crate::backup`): asking targets to take one or to restore one (agent tasks), recording
//! what an agent took once its blobs are stored, and showing them to the team that owns the
//! application. A backup's blobs are counted in the blob references like a release's, so
//! garbage collection keeps them until retention deletes the backup.

use std::collections::HashSet;
use std::sync::Arc;

use ferry_api::{AgentBackup, AppBackup, CreateBackup, RestoreBackup, Task, TaskWork};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{validate_path, Manifest};
use ferry_cas::release_config::is_within;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_store::{App, ContentHold, NewAppBackup, Target};

use super::apps::visible_app;
use super::manifests::{manifest_blobs_of, manifest_of};
use super::{blocking, ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::held_blobs::Holder;
use crate::state::AppState;
use crate::views::rfc3339;

use crate::bootstrap::SERVER_ACTOR;

/// Who recorded a backup no person asked for (the schedule, a deployment).
const FERRY: &str = SERVER_ACTOR;

/// Asks every target of `request.env` that runs the application (or `request.target`
/// alone) to back up its data now: one task each, audited as `backup.request`.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    request: CreateBackup,
) -> ServiceResult<Vec<Task>> {
    let app = visible_app(state, caller, &request.app).await?;
    validate_name(NameKind::Environment, &request.env)?;
    if let Some(target) = &request.target {
        validate_name(NameKind::Target, target)?;
    }
    caller.require(Action::BackUpApp {
        team: &app.team,
        app: &app.name,
        env: &request.env,
    })?;
    if let Some(target) = &request.target {
        let target = super::targets::in_service(state, caller, target).await?;
        require_env(
            &target,
            &request.env,
            &format!("the request is of {}", request.env),
        )?;
    }
    let targets = running_targets(state, &app.name, &request.env).await?;
    let chosen: Vec<&Target> = targets
        .iter()
        .filter(|t| request.target.as_ref().is_none_or(|name| &t.name == name))
        .collect();
    if chosen.is_empty() {
        let nothing = match &request.target {
            Some(target) => format!(
                "target {target} in {} does not run {}",
                request.env, app.name
            ),
            None => format!("no target in {} runs {}", request.env, app.name),
        };
        return Err(ServiceError::not_found(format!(
            "{nothing}: nothing to back up (`ferry status` shows what runs where)"
        )));
    }
    // Every target asked is online, or none is asked: a partial backup is a surprise.
    for target in &chosen {
        super::tasks::require_online(state, target).map_err(|mut offline| {
            if chosen.len() > 1 {
                offline.message.push_str(
                    "; or back up the others one by one (`ferry backup create … --target NAME`)",
                );
            }
            offline
        })?;
    }
    let mut tasks = Vec::with_capacity(chosen.len());
    for target in chosen {
        let audit = caller.audit(
            AuditAction::BackupRequest(audit_event::BackupRequest {
                env: target.env.clone(),
                task: 0,
            }),
            format!("target/{}", target.name),
            Some(&app.name),
        );
        let work = TaskWork::BackUp {
            reason: ferry_api::BackupReason::OnDemand,
        };
        tasks.push(super::tasks::request(state, caller, target, &app.name, work, audit).await?);
    }
    Ok(tasks)
}

/// Refuses `target` unless it is of `env`: backups are taken and restored within one
/// environment, and `whose` says whose environment that is ("backup 5 is of dev").
fn require_env(target: &Target, env: &str, whose: &str) -> ServiceResult<()> {
    if target.env == env {
        return Ok(());
    }
    Err(ServiceError::invalid(format!(
        "target {} is in {}, while {whose}: name a target of {env} (`ferry target list` \
         shows the environment of each)",
        target.name, target.env
    )))
}

/// The targets of `env` whose agent runs `app` now, by name.
async fn running_targets(state: &AppState, app: &str, env: &str) -> ServiceResult<Vec<Target>> {
    let (targets, running) =
        tokio::try_join!(state.store.list_targets(), state.store.target_apps(None))?;
    let mut found: Vec<Target> = targets
        .into_iter()
        .filter(|t| {
            t.env == env
                && running
                    .iter()
                    .any(|r| r.target == t.name && r.app == app && r.current_version.is_some())
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Records a backup `target`'s agent took of an application it runs, once the blobs of
/// its manifest (and the manifest's own) are in the blob storage: read back, checked
/// against its digest and as data, and every blob present, under a shared content hold so
/// garbage collection cannot remove one in between.
pub async fn record(
    state: &AppState,
    target: &Target,
    report: AgentBackup,
) -> ServiceResult<AppBackup> {
    let uploader = super::agents::uploader(state, target, &report.app).await?;
    let app = uploader.app().clone();
    let bad = |why: String| ServiceError::invalid(format!("backup of {}: {why}", app.name));
    let hash = |what: &str, hex: &str| {
        ContentHash::from_hex(hex).ok_or_else(|| bad(format!("{what} {hex:?} is not a hash")))
    };
    let (digest, manifest_blob) = (
        hash("digest", &report.digest)?,
        hash("manifest_blob", &report.manifest_blob)?,
    );
    for path in &report.paths {
        validate_path(path).map_err(|why| bad(format!("backup path {path:?}: {why}")))?;
    }
    let _hold = state.store.hold_content(ContentHold::Shared).await?;
    if state.blobs.sizes(vec![manifest_blob]).await?[0].is_none() {
        return Err(bad(format!(
            "its manifest {manifest_blob} is not stored: upload it first"
        )));
    }
    let stored = state.blobs.read(manifest_blob).await?;
    let manifest: Manifest = blocking(move || {
        let manifest = Manifest::from_blob(&stored, &digest)?;
        manifest.validate_data()?;
        Ok(manifest)
    })
    .await
    .map_err(|e| bad(e.message))?;
    if let Some(entry) = manifest.entries.iter().find(|entry| {
        !report
            .paths
            .iter()
            .any(|path| is_within(&entry.path, path) || is_within(path, &entry.path))
    }) {
        return Err(bad(format!(
            "{:?} is not a backup path nor on the way to one",
            entry.path
        )));
    }
    let chunks = manifest.blobs();
    let sizes = state
        .blobs
        .sizes(chunks.iter().map(|c| c.hash).collect())
        .await?;
    if let Some((chunk, _)) = chunks.iter().zip(&sizes).find(|(_, size)| size.is_none()) {
        return Err(bad(format!(
            "blob {} is not stored: upload every blob before recording the backup",
            chunk.hash
        )));
    }
    let requested_by = match report.task {
        Some(id) => state
            .store
            .task(id)
            .await?
            .filter(|task| task.target == target.name && task.app == app.name)
            .map_or_else(|| FERRY.to_owned(), |task| task.requested_by),
        None => FERRY.to_owned(),
    };
    let version = state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .find(|r| r.app == app.name)
        .and_then(|r| r.current_version);
    let now = state.clock.now_ms();
    let mut blobs: Vec<(String, u64)> = chunks.iter().map(|c| (c.hash.to_hex(), c.size)).collect();
    blobs.push((manifest_blob.to_hex(), 0));
    let backup = ferry_store::AppBackup {
        id: 0,
        app: app.name.clone(),
        env: target.env.clone(),
        target: target.name.clone(),
        version,
        reason: report.reason,
        paths: report.paths,
        requested_by: requested_by.clone(),
        created_ms: now,
        digest: report.digest,
        manifest_blob: report.manifest_blob,
        files: manifest.n_files(),
        bytes: manifest.n_bytes(),
        new_bytes: report.new_bytes,
    };
    let audit = AuditAction::BackupCreate(audit_event::BackupCreate {
        env: backup.env.clone(),
        target: backup.target.clone(),
        reason: backup.reason,
        version: backup.version.clone(),
        digest: backup.digest.clone(),
        files: backup.files,
        bytes: backup.bytes,
        new_bytes: backup.new_bytes,
    })
    .record(now, &requested_by, String::new(), Some(&app.name));
    let created = state
        .store
        .create_app_backup(NewAppBackup { backup, blobs }, audit)
        .await?;
    Ok(view(created))
}

/// The backups the caller may see (view level in their environment), newest first: of one
/// application, or of every application they may see; of one environment, or all.
pub async fn list(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
    env: Option<&str>,
) -> ServiceResult<Vec<AppBackup>> {
    let apps: Vec<App> = match app {
        Some(name) => vec![visible_app(state, caller, name).await?],
        None => super::apps::visible_apps(state, caller).await?,
    };
    let backups = state.store.list_app_backups(app).await?;
    Ok(backups
        .into_iter()
        .filter(|b| env.is_none_or(|env| b.env == env))
        .filter(|b| {
            apps.iter()
                .find(|a| a.name == b.app)
                .is_some_and(|a| may_see(caller, a, &b.env))
        })
        .map(view)
        .collect())
}

fn may_see(caller: &Caller, app: &App, env: &str) -> bool {
    caller.may(Action::ViewAppBackups {
        team: &app.team,
        app: &app.name,
        env,
    })
}

/// Backup `id`, with its application, when the caller may see it; any other looks missing.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ServiceResult<(ferry_store::AppBackup, App)> {
    let missing = || ServiceError::not_found(format!("no backup {id}: see `ferry backup list`"));
    let backup = state.store.app_backup(id).await?.ok_or_else(missing)?;
    let app = state.store.app(&backup.app).await?.ok_or_else(missing)?;
    if !may_see(caller, &app, &backup.env) {
        return Err(missing());
    }
    Ok((backup, app))
}

/// Backup `id`, when the caller may see it.
pub async fn show(state: &AppState, caller: &Caller, id: i64) -> ServiceResult<AppBackup> {
    Ok(view(visible(state, caller, id).await?.0))
}

/// The manifest of backup `id`, for someone who may restore it (deploy level in its
/// environment): what `ferry backup export` writes.
pub async fn manifest(state: &AppState, caller: &Caller, id: i64) -> ServiceResult<Arc<Manifest>> {
    let (backup, _) = restorable(state, caller, id).await?;
    manifest_of(state, &backup.digest, &backup.manifest_blob).await
}

/// `hashes`, when every one is content of backup `id` and the caller may restore it.
pub async fn fetchable(
    state: &AppState,
    caller: &Caller,
    id: i64,
    hashes: &[String],
) -> ServiceResult<Vec<ContentHash>> {
    let (backup, _) = restorable(state, caller, id).await?;
    let held = manifest_blobs_of(state, &backup.digest, &backup.manifest_blob).await?;
    let hashes = super::blobs::parse_hashes(hashes)?;
    match hashes.iter().find(|hash| !held.contains(hash)) {
        Some(hash) => Err(ServiceError::not_found(format!(
            "blob {hash} is not part of backup {id}"
        ))),
        None => Ok(hashes),
    }
}

/// Backup `id` and its application, when the caller may see it and take or restore
/// backups there (its content is the application's data).
async fn restorable(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ServiceResult<(ferry_store::AppBackup, App)> {
    let (backup, app) = visible(state, caller, id).await?;
    caller.require(Action::BackUpApp {
        team: &app.team,
        app: &app.name,
        env: &backup.env,
    })?;
    Ok((backup, app))
}

/// Asks a target of the backup's environment that runs the application (the backup's own
/// by default) to restore backup `id`, all of it or `request.path` alone, after backing up
/// the data it replaces; audited as `backup.restore`.
pub async fn restore(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: RestoreBackup,
) -> ServiceResult<Task> {
    let (backup, app) = restorable(state, caller, id).await?;
    if !backup.reason.is_data() {
        return Err(ServiceError::invalid(format!(
            "backup {id} keeps what hand edits on {} held when `ferry drift revert` undid them: files of release {}, not data under shared/, so it is not restored (`ferry backup show {id}` lists them)",
            backup.target,
            backup.version.as_deref().unwrap_or("-")
        )));
    }
    let target_name = request.target.unwrap_or_else(|| backup.target.clone());
    validate_name(NameKind::Target, &target_name)?;
    if let Some(path) = &request.path {
        validate_path(path)
            .map_err(|why| ServiceError::invalid(format!("--path {path:?}: {why}")))?;
        if !backup.paths.iter().any(|root| is_within(path, root)) {
            return Err(ServiceError::invalid(format!(
                "--path {path:?} is not among the paths of backup {id} ({}); name one of them \
                 or a path inside one",
                backup.paths.join(", ")
            )));
        }
        // A path the backup does not hold would be restored as absent: removed from the
        // target. Only the backup's own paths recorded as absent mean that.
        let manifest = manifest_of(state, &backup.digest, &backup.manifest_blob).await?;
        if manifest.get(path).is_none() && !backup.paths.contains(path) {
            return Err(ServiceError::invalid(format!(
                "--path {path:?} is not in backup {id}: `ferry backup export {id} DIR` shows \
                 what it holds"
            )));
        }
    }
    let chosen = super::targets::in_service(state, caller, &target_name).await?;
    require_env(
        &chosen,
        &backup.env,
        &format!("backup {id} is of {}", backup.env),
    )?;
    let targets = running_targets(state, &app.name, &backup.env).await?;
    let target = targets
        .iter()
        .find(|t| t.name == target_name)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "target {target_name} in {} does not run {}: a backup is restored on a target of \
             its environment that runs the application (`ferry status` shows what runs where)",
                backup.env, app.name
            ))
        })?;
    let audit = caller.audit(
        AuditAction::BackupRestore(audit_event::BackupRestore {
            target: target.name.clone(),
            paths: request.path.iter().cloned().collect(),
            task: 0,
        }),
        format!("backup/{id}"),
        Some(&app.name),
    );
    let work = TaskWork::RestoreBackup {
        backup: backup.id,
        digest: backup.digest,
        manifest_blob: backup.manifest_blob,
        paths: backup.paths,
        path: request.path,
    };
    super::tasks::request(state, caller, target, &app.name, work, audit).await
}

/// Every blob of the backups of `app` in `env` (manifests included): what its targets'
/// agents may fetch to restore one.
pub async fn fetchable_blobs(
    state: &AppState,
    app: &str,
    env: &str,
) -> ServiceResult<Vec<Arc<HashSet<ContentHash>>>> {
    let mut sets = Vec::new();
    for backup in state.store.list_app_backups(Some(app)).await? {
        if backup.env != env {
            continue;
        }
        let mut own = HashSet::new();
        if let Some(hash) = ContentHash::from_hex(&backup.manifest_blob) {
            own.insert(hash);
        }
        sets.push(Arc::new(own));
        sets.push(manifest_blobs_of(state, &backup.digest, &backup.manifest_blob).await?);
    }
    Ok(sets)
}

/// Which of `hashes` the application's backups hold (manifests included): content the
/// application's own agents may learn is present. Each backup is read once
/// ([`crate::held_blobs`]).
pub async fn in_backups(
    state: &AppState,
    app: &str,
    hashes: &[ContentHash],
) -> ServiceResult<HashSet<ContentHash>> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let listed = state.store.list_app_backups(Some(app)).await?;
    let holders: Vec<Holder> = listed
        .iter()
        .map(|b| (b.id.to_string(), b.created_ms, b.digest.clone()))
        .collect();
    for at in state.backup_blobs.unfolded(app, &holders) {
        let backup = &listed[at];
        let blobs = manifest_blobs_of(state, &backup.digest, &backup.manifest_blob).await?;
        let manifest = ContentHash::from_hex(&backup.manifest_blob);
        let held = blobs.iter().copied().chain(manifest);
        state.backup_blobs.fold(app, &holders[at], held);
    }
    Ok(state.backup_blobs.held(app, hashes))
}

fn view(backup: ferry_store::AppBackup) -> AppBackup {
    AppBackup {
        id: backup.id,
        app: backup.app,
        env: backup.env,
        target: backup.target,
        version: backup.version,
        reason: backup.reason,
        paths: backup.paths,
        requested_by: backup.requested_by,
        created: rfc3339(backup.created_ms),
        digest: backup.digest,
        files: backup.files,
        bytes: backup.bytes,
        new_bytes: backup.new_bytes,
    }
}
