//! Releases as a use case: an immutable, versioned tree whose content was uploaded, checked
//! against the hotfix and incident it claims to fix, closing the backlog items it names and
//! the backport obligations whose fix it includes.

use ferry_api::{CreateRelease, DiffModified, DiffPath, ReleaseDiff};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Chunk, Entry, EntryKind, Manifest};
use ferry_cas::release_config::{ReleaseConfig, CONFIG_FILE};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::config::MAX_TEMPLATE_BYTES;
use ferry_domain::name::validate_version;
use ferry_domain::permission::Action;
use ferry_store::{App, ContentHold, NewRelease, Release, ReleaseOutcome};

use super::apps::visible_app;
use super::manifests::load_manifest;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::blob_storage::BlobStorage;
use crate::state::AppState;

/// Release notes are a few paragraphs, not a document.
const MAX_NOTES: usize = 16 * 1024;

/// Proof that the caller may create releases of an application and upload their content:
/// asked for before a large request body is read, so that a caller without the right is
/// refused before the server reads what they send.
pub struct ReleaseAuthor {
    app: App,
    user: String,
}

impl ReleaseAuthor {
    /// The application the author may create releases of.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Who the author is.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether the author is an agent (uploading for its own target), not a person.
    pub fn is_agent(&self) -> bool {
        self.user.starts_with(AGENT_AUTHOR)
    }
}

/// How an agent's uploads are remembered: `agent/TARGET`.
const AGENT_AUTHOR: &str = "agent/";

impl ReleaseAuthor {
    /// `target`'s agent, uploading content of `app` (hand edits it captures, data it backs
    /// up): its uploads are remembered as `agent/TARGET`'s, so what it learns is present is
    /// only what it uploaded itself or what the application's releases hold.
    pub fn agent(app: App, target: &str) -> ReleaseAuthor {
        ReleaseAuthor {
            app,
            user: format!("{AGENT_AUTHOR}{target}"),
        }
    }
}

/// The caller as an author of releases of `app` (a developer or higher in the app's team).
pub async fn author(state: &AppState, caller: &Caller, app: &str) -> ServiceResult<ReleaseAuthor> {
    let app = visible_app(state, caller, app).await?;
    caller.require(Action::CreateRelease { team: &app.team })?;
    Ok(ReleaseAuthor {
        app,
        user: caller.user.name.clone(),
    })
}

/// Creates a release from a manifest whose content is uploaded, and the backlog items it
/// closes. The same version with the same content again is `Identical`; with other content
/// it is refused, as releases are immutable.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    author: ReleaseAuthor,
    request: CreateRelease,
) -> ServiceResult<(ReleaseOutcome, Vec<i64>)> {
    let app = author.app;
    validate_version(&request.version)?;
    let manifest = request.manifest;
    manifest.validate()?;
    let source = request.source.without_credentials();
    if manifest.entries.is_empty() && !request.allow_empty {
        return Err(ServiceError::invalid(
            "the release is empty: check the source, or pass --allow-empty if an empty tree is intended",
        ));
    }
    if request.notes.as_ref().is_some_and(|n| n.len() > MAX_NOTES) {
        return Err(ServiceError::invalid(format!(
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
        check_hotfix_incident(state, &app.name, id, request.hotfix_of.as_deref()).await?;
    }
    let fulfils = match request.hotfix_of {
        Some(_) => Vec::new(),
        None => super::support::fulfilled_backports(state, &app.name, &manifest).await?,
    };
    let closes = request.closes.clone();
    // Shared with other creations, exclusive with garbage collection on every server: the
    // blobs checked here cannot be collected before the release that references them
    // commits.
    let _no_gc = state.store.hold_content(ContentHold::Shared).await?;
    let (manifest_blob, blobs) = store_manifest(state, &manifest).await?;
    let digest = manifest.digest();
    let release = ferry_store::Release {
        app: app.name.clone(),
        version: request.version.clone(),
        digest: digest.to_hex(),
        manifest_blob: manifest_blob.to_hex(),
        files: manifest.n_files(),
        bytes: manifest.n_bytes(),
        source: serde_json::to_string(&source).expect("sources serialize"),
        notes: request.notes,
        created_ms: caller.now_ms(),
        created_by: caller.user.name.clone(),
        hotfix_of: request.hotfix_of,
        incident: request.incident,
    };
    let record = caller.audit(
        created(&release, &source, closes.clone(), fulfils.clone()),
        format!("release/{}/{}", app.name, request.version),
        Some(&app.name),
    );
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
    Ok((outcome, closes))
}

/// Checks that the content `manifest` references is stored with the sizes it declares and
/// that its `ferry.toml` is one agents accept, then stores the manifest itself; returns
/// the manifest's blob and every blob the release references (content and manifest) with
/// its size, for the store's reference counts. The caller holds content against garbage collection
/// ([`ContentHold::Shared`]) until the release is created.
pub(super) async fn store_manifest(
    state: &AppState,
    manifest: &Manifest,
) -> ServiceResult<(ContentHash, Vec<(String, u64)>)> {
    let manifest_bytes = manifest.to_blob();
    let manifest_blob = ContentHash::of(&manifest_bytes);
    let mut blobs: Vec<(String, u64)> = manifest
        .blobs()
        .into_iter()
        .map(|chunk| (chunk.hash.to_hex(), chunk.size))
        .collect();
    blobs.push((manifest_blob.to_hex(), manifest_bytes.len() as u64));
    let needed: Vec<(String, Chunk)> = manifest
        .entries
        .iter()
        .flat_map(|entry| entry.blobs().into_iter().map(|c| (entry.path.clone(), c)))
        .collect();
    check_content(state.blobs.as_ref(), &needed).await?;
    if let Some(entry) = manifest.get(CONFIG_FILE) {
        check_release_config(state.blobs.as_ref(), entry, manifest).await?;
    }
    state
        .blobs
        .put_batch(vec![(manifest_blob, manifest_bytes.into())])
        .await?;
    Ok((manifest_blob, blobs))
}

/// Refuses a manifest whose content was not all uploaded, or whose sizes are not the sizes
/// of the content stored: what a manifest declares is checked before anyone trusts it.
async fn check_content(store: &dyn BlobStorage, needed: &[(String, Chunk)]) -> ServiceResult<()> {
    let sizes = store
        .sizes(needed.iter().map(|(_, chunk)| chunk.hash).collect())
        .await?;
    let mut missing = needed.iter().zip(&sizes).filter(|(_, size)| size.is_none());
    if let Some(((path, first), _)) = missing.next() {
        return Err(ServiceError::invalid(format!(
            "{} blobs of the release were not uploaded (the first is {}, of {path}); upload them and create the release again",
            1 + missing.count(),
            first.hash
        )));
    }
    for ((path, chunk), real) in needed.iter().zip(sizes) {
        match real {
            Some(real) if real == chunk.size => {}
            real => {
                return Err(ServiceError::invalid(format!(
                    "{path}: the manifest gives {} bytes for blob {}, which holds {}; create the release again from its source",
                    chunk.size,
                    chunk.hash,
                    real.map_or("nothing".to_owned(), |n| format!("{n} bytes"))
                )))
            }
        }
    }
    Ok(())
}

/// The audit action of `release` made (from `source`), closing backlog items `closes` and
/// fulfilling backport obligations `backports_done`.
pub(super) fn created(
    release: &ferry_store::Release,
    source: &impl serde::Serialize,
    closes: Vec<i64>,
    backports_done: Vec<i64>,
) -> AuditAction {
    AuditAction::ReleaseCreate(audit_event::ReleaseCreate {
        digest: release.digest.clone(),
        files: release.files,
        bytes: release.bytes,
        source: serde_json::to_value(source).expect("sources serialize"),
        hotfix_of: release.hotfix_of.clone(),
        incident: release.incident,
        closes,
        backports_done,
    })
}

/// Refuses a release whose `ferry.toml` the agent would refuse, read from the uploaded
/// content with the agent's own parser, or whose `[config]` does not fit the release's
/// files (`manifest`): such a release could never deploy, and the client that checked it
/// first is not trusted to have done so.
async fn check_release_config(
    store: &dyn BlobStorage,
    entry: &Entry,
    manifest: &Manifest,
) -> ServiceResult<()> {
    let refused = |reason: String| {
        ServiceError::invalid(format!(
            "{reason}; fix it (`ferry check` shows what is wrong) and create the release again"
        ))
    };
    let EntryKind::File { size, .. } = entry.kind else {
        return Err(refused(format!(
            "{CONFIG_FILE}: ferry.toml must be a regular file"
        )));
    };
    ReleaseConfig::check_size(size).map_err(|error| refused(error.to_string()))?;
    let data = read_file(store, entry, size).await?;
    let config = ReleaseConfig::parse_bytes(&data).map_err(|error| refused(error.to_string()))?;
    config
        .check_against_manifest(manifest)
        .map_err(|error| refused(error.to_string()))?;
    for template in &config.config.templates {
        // A regular file of the release, as checked above.
        let Some((entry, size)) =
            manifest
                .get(&template.source)
                .and_then(|entry| match entry.kind {
                    EntryKind::File { size, .. } => Some((entry, size)),
                    _ => None,
                })
        else {
            continue;
        };
        if size > MAX_TEMPLATE_BYTES as u64 {
            return Err(refused(format!(
                "the template {} holds {size} bytes: a template may hold at most {MAX_TEMPLATE_BYTES} bytes (1 MiB); keep data out of it",
                template.source
            )));
        }
        let text = read_file(store, entry, size).await?;
        config
            .check_template(template, &text)
            .map_err(|error| refused(error.to_string()))?;
    }
    Ok(())
}

/// The content of the release file `entry` (`size` bytes, bounded by the caller), read from
/// the blob storage chunk by chunk.
async fn read_file(store: &dyn BlobStorage, entry: &Entry, size: u64) -> ServiceResult<Vec<u8>> {
    let mut data = Vec::with_capacity(size as usize);
    for chunk in entry.blobs() {
        data.extend(store.read(chunk.hash).await?);
    }
    Ok(data)
}

/// Refuses `--incident ID` unless it names a hotfix incident of `app` whose base is the
/// release the hotfix is made from.
pub(super) async fn check_hotfix_incident(
    state: &AppState,
    app: &str,
    id: i64,
    hotfix_of: Option<&str>,
) -> ServiceResult<()> {
    let Some(base) = hotfix_of else {
        return Err(ServiceError::invalid(format!(
            "--incident {id} names the incident a hotfix fixes: also pass --hotfix-of BASE"
        )));
    };
    let incident = state
        .store
        .incident(id)
        .await?
        .filter(|i| i.app == app)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "no incident {id} of {app}: `ferry incident list` shows them"
            ))
        })?;
    match incident.base_version.as_deref() {
        Some(expected) if expected == base => Ok(()),
        Some(expected) => Err(ServiceError::invalid(format!(
            "incident {id} is hotfixed from {expected}, the release that ran in production when it was opened, not {base}: pass --hotfix-of {expected}"
        ))),
        None => Err(ServiceError::invalid(format!(
            "incident {id} is on the {} path, not a hotfix path: release the fix through dev without --incident (`--closes ID` closes its backlog item)",
            incident.path
        ))),
    }
}

/// Release `version` of `app`, when the caller may see the application.
pub async fn visible_release(
    state: &AppState,
    caller: &Caller,
    app: &str,
    version: &str,
) -> ServiceResult<Release> {
    let app = visible_app(state, caller, app).await?;
    validate_version(version)?;
    state
        .store
        .release(&app.name, version)
        .await?
        .ok_or_else(|| ServiceError::no_such_release(&app.name, version))
}

/// What changed from release `from` to release `to` of `app`: paths added, removed and
/// changed (`ferry release diff`, and the dashboard's comparison).
pub async fn diff(
    state: &AppState,
    caller: &Caller,
    app: &str,
    from: &str,
    to: &str,
) -> ServiceResult<ReleaseDiff> {
    let old = visible_release(state, caller, app, from).await?;
    let new = visible_release(state, caller, app, to).await?;
    let changes = ferry_cas::diff::diff(
        &*load_manifest(state, &old).await?,
        &*load_manifest(state, &new).await?,
    );
    let path = |p: ferry_cas::diff::PathOnly| DiffPath {
        path: p.path,
        kind: p.kind.to_owned(),
        size: p.size,
    };
    Ok(ReleaseDiff {
        app: old.app,
        from: from.to_owned(),
        to: to.to_owned(),
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
    })
}
