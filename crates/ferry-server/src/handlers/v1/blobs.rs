//! `/api/v1/apps/{app}/blobs`: asking which content the server lacks, uploading it in
//! batches, and fetching it in batches.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_api::{BlobHashes, MissingBlobs, StoredBlobs};
use ferry_cas::frames::write_frame;
use ferry_cas::hash::ContentHash;
use http_body_util::Channel;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::Caller;
use crate::blob_storage::BlobError;
use crate::error::ApiError;
use crate::json::{Body, LaterBody, Path};
use crate::services::{blobs, releases};
use crate::state::AppState;

/// The largest batch of blobs one upload may carry; clients send 32 MiB batches.
pub const MAX_BLOB_BATCH: usize = 64 * 1024 * 1024;
/// The largest list of hashes one question may carry: 100,000 hashes fit in 7 MB.
pub const MAX_HASH_LIST: usize = 8 * 1024 * 1024;
/// The most bytes one fetch answers with; past it the caller asks again for the rest.
const MAX_FETCH_BYTES: u64 = 32 * 1024 * 1024;

/// Which of these blobs the server lacks (anyone who may create releases of the app).
#[utoipa::path(post, path = "/api/v1/apps/{app}/blobs/missing", tag = "releases", request_body = BlobHashes,
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = MissingBlobs), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn missing_blobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    body: LaterBody<{ MAX_HASH_LIST }>,
) -> Result<Json<MissingBlobs>, ApiError> {
    let author = releases::author(&state, &caller, &app).await?;
    let request: BlobHashes = body.json().await?;
    let missing = blobs::missing(&state, &author, &request.hashes).await?;
    Ok(Json(MissingBlobs { missing }))
}

/// Stores a batch of blobs, each checked against its hash (anyone who may create releases
/// of the app). The body is the batch format of `ferry_cas::frames`.
#[utoipa::path(post, path = "/api/v1/apps/{app}/blobs", tag = "releases",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = StoredBlobs), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 413, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn upload_blobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    body: LaterBody<{ MAX_BLOB_BATCH }>,
) -> Result<Json<StoredBlobs>, ApiError> {
    let author = releases::author(&state, &caller, &app).await?;
    let _slot = batch_slot(&state).await?;
    let (blobs, new_bytes) = blobs::store_batch(&state, &author, body.bytes().await?).await?;
    Ok(Json(StoredBlobs { blobs, new_bytes }))
}

/// The blobs asked for, in the batch format, up to 32 MiB; the client asks again for those
/// that did not fit (anyone who can see the app). Only blobs of the app's own releases are
/// served: the store is shared between applications, their content is not.
#[utoipa::path(post, path = "/api/v1/apps/{app}/blobs/fetch", tag = "releases", request_body = BlobHashes,
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn fetch_blobs(
    State(state): State<AppState>,
    caller: Caller,
    Path(app): Path<String>,
    Body(request): Body<BlobHashes, { MAX_HASH_LIST }>,
) -> Result<Response, ApiError> {
    let hashes = blobs::fetchable(&state, &caller, &app, &request.hashes).await?;
    read_blob_batch(&state, hashes).await
}

/// One of the few places for a blob batch in memory, waited for.
pub async fn batch_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    state
        .batch_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("the server is shutting down"))
}

/// The blobs asked for, in order, as one batch of at most `MAX_FETCH_BYTES` (always at
/// least one blob); the caller asks again for the rest. The batch streams out in pieces as
/// its blobs are read and checked (from a folder or a bucket, a few read ahead), so the
/// caller writes the first blobs while the server reads the next, and the server holds a
/// few blobs at a time, not the batch, before it sends them. The first blob is read before
/// the answer starts: a missing one is a 404 naming it. One missing further on cuts the
/// stream short; the caller keeps what arrived whole and asks again from there, which
/// answers the 404.
pub async fn read_blob_batch(
    state: &AppState,
    hashes: Vec<ContentHash>,
) -> Result<Response, ApiError> {
    let key = crate::served::Served::batch_key(&hashes);
    let cached = |batch| ([(CONTENT_TYPE, "application/octet-stream")], batch).into_response();
    if let Some(batch) = state.served.get(&key) {
        return Ok(cached(batch));
    }
    // The targets of one deployment ask for the same batch at once: one reads it.
    let turn = state.served.read_turn(key).await;
    if let Some(batch) = state.served.get(&key) {
        return Ok(cached(batch));
    }
    // A copy of the batch is kept for the served cache: a few at once, at most.
    let slot = batch_slot(state).await?;
    let mut reading = state.blobs.clone().read_in_order(hashes);
    let first = match reading.recv().await {
        Some(Ok(first)) => first,
        Some(Err(error)) => return Err(error.into()),
        None => return Ok(cached(Bytes::new())), // none were asked for
    };
    let (pieces, mut arriving) = tokio::sync::mpsc::unbounded_channel();
    let served = state.served.clone();
    // Blobs are framed at the storage's pace, not the caller's, so the whole batch reaches
    // the served cache early, for the next target asking for it.
    tokio::spawn(async move {
        let mut whole = Vec::new();
        let mut frames = Vec::new();
        let mut sent = 0u64;
        let mut next: Option<Result<_, BlobError>> = Some(Ok(first));
        while let Some(read) = next {
            let (hash, data) = match read {
                Ok(blob) => blob,
                Err(error) => {
                    tracing::warn!("serving a blob batch: {error}");
                    let _ = pieces.send(Err(std::io::Error::other(error.to_string())));
                    return;
                }
            };
            if sent > 0 && sent + data.len() as u64 > MAX_FETCH_BYTES {
                break;
            }
            write_frame(&mut frames, &hash, &data);
            sent += data.len() as u64;
            if frames.len() >= PIECE_BYTES {
                whole.extend_from_slice(&frames);
                if pieces
                    .send(Ok(Bytes::from(std::mem::take(&mut frames))))
                    .is_err()
                {
                    return; // the caller went away
                }
            }
            next = reading.recv().await;
        }
        // Stops the reading ahead past the batch's end.
        drop(reading);
        whole.extend_from_slice(&frames);
        let _ = pieces.send(Ok(Bytes::from(frames)));
        served.insert(key, Bytes::from(whole));
        drop(turn);
        drop(slot);
    });
    let (mut sender, body) = Channel::<Bytes, std::io::Error>::new(PIECES_AHEAD);
    tokio::spawn(async move {
        while let Some(piece) = arriving.recv().await {
            let sent = match piece {
                Ok(bytes) => sender.send_data(bytes).await,
                Err(error) => return sender.abort(error),
            };
            if sent.is_err() {
                return; // the caller went away
            }
        }
    });
    Ok((
        [(CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::new(body),
    )
        .into_response())
}

/// Pieces of a streaming batch buffered for the caller beyond the one being sent.
const PIECES_AHEAD: usize = 2;
/// About how many bytes of frames one piece carries.
const PIECE_BYTES: usize = 1 << 20;
