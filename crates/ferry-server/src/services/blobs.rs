//! Release content as clients move it: which blobs the server lacks, storing uploaded
//! batches, and which blobs a caller may fetch. The store is shared between applications;
//! their content is not: a caller learns that a blob exists only when it belongs to a
//! release of the application or the caller uploaded it for that application recently (or,
//! for an agent of a target that runs the application, to one of its backups).

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Bytes;
use ferry_cas::frames::parse_frames;
use ferry_cas::hash::ContentHash;

use super::apps::visible_app;
use super::manifests::load_manifest_blobs;
use super::releases::ReleaseAuthor;
use super::{blocking, ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::blob_storage::BlobError;
use crate::held_blobs::Holder;
use crate::state::AppState;

/// The most hashes one question may name.
const MAX_HASHES: usize = 100_000;
/// How long an upload counts as the uploader's without a release: it is answered as present
/// to them for this long (and garbage collection keeps unreferenced blobs at least as long,
/// see `--gc-grace`, whichever is shorter).
const UPLOAD_REMEMBERED: Duration = Duration::from_secs(6 * 60 * 60);

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
            ContentHash::from_hex(hex).ok_or_else(|| {
                ServiceError::invalid(format!("{hex:?} is not a hash: 64 lowercase hex digits"))
            })
        })
        .collect()
}

/// Which of `hashes` belong to a release of the application, from what the server folded in
/// of its releases ([`crate::held_blobs`]): only releases new to it are read.
async fn in_releases(
    state: &AppState,
    app: &str,
    hashes: &[ContentHash],
) -> ServiceResult<HashSet<ContentHash>> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let listed = state.store.list_releases(app).await?;
    let holders: Vec<Holder> = listed
        .iter()
        .map(|r| (r.version.clone(), r.created_ms, r.digest.clone()))
        .collect();
    for at in state.release_blobs.unfolded(app, &holders) {
        let blobs = load_manifest_blobs(state, &listed[at]).await?;
        state
            .release_blobs
            .fold(app, &holders[at], blobs.iter().copied());
    }
    Ok(state.release_blobs.held(app, hashes))
}

/// Which of these blobs the author must upload: every one the server does not hold for
/// them, which includes blobs the server holds for other applications only.
pub async fn missing(
    state: &AppState,
    author: &ReleaseAuthor,
    hashes: &[String],
) -> ServiceResult<Vec<String>> {
    let hashes = parse_hashes(hashes)?;
    let app = &author.app().name;
    let since = uploads_count_since(state, state.clock.now_ms());
    let mut readable = state
        .uploads
        .uploaded_since(author.user(), app, &hashes, since);
    let rest: Vec<ContentHash> = hashes
        .iter()
        .filter(|h| !readable.contains(h))
        .copied()
        .collect();
    readable.extend(in_releases(state, app, &rest).await?);
    // An agent of a target that runs the application may learn what its backups hold (it
    // backs them up); a person, who may not see every environment's backups, may not.
    if author.is_agent() {
        let rest: Vec<ContentHash> = rest.into_iter().filter(|h| !readable.contains(h)).collect();
        readable.extend(super::app_backups::in_backups(state, app, &rest).await?);
    }
    // Only blobs the author may know of are looked up in the storage.
    let known: Vec<ContentHash> = hashes
        .iter()
        .filter(|hash| readable.contains(hash))
        .copied()
        .collect();
    let sizes = state.blobs.sizes(known.clone()).await?;
    let present: HashSet<ContentHash> = known
        .into_iter()
        .zip(sizes)
        .filter_map(|(hash, size)| size.map(|_| hash))
        .collect();
    Ok(hashes
        .into_iter()
        .filter(|hash| !present.contains(hash))
        .map(|hash| hash.to_hex())
        .collect())
}

/// The oldest an upload may be, at `now_ms`, and still be answered as present to its
/// uploader.
fn uploads_count_since(state: &AppState, now_ms: i64) -> i64 {
    now_ms - UPLOAD_REMEMBERED.min(state.gc_grace).as_millis() as i64
}

/// Stores a batch of blobs, each checked against its hash; returns how many distinct blobs
/// the batch held and their bytes. The bytes count whether or not another application
/// stored the same content before, so the answer tells nothing about other teams' files.
pub async fn store_batch(
    state: &AppState,
    author: &ReleaseAuthor,
    batch: Bytes,
) -> ServiceResult<(u64, u64)> {
    let (blobs, hashes, bytes) = blocking(move || {
        let frames = parse_frames(&batch).map_err(|e| ServiceError::bad_request(e.to_string()))?;
        let blobs: Vec<(ContentHash, Bytes)> = frames
            .into_iter()
            .map(|(hash, data)| (hash, batch.slice_ref(data)))
            .collect();
        let mut seen = HashSet::new();
        let mut bytes = 0;
        for (hash, data) in &blobs {
            if seen.insert(*hash) {
                bytes += data.len() as u64;
            }
        }
        Ok((blobs, seen.into_iter().collect::<Vec<_>>(), bytes))
    })
    .await?;
    // Remembered as the author's only once the whole batch is stored: a batch that failed
    // part-way counts for nothing, and the next "which are missing?" asks for all of it.
    state.blobs.put_batch(blobs).await.map_err(|error| match error {
        BlobError::Unavailable { .. } => {
            tracing::error!("blob storage: {error}");
            ServiceError::unavailable(format!(
                "the upload was not stored: {error}. None of this upload counts as stored and no release was created: run the same command again once the server's blob storage answers"
            ))
        }
        error => error.into(),
    })?;
    let now = state.clock.now_ms();
    state.uploads.remember(
        author.user(),
        &author.app().name,
        &hashes,
        now,
        uploads_count_since(state, now),
    );
    Ok((hashes.len() as u64, bytes))
}

/// The blobs asked for, if every one belongs to a release of the app (anyone who can see
/// the app).
pub async fn fetchable(
    state: &AppState,
    caller: &Caller,
    app: &str,
    hashes: &[String],
) -> ServiceResult<Vec<ContentHash>> {
    let app = visible_app(state, caller, app).await?;
    let hashes = parse_hashes(hashes)?;
    let found = in_releases(state, &app.name, &hashes).await?;
    match hashes.iter().find(|hash| !found.contains(hash)) {
        Some(hash) => Err(ServiceError::not_found(format!(
            "blob {hash} is not part of a release of {}",
            app.name
        ))),
        None => Ok(hashes),
    }
}
