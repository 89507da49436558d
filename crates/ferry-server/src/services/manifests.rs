//! Release manifests as the server reads them: from their blob, checked against the
//! release's digest, and kept in a small cache (manifests never change).

use std::collections::HashSet;
use std::sync::Arc;

use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;

use super::{blocking, ServiceError, ServiceResult};
use crate::state::AppState;

/// A release's manifest, read from its blob, or from the cache of recently read ones
/// (manifests never change, so a cached one is never stale; twenty agents fetching the same
/// release cost one read).
pub async fn load_manifest(
    state: &AppState,
    release: &ferry_store::Release,
) -> ServiceResult<Arc<Manifest>> {
    Ok(cached_manifest(state, release).await?.0)
}

/// Every blob a release's manifest references, as a set to look hashes up in.
pub async fn load_manifest_blobs(
    state: &AppState,
    release: &ferry_store::Release,
) -> ServiceResult<Arc<HashSet<ContentHash>>> {
    Ok(cached_manifest(state, release).await?.1)
}

/// Every blob a manifest (of a release or an application backup) references, by its
/// digest and the blob holding it, as a set to look hashes up in.
pub async fn manifest_blobs_of(
    state: &AppState,
    digest: &str,
    manifest_blob: &str,
) -> ServiceResult<Arc<HashSet<ContentHash>>> {
    Ok(cached(state, digest, manifest_blob).await?.1)
}

/// A manifest (of a release or an application backup), by its digest and the blob holding
/// it.
pub async fn manifest_of(
    state: &AppState,
    digest: &str,
    manifest_blob: &str,
) -> ServiceResult<Arc<Manifest>> {
    Ok(cached(state, digest, manifest_blob).await?.0)
}

async fn cached_manifest(
    state: &AppState,
    release: &ferry_store::Release,
) -> ServiceResult<crate::state::CachedManifest> {
    cached(state, &release.digest, &release.manifest_blob).await
}

async fn cached(
    state: &AppState,
    digest: &str,
    manifest_blob: &str,
) -> ServiceResult<crate::state::CachedManifest> {
    if let Some(cached) = state.manifests.get(manifest_blob) {
        return Ok(cached);
    }
    let hash = |hex: &str| {
        ContentHash::from_hex(hex)
            .ok_or_else(|| ServiceError::internal(format!("{hex:?} is not a hash")))
    };
    let (digest, stored_in) = (hash(digest)?, hash(manifest_blob)?);
    let stored = state.blobs.read(stored_in).await?;
    let manifest: Manifest = blocking(move || Ok(Manifest::from_blob(&stored, &digest)?)).await?;
    Ok(state
        .manifests
        .insert(manifest_blob.to_owned(), Arc::new(manifest)))
}
