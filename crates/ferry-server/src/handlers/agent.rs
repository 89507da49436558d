//! `/api/v1/agent/*`: what agents call. An agent authenticates with its target's
//! credential and can read only what its own applications need and report only for itself.

use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_api::{
    AgentBackup, AgentCapture, AgentCredential, AgentDrift, AgentEnroll, AgentReport, AppBackup,
    BlobHashes, CapturedRelease, DesiredState, MissingBlobs, StoredBlobs, TaskReport,
};
use ferry_cas::hash::ContentHash;
use ferry_domain::token::hash_token;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::handlers::v1::blobs::{batch_slot, read_blob_batch, MAX_BLOB_BATCH, MAX_HASH_LIST};
use crate::json::{Body, LaterBody, Path, Query};
use crate::peer::Peer;
use crate::services::{agents, blobs, captures, drift, tasks, ServiceError};
use crate::state::AppState;

/// The longest an agent's long-poll is held open; it answers sooner when the heartbeat
/// interval is shorter, so that the agent's next question is its next heartbeat.
const LONG_POLL: Duration = Duration::from_secs(25);

/// The most long-polls one target's credential has waiting at once: an agent holds one (two
/// while it reconnects), so more means several processes use the credential.
pub const LONG_POLLS_PER_TARGET: usize = 4;

/// The target whose agent is calling.
pub struct AgentCaller {
    pub target: ferry_store::Target,
    /// The hash of the credential it called with, to check it again after a long wait.
    credential_hash: String,
    /// What the agent says of itself in its headers.
    pub says: AgentSays,
}

/// What an agent's request says of the agent: its ferry version and protocol, and on
/// heartbeats the space on its root's filesystem. An agent that says nothing is of the
/// versions before agents said so: protocol 1.
#[derive(Clone, Debug, Default)]
pub struct AgentSays {
    version: Option<String>,
    protocol: u32,
    disk: Option<ferry_domain::agent_build::DiskSpace>,
}

impl AgentSays {
    /// Reads the headers, refusing (426) a protocol this server does not serve.
    fn of(headers: &axum::http::HeaderMap) -> Result<AgentSays, ApiError> {
        use ferry_api::{AGENT_DISK_HEADER, AGENT_PROTOCOL_HEADER, AGENT_VERSION_HEADER};
        use ferry_domain::agent_build::{check_protocol, DiskSpace, ProtocolMismatch};
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let version = text(AGENT_VERSION_HEADER)
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .map(str::to_owned);
        let protocol = text(AGENT_PROTOCOL_HEADER)
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let oldest = ferry_api::OLDEST_AGENT_PROTOCOL;
        let newest = ferry_api::AGENT_PROTOCOL;
        let ours = env!("CARGO_PKG_VERSION");
        let theirs = version.as_deref().unwrap_or("an older version");
        if let Err(mismatch) = check_protocol(protocol, oldest, newest) {
            let (code, what, upgrade) = match mismatch {
                ProtocolMismatch::AgentTooOld { .. } => (
                    "agent_too_old",
                    "too old for this server",
                    "upgrade ferry on this target",
                ),
                ProtocolMismatch::ServerTooOld { .. } => (
                    "server_too_old",
                    "newer than this server",
                    "upgrade the server first, then its agents",
                ),
            };
            return Err(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                code,
                format!(
                    "this agent (ferry {theirs}, agent protocol {protocol}) is {what} (ferry {ours}, protocol {oldest} to {newest}): {upgrade}"
                ),
            ));
        }
        let disk = text(AGENT_DISK_HEADER).and_then(|d| {
            let (free, total) = d.split_once('/')?;
            Some(DiskSpace {
                free: free.parse().ok()?,
                total: total.parse().ok()?,
            })
        });
        Ok(AgentSays {
            version,
            protocol,
            disk,
        })
    }

    /// What is known of the agent from this request, at `now_ms`; `None` from an agent that
    /// does not say its version.
    pub fn build(&self, now_ms: i64) -> Option<ferry_domain::agent_build::AgentBuild> {
        Some(ferry_domain::agent_build::AgentBuild {
            version: self.version.clone()?,
            protocol: self.protocol,
            disk: self.disk,
            said_ms: now_ms,
        })
    }
}

impl AgentCaller {
    /// The target of `credential_hash`, read from the store: never cached, so a removed
    /// target's credential is refused from the next request on, by every server sharing the
    /// database.
    async fn of(
        state: &AppState,
        credential_hash: String,
        says: AgentSays,
    ) -> Result<AgentCaller, ApiError> {
        let target = state
            .store
            .target_by_credential(&credential_hash)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "unknown agent credential: the target was removed or enrolled again by another agent; enroll this agent again with a new token (`ferry target enroll ENV NAME`)",
                )
            })?;
        Ok(AgentCaller {
            target,
            credential_hash,
            says,
        })
    }
}

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let says = AgentSays::of(&parts.headers)?;
        let credential = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("agents send `Authorization: Bearer CREDENTIAL`")
            })?;
        AgentCaller::of(state, hash_token(credential.trim()), says).await
    }
}

/// Exchanges a one-time enrollment token for the agent's long-lived credential.
#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agent", request_body = AgentEnroll,
    security(()),
    responses((status = 200, body = AgentCredential), (status = 422, body = ferry_api::ErrorBody),
        (status = 429, body = ferry_api::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Body(request): Body<AgentEnroll>,
) -> Result<Json<AgentCredential>, ApiError> {
    let (target, credential) = agents::enroll(&state, &request.token, peer.ip()).await?;
    Ok(Json(AgentCredential {
        target: target.name,
        env: target.env,
        credential,
    }))
}

/// Where the agent's last long-poll left off.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DesiredQuery {
    /// Answer only once the generation is past this one (or after the heartbeat interval,
    /// 5 s unless the server says otherwise in `heartbeat_ms`, at most 25 s).
    after: Option<u64>,
}

/// What this target should run; a long-poll that also counts as the agent's heartbeat, held
/// open at most one heartbeat interval.
#[utoipa::path(get, path = "/api/v1/agent/desired", tag = "agent", params(DesiredQuery),
    responses((status = 200, body = DesiredState), (status = 401, body = ferry_api::ErrorBody),
        (status = 429, body = ferry_api::ErrorBody)))]
pub async fn desired(
    State(state): State<AppState>,
    mut agent: AgentCaller,
    Query(query): Query<DesiredQuery>,
) -> Result<Json<DesiredState>, ApiError> {
    let wakeups = state.wakeups.clone();
    if let Some(after) = query.after {
        let _place = state.long_polls.enter(&agent.target.name).ok_or_else(|| {
            ServiceError::too_many(format!(
                "target {} has {LONG_POLLS_PER_TARGET} long-polls waiting already: its \
                 credential is used by more than one agent; run one agent per target",
                agent.target.name
            ))
        })?;
        let deadline = tokio::time::Instant::now() + state.liveness.heartbeat.min(LONG_POLL);
        loop {
            let changed = wakeups.agents().notified();
            if wakeups.generation_of(&agent.target.name) > after {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        // The target may have been removed while the agent waited.
        agent = AgentCaller::of(&state, agent.credential_hash, agent.says).await?;
    }
    let generation = wakeups.generation();
    let said = agent.says.build(state.clock.now_ms());
    let apps = agents::desired(&state, &agent.target, said).await?;
    let tasks = tasks::pending(&state, &agent.target).await?;
    Ok(Json(DesiredState {
        target: agent.target.name,
        env: agent.target.env,
        generation,
        apps,
        heartbeat_ms: Some(state.liveness.heartbeat.as_millis() as u64),
        tasks,
    }))
}

/// A heartbeat from an agent busy deploying or staging, which is not long-polling then:
/// its target stays online while it works.
#[utoipa::path(post, path = "/api/v1/agent/heartbeat", tag = "agent",
    responses((status = 200, body = Object), (status = 401, body = ferry_api::ErrorBody)))]
pub async fn heartbeat(
    State(state): State<AppState>,
    agent: AgentCaller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let said = agent.says.build(state.clock.now_ms());
    agents::heartbeat(&state, &agent.target, said).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// The values of a configuration revision this target is asked to run or stage, or runs:
/// the one answer that carries secrets in clear, to the agents of that environment only.
#[utoipa::path(get, path = "/api/v1/agent/apps/{app}/config/{revision}", tag = "agent",
    params(("app" = String, Path, description = "application name"),
        ("revision" = u64, Path, description = "configuration revision")),
    responses((status = 200, body = ferry_api::AgentConfig), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn config(
    State(state): State<AppState>,
    agent: AgentCaller,
    Path((app, revision)): Path<(String, u64)>,
) -> Result<Json<ferry_api::AgentConfig>, ApiError> {
    Ok(Json(
        agents::config(&state, &agent.target, &app, revision).await?,
    ))
}

/// The header naming the digest of the manifest an agent fetches.
pub const DIGEST_HEADER: &str = "x-ferry-digest";

/// The manifest of a release this target is asked to run, as stored: zstd-compressed
/// canonical JSON, whose hash the agent checks against the digest in `x-ferry-digest`.
/// Sending the stored bytes keeps the server's cost per target to one read.
#[utoipa::path(get, path = "/api/v1/agent/manifest/{app}/{version}", tag = "agent",
    params(("app" = String, Path, description = "application name"), ("version" = String, Path, description = "release version")),
    responses((status = 200, content_type = "application/zstd", body = Vec<u8>), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn manifest(
    State(state): State<AppState>,
    agent: AgentCaller,
    Path((app, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let release = agents::release(&state, &agent.target, &app, &version).await?;
    let manifest_blob = ContentHash::from_hex(&release.manifest_blob)
        .ok_or_else(|| ApiError::internal(format!("{:?} is not a hash", release.manifest_blob)))?;
    let bytes = match state.served.get(&manifest_blob) {
        Some(bytes) => bytes,
        None => {
            let bytes = state.blobs.read(manifest_blob).await?;
            state.served.insert(manifest_blob, bytes.clone());
            bytes
        }
    };
    Ok((
        [
            (CONTENT_TYPE, "application/zstd".to_owned()),
            (
                DIGEST_HEADER.parse().expect("a valid header name"),
                release.digest,
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Blobs of the releases this target is asked to run, in the batch format, up to 32 MiB;
/// the agent asks again for those that did not fit.
#[utoipa::path(post, path = "/api/v1/agent/blobs/fetch", tag = "agent", request_body = BlobHashes,
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn fetch_blobs(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<BlobHashes, { MAX_HASH_LIST }>,
) -> Result<Response, ApiError> {
    let hashes = agents::fetchable(&state, &agent.target, &request.hashes).await?;
    read_blob_batch(&state, hashes).await
}

/// The largest report an agent may send: its step logs, each bounded, written as JSON
/// (where a control character takes six bytes).
const MAX_REPORT_BODY: usize = 4 * 1024 * 1024;

/// Records how converging one application went, with the logs of the hooks and health
/// check it ran, and moves its deployment on.
#[utoipa::path(post, path = "/api/v1/agent/report", tag = "agent", request_body = AgentReport,
    responses((status = 200, body = Object), (status = 404, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<AgentReport, { MAX_REPORT_BODY }>,
) -> Result<Json<serde_json::Value>, ApiError> {
    agents::report(&state, &agent.target, request).await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}

/// The largest drift report an agent may send: room for many more paths than the server
/// keeps ([`drift::MAX_KEPT_PATHS`]), so a target edited beyond that still reports a count.
const MAX_DRIFT_BODY: usize = 16 * 1024 * 1024;

/// What the agent's latest drift check found for one application its target runs: the
/// paths that differ from the release `current` points at, none when it serves it exactly.
/// Replaces what it reported before.
#[utoipa::path(post, path = "/api/v1/agent/drift", tag = "agent", request_body = AgentDrift,
    responses((status = 204), (status = 404, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn drift(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<AgentDrift, { MAX_DRIFT_BODY }>,
) -> Result<StatusCode, ApiError> {
    drift::record(&state, &agent.target, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The largest capture an agent may submit: its manifest, as large as a release's.
const MAX_CAPTURE_BODY: usize = 256 * 1024 * 1024;

/// Creates the release this target's agent captured for a capture task (`ferry drift
/// capture`), once the content the server lacked is uploaded: a hotfix of the release the
/// target runs, which the target is recorded running.
#[utoipa::path(post, path = "/api/v1/agent/captures", tag = "agent", request_body = AgentCapture,
    responses((status = 200, body = CapturedRelease), (status = 404, body = ferry_api::ErrorBody),
        (status = 409, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn capture(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<AgentCapture, { MAX_CAPTURE_BODY }>,
) -> Result<Json<CapturedRelease>, ApiError> {
    Ok(Json(
        captures::submit(&state, &agent.target, request).await?,
    ))
}

/// The largest task report an agent may send: a message and what the task found.
const MAX_TASK_REPORT_BODY: usize = 1024 * 1024;

/// How one of this target's tasks went: done once; a task that is over refuses another
/// report (409).
#[utoipa::path(post, path = "/api/v1/agent/tasks/{id}", tag = "agent", request_body = TaskReport,
    params(("id" = i64, Path, description = "task number")),
    responses((status = 204), (status = 404, body = ferry_api::ErrorBody),
        (status = 409, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn task(
    State(state): State<AppState>,
    agent: AgentCaller,
    Path(id): Path<i64>,
    Body(request): Body<TaskReport, { MAX_TASK_REPORT_BODY }>,
) -> Result<StatusCode, ApiError> {
    tasks::finish(&state, &agent.target, id, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which of these blobs of an application its target runs the server lacks, for the agent
/// to upload (hand edits it captures, data it backs up). Only what the agent uploaded
/// itself, or the application's releases hold, counts as present.
#[utoipa::path(post, path = "/api/v1/agent/apps/{app}/blobs/missing", tag = "agent",
    request_body = BlobHashes,
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = MissingBlobs), (status = 404, body = ferry_api::ErrorBody)))]
pub async fn missing_blobs(
    State(state): State<AppState>,
    agent: AgentCaller,
    Path(app): Path<String>,
    Body(request): Body<BlobHashes, { MAX_HASH_LIST }>,
) -> Result<Json<MissingBlobs>, ApiError> {
    let uploader = agents::uploader(&state, &agent.target, &app).await?;
    let missing = blobs::missing(&state, &uploader, &request.hashes).await?;
    Ok(Json(MissingBlobs { missing }))
}

/// Stores a batch of blobs of an application the agent's target runs, each checked against
/// its hash; the body is the batch format of `ferry_cas::frames`.
#[utoipa::path(post, path = "/api/v1/agent/apps/{app}/blobs", tag = "agent",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    params(("app" = String, Path, description = "application name")),
    responses((status = 200, body = StoredBlobs), (status = 404, body = ferry_api::ErrorBody),
        (status = 413, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn upload_blobs(
    State(state): State<AppState>,
    agent: AgentCaller,
    Path(app): Path<String>,
    body: LaterBody<{ MAX_BLOB_BATCH }>,
) -> Result<Json<StoredBlobs>, ApiError> {
    let uploader = agents::uploader(&state, &agent.target, &app).await?;
    let _slot = batch_slot(&state).await?;
    let (blobs, new_bytes) = blobs::store_batch(&state, &uploader, body.bytes().await?).await?;
    Ok(Json(StoredBlobs { blobs, new_bytes }))
}

/// The largest backup record an agent may send: its backup paths and a few hashes.
const MAX_BACKUP_BODY: usize = 1024 * 1024;

/// Records a backup of an application this target runs, once the agent has uploaded every
/// blob of its manifest and the manifest itself: checked against the stored manifest, then
/// kept (`backup.create`), its blobs held from garbage collection until retention removes it.
#[utoipa::path(post, path = "/api/v1/agent/backups", tag = "agent", request_body = AgentBackup,
    responses((status = 200, body = AppBackup), (status = 404, body = ferry_api::ErrorBody),
        (status = 422, body = ferry_api::ErrorBody)))]
pub async fn backup(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<AgentBackup, { MAX_BACKUP_BODY }>,
) -> Result<Json<AppBackup>, ApiError> {
    Ok(Json(
        crate::services::app_backups::record(&state, &agent.target, request).await?,
    ))
}
