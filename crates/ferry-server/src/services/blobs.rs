//! Release content as clients move it: which blobs the server lacks, storing uploaded
//! batches, and which blobs a caller may fetch. The store is shared between applications;
//! their content is not.

use std::collections::HashSet;

use ferry_cas::frames::parse_frames;
use ferry_cas::hash::ContentHash;
use ferry_domain::permission::Action;

use super::apps::visible_app;
use super::manifests::load_manifest_blobs;
use super::{blocking, ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The most hashes one question may name.
const MAX_HASHES: usize = 100_000;

/// Parses the hashes of a question, at most [`MAX_HASHES`] of them.
pub fn parse_hashes(hashes: &[String]) -> ServiceResult<Vec<ContentHash>> {
    if hashes.len() > MAX_HASHES {
        return Err(ServiceError::invalid(format!(
            "{} hashes in one request; send at most {MAX_HASHES}",
            hashes.len()
        )));
    }
    hashes
        .iter()
        .map(|hex| {
            ContentHash::from_hex(hex)
                .ok_or_else(|| ServiceError::invalid(format!("{hex:?} is not a 64-digit hex hash")))
        })
        .collect()
}

/// Which of these blobs the server lacks (anyone who may create releases of the app).
pub async fn missing(
    state: &AppState,
    caller: &Caller,
    app: &str,
    hashes: &[String],
) -> ServiceResult<Vec<String>> {
    let app = visible_app(state, caller, app).await?;
    caller.require(Action::CreateRelease { team: &app.team })?;
    let hashes = parse_hashes(hashes)?;
    let blobs = state.blobs.clone();
    blocking(move || {
        Ok(hashes
            .into_iter()
            .filter(|hash| !blobs.contains(hash))
            .map(|hash| hash.to_hex())
            .collect())
    })
    .await
}

/// Stores a batch of blobs, each checked against its hash (anyone who may create releases
/// of the app); returns how many blobs the batch held and how many bytes were new.
pub async fn store_batch(
    state: &AppState,
    caller: &Caller,
    app: &str,
    batch: axum::body::Bytes,
) -> ServiceResult<(u64, u64)> {
    let app = visible_app(state, caller, app).await?;
    caller.require(Action::CreateRelease { team: &app.team })?;
    let blobs = state.blobs.clone();
    blocking(move || {
        let batch = parse_frames(&batch).map_err(|e| ServiceError::bad_request(e.to_string()))?;
        let new_bytes = blobs.put_batch(&batch)?;
        Ok((batch.len() as u64, new_bytes))
    })
    .await
}

/// The blobs asked for, if every one belongs to a release of the app (anyone who can see
/// the app); newest releases are searched first, as an export or a deploy asks for a recent
/// release's blobs.
pub async fn fetchable(
    state: &AppState,
    caller: &Caller,
    app: &str,
    hashes: &[String],
) -> ServiceResult<Vec<ContentHash>> {
    let app = visible_app(state, caller, app).await?;
    let hashes = parse_hashes(hashes)?;
    let mut unseen: HashSet<ContentHash> = hashes.iter().copied().collect();
    for release in state.store.list_releases(&app.name).await? {
        if unseen.is_empty() {
            break;
        }
        let blobs = load_manifest_blobs(state, &release).await?;
        unseen.retain(|hash| !blobs.contains(hash));
    }
    match unseen.iter().next() {
        Some(hash) => Err(ServiceError::not_found(format!(
            "blob {hash} is not part of a release of {}",
            app.name
        ))),
        None => Ok(hashes),
    }
}
