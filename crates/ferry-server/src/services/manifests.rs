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

async fn cached_manifest(
    state: &AppState,
    release: &ferry_store::Release,
) -> ServiceResult<crate::state::CachedManifest> {
    if let Some(cached) = state.manifests.get(&release.manifest_blob) {
        return Ok(cached);
    }
    let hash = |hex: &str| {
        ContentHash::from_hex(hex)
            .ok_or_else(|| ServiceError::internal(format!("{hex:?} is not a hash")))
    };
    let digest = hash(&release.digest)?;
    let manifest_blob = hash(&release.manifest_blob)?;
    let stored = state.blobs.read(manifest_blob).await?;
    let manifest: Manifest = blocking(move || Ok(Manifest::from_blob(&stored, &digest)?)).await?;
    Ok(state
        .manifests
        .insert(release.manifest_blob.clone(), Arc::new(manifest)))
}
