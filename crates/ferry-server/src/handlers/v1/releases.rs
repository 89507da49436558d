//! `/api/v1/apps/{app}/releases`: immutable, versioned trees.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{CreateRelease, CreatedRelease, DiffModified, DiffPath, Release, ReleaseDiff};
use ferry_cas::diff::diff;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::validate_version;
use ferry_domain::permission::Action;
use ferry_store::{NewRelease, ReleaseOutcome};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path};
use crate::services::apps::visible_app;
use crate::services::blocking;
use crate::services::manifests::load_manifest;
use crate::services::ServiceError;
use crate::state::AppState;
use crate::views::rfc3339;

/// The largest release request: a manifest of about a million entries.
const MAX_RELEASE_BODY: usize = 256 * 1024 * 1024;
/// Release notes are a few paragraphs, not a document.
const MAX_NOTES: usize = 16 * 1024;

fn release_json(release: ferry_store::Release) -> Release {
    Release {
        source: serde_json::from_str(&release.source).unwrap_or(serde_json::Value::Null),
        app: release.app,
        version: release.version,
        digest: release.digest,
        files: release.files,
        bytes: release.bytes,
        notes: release.notes,
        created_at: rfc3339(release.created_ms),
        created_by: release.created_by,
        hotfix_of: release.hotfix_of,
        incident: release.incident,
    }
}

async fn find_release(
    state: &AppState,
    caller: &Caller,
    app: &str,
    version: &str,
) -> Result<ferry_store::Release, ApiError> {
    let app = visible_app(state, caller, app).await?;
    validate_version(version)?;
    state
        .store
        .release(&app.name, version)
        .await?
        .ok_or_else(|| ServiceError::no_such_release(&app.name, version).into())
}

/// Creates a release from a manifest whose content is uploaded (a developer or higher in
/// the app's team). The same version with the same content again answers 200 with
/// `created: false`; with other content it is refused, as releases are immutable.
#[utoipa::path(post, path = "/api/v1/apps/{app}/releases", tag = "releases", request_body = CreateRelease,
    params(("app" = String, Path, description = "application name")),
    responses((status = 201, body = CreatedRelease), (status = 200, body = CreatedRelease),
        (status = 403, body = ferry_api::ErrorBody), (status = 404, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn create_release(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<CreateRelease, { MAX_RELEASE_BODY }>,
) -> Result<(StatusCode, Json<CreatedRelease>), ApiError> {
    let app = visible_app(&state, &caller, &app).await?;
    validate_version(&request.version)?;
    caller.require(Action::CreateRelease { team: &app.team })?;
    let manifest = request.manifest;
    manifest.validate()?;
    if manifest.entries.is_empty() && !request.allow_empty {
        return Err(ApiError::invalid(
            "the release is empty: check the source, or pass --allow-empty if an empty tree is intended",
        ));
    }
    if request.notes.as_ref().is_some_and(|n| n.len() > MAX_NOTES) {
        return Err(ApiError::invalid(format!(
            "release notes are limited to {MAX_NOTES} bytes"
        )));
    }
    if let Some(base) = &request.hotfix_of {
        validate_version(base)?;
        state
            .store
            .release(&app.name, base)
            .await?
            .ok_or_else(|| ServiceError::no_such_release(&app.name, base))?;
    }
    if let Some(id) = request.incident {
        check_hotfix_incident(&state, &app.name, id, request.hotfix_of.as_deref()).await?;
    }
    let fulfils = match request.hotfix_of {
        Some(_) => Vec::new(),
        None => crate::services::support::fulfilled_backports(&state, &app.name, &manifest).await?,
    };
    let closes = request.closes.clone();
    let digest = manifest.digest();
    let manifest_bytes = manifest.to_blob();
    let manifest_blob = ContentHash::of(&manifest_bytes);
    let mut blobs: Vec<(String, u64)> = manifest
        .blobs()
        .into_iter()
        .map(|chunk| (chunk.hash.to_hex(), chunk.size))
        .collect();
    blobs.push((manifest_blob.to_hex(), manifest_bytes.len() as u64));
    let release = ferry_store::Release {
        app: app.name.clone(),
        version: request.version.clone(),
        digest: digest.to_hex(),
        manifest_blob: manifest_blob.to_hex(),
        files: manifest.n_files(),
        bytes: manifest.n_bytes(),
        source: serde_json::to_string(&request.source).expect("sources serialize"),
        notes: request.notes,
        created_ms: caller.now_ms(),
        created_by: caller.user.name.clone(),
        hotfix_of: request.hotfix_of,
        incident: request.incident,
    };
    let record = caller.audit(
        AuditAction::ReleaseCreate(audit_event::ReleaseCreate {
            digest: release.digest.clone(),
            files: release.files,
            bytes: release.bytes,
            source: serde_json::to_value(&request.source).expect("sources serialize"),
            hotfix_of: release.hotfix_of.clone(),
            incident: release.incident,
            closes: closes.clone(),
            backports_done: fulfils.clone(),
        }),
        format!("release/{}/{}", app.name, request.version),
        Some(&app.name),
    );

    // Shared with other creations, exclusive with garbage collection: the blobs checked
    // here cannot be collected before the release that references them commits.
    let _no_gc = state.gc_lock.read().await;
    let store = state.blobs.clone();
    let needed: Vec<ContentHash> = manifest.blobs().into_iter().map(|c| c.hash).collect();
    blocking(move || {
        let missing: Vec<&ContentHash> = needed.iter().filter(|h| !store.contains(h)).collect();
        if let Some(first) = missing.first() {
            return Err(ServiceError::invalid(format!(
                "{} blobs of the release were not uploaded (the first is {first}); upload them and create the release again",
                missing.len()
            )));
        }
        store.put_batch(&[(manifest_blob, &manifest_bytes)])?;
        Ok(())
    })
    .await?;
    let outcome = state
        .store
        .create_release(
            NewRelease {
                release,
                blobs,
                closes: closes.clone(),
                fulfils,
            },
            record,
        )
        .await?;
    Ok(match outcome {
        // An obligation waived while the release was judged stays waived: only the ones this
        // release closed are named.
        ReleaseOutcome::Created {
            release,
            backports_done,
        } => (
            StatusCode::CREATED,
            Json(CreatedRelease {
                release: release_json(release),
                created: true,
                closed: closes,
                backports_done,
            }),
        ),
        ReleaseOutcome::Identical(release) => (
            StatusCode::OK,
            Json(CreatedRelease {
                release: release_json(release),
                created: false,
                closed: Vec::new(),
                backports_done: Vec::new(),
            }),
        ),
    })
}

/// Refuses `--incident ID` unless it names a hotfix incident of `app` whose base is the
/// release the hotfix is made from.
async fn check_hotfix_incident(
    state: &AppState,
    app: &str,
    id: i64,
    hotfix_of: Option<&str>,
) -> Result<(), ApiError> {
    let Some(base) = hotfix_of else {
        return Err(ApiError::invalid(format!(
            "--incident {id} names the incident a hotfix fixes: also pass --hotfix-of BASE"
        )));
    };
    let incident = state
        .store
        .incident(id)
        .await?
        .filter(|i| i.app == app)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no incident {id} of {app}: `ferry incident list` shows them"
            ))
        })?;
    match incident.base_version.as_deref() {
        Some(expected) if expected == base => Ok(()),
        Some(expected) => Err(ApiError::invalid(format!(
            "incident {id} is hotfixed from {expected}, the release that ran in production when it was opened, not {base}: pass --hotfix-of {expected}"
        ))),
        None => Err(ApiError::invalid(format!(
            "incident {id} is on the {} path, not a hotfix path: release the fix through dev without --incident (`--closes ID` closes its backlog item)",
            incident.path
        ))),
    }
}

/// An application's releases, newest first.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases", tag = "releases",
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = Vec<Release>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_releases(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
) -> Result<Json<Vec<Release>>, ApiError> {
    let app = visible_app(&state, &caller, &app).await?;
    let releases = state.store.list_releases(&app.name).await?;
    Ok(Json(releases.into_iter().map(release_json).collect()))
}

/// One release.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases/{version}", tag = "releases",
    params(("app" = String, Path, description = "application name"), ("version" = String, Path, description = "release version")),
    responses((status = 200, body = Release), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show_release(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<Release>, ApiError> {
    Ok(Json(release_json(
        find_release(&state, &caller, &app, &version).await?,
    )))
}

/// A release's manifest: every path with its kind, mode, size and content hash.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases/{version}/manifest", tag = "releases",
    params(("app" = String, Path, description = "application name"), ("version" = String, Path, description = "release version")),
    responses((status = 200, body = Object), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn release_manifest(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<Arc<Manifest>>, ApiError> {
    let release = find_release(&state, &caller, &app, &version).await?;
    Ok(Json(load_manifest(&state, &release).await?))
}

/// What changed from release `from` to release `to`.
#[utoipa::path(get, path = "/api/v1/apps/{app}/releases/{from}/diff/{to}", tag = "releases",
    params(("app" = String, Path, description = "application name"),
        ("from" = String, Path, description = "the older version"), ("to" = String, Path, description = "the newer version")),
    responses((status = 200, body = ReleaseDiff), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn diff_releases(
    State(state): State<AppState>,
    caller: Caller,
    Path((app, from, to)): Path<(String, String, String)>,
) -> Result<Json<ReleaseDiff>, ApiError> {
    let old = find_release(&state, &caller, &app, &from).await?;
    let new = find_release(&state, &caller, &app, &to).await?;
    let changes = diff(
        &*load_manifest(&state, &old).await?,
        &*load_manifest(&state, &new).await?,
    );
    let path = |p: ferry_cas::diff::PathOnly| DiffPath {
        path: p.path,
        kind: p.kind.to_owned(),
        size: p.size,
    };
    Ok(Json(ReleaseDiff {
        app: old.app,
        from,
        to,
        added: changes.added.into_iter().map(path).collect(),
        removed: changes.removed.into_iter().map(path).collect(),
        modified: changes
            .modified
            .into_iter()
            .map(|m| DiffModified {
                path: m.path,
                change: m.change.to_owned(),
                old_size: m.old_size,
                new_size: m.new_size,
            })
            .collect(),
    }))
}
