//! `/api/v1/agent/*`: what agents call. An agent authenticates with its target's
//! credential and can read only what its own applications need and report only for itself.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_api::{
    AgentCredential, AgentEnroll, AgentReport, BlobHashes, DesiredApp, DesiredStage, DesiredState,
};
use ferry_cas::hash::ContentHash;
use ferry_domain::audit_event::{AuditAction, TargetEnroll};
use ferry_domain::deployment::{Kind, Outcome, Report};
use ferry_domain::token::hash_token;
use ferry_store::TargetReport;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::new_token;
use crate::error::ApiError;
use crate::handlers::v1::blobs::{read_blob_batch, MAX_BLOB_BATCH};
use crate::json::{Body, Path, Query};
use crate::services::blocking;
use crate::services::manifests::load_manifest_blobs;
use crate::services::orchestrator::{apply_report, record_progress};
use crate::state::AppState;

/// How often a polling agent's last contact is written down (well inside the minute after
/// which a target counts as offline).
const HEARTBEAT_EVERY_MS: i64 = 5_000;
/// The longest an agent's long-poll is held open.
const LONG_POLL: Duration = Duration::from_secs(25);

/// The target whose agent is calling.
pub struct AgentCaller {
    pub target: ferry_store::Target,
}

impl FromRequestParts<AppState> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("agents send `Authorization: Bearer CREDENTIAL`")
            })?;
        let hash = hash_token(credential.trim());
        if let Some(target) = state.known_agents.get(&hash) {
            return Ok(AgentCaller { target });
        }
        let target = state
            .store
            .target_by_credential(&hash)
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized("unknown agent credential: enroll the agent again")
            })?;
        state.known_agents.insert(hash, target.clone());
        Ok(AgentCaller { target })
    }
}

/// Exchanges a one-time enrollment token for the agent's long-lived credential.
#[utoipa::path(post, path = "/api/v1/agent/enroll", tag = "agent", request_body = AgentEnroll,
    responses((status = 200, body = AgentCredential), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    Body(request): Body<AgentEnroll>,
) -> Result<Json<AgentCredential>, ApiError> {
    let credential = new_token().map_err(|e| ApiError::internal(e.to_string()))?;
    let now = state.clock.now_ms();
    // The store makes the subject `target/NAME` once it knows which target enrolled.
    let record =
        AuditAction::TargetEnroll(TargetEnroll {}).record(now, "agent", String::new(), None);
    // The token as `ferry target enroll` printed it may end in `.FINGERPRINT`; the stored
    // hash is of the token alone.
    let token = request.token.trim();
    let token = token.split_once('.').map_or(token, |(token, _)| token);
    let target = state
        .store
        .enroll_target(&hash_token(token), &hash_token(&credential), now, record)
        .await?;
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
    /// Answer only once the generation is past this one (or after 25 s).
    after: Option<u64>,
}

/// What this target should run; a long-poll that also counts as the agent's heartbeat.
#[utoipa::path(get, path = "/api/v1/agent/desired", tag = "agent", params(DesiredQuery),
    responses((status = 200, body = DesiredState), (status = 401, body = ferry_api::ErrorBody)))]
pub async fn desired(
    State(state): State<AppState>,
    agent: AgentCaller,
    Query(query): Query<DesiredQuery>,
) -> Result<Json<DesiredState>, ApiError> {
    let wakeups = state.wakeups.clone();
    if let Some(after) = query.after {
        let deadline = tokio::time::Instant::now() + LONG_POLL;
        loop {
            let changed = wakeups.agents().notified();
            if wakeups.generation_of(&agent.target.name) > after {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
    }
    let generation = wakeups.generation();
    // A heartbeat, written at most every few seconds however often the agent is woken.
    let now = state.clock.now_ms();
    if agent
        .target
        .last_seen_ms
        .is_none_or(|seen| now - seen >= HEARTBEAT_EVERY_MS)
    {
        state.store.touch_target(&agent.target.name, now).await?;
        state.known_agents.seen(&agent.target.name, now);
    }
    let apps = state
        .store
        .target_apps(Some(&agent.target.name))
        .await?
        .into_iter()
        .filter(|row| row.deployment_id.is_some() || row.stage.is_some())
        .map(|row| DesiredApp {
            // A rollback, or a target asked to go back after another target failed.
            switch_back: row.deployment_kind == Some(Kind::Rollback)
                || row.desired_version != row.deployment_version,
            stage: row.stage.map(|(version, deployment)| DesiredStage {
                version,
                deployment,
            }),
            app: row.app,
            version: row.desired_version,
            deployment: row.deployment_id,
            keep: Some(row.keep_releases),
        })
        .collect();
    Ok(Json(DesiredState {
        target: agent.target.name,
        env: agent.target.env,
        generation,
        apps,
    }))
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
    let release = desired_release(&state, &agent, &app, &version).await?;
    let manifest_blob = ContentHash::from_hex(&release.manifest_blob)
        .ok_or_else(|| ApiError::internal(format!("{:?} is not a hash", release.manifest_blob)))?;
    let bytes = match state.served.get(&manifest_blob) {
        Some(bytes) => bytes,
        None => {
            let blobs = state.blobs.clone();
            let bytes: axum::body::Bytes = blocking(move || Ok(blobs.read(&manifest_blob)?))
                .await?
                .into();
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

/// A release this target runs or is asked to run; anything else is not its business.
async fn desired_release(
    state: &AppState,
    agent: &AgentCaller,
    app: &str,
    version: &str,
) -> Result<ferry_store::Release, ApiError> {
    let asked = state
        .store
        .target_apps(Some(&agent.target.name))
        .await?
        .into_iter()
        .any(|r| {
            r.app == app
                && (r.desired_version.as_deref() == Some(version)
                    || r.current_version.as_deref() == Some(version)
                    || staged_version(&r) == Some(version))
        });
    let release = if asked {
        state.store.release(app, version).await?
    } else {
        None
    };
    release.ok_or_else(|| {
        ApiError::not_found(format!(
            "target {:?} runs no release {app} {version}",
            agent.target.name
        ))
    })
}

/// Blobs of the releases this target is asked to run, in the batch format, up to 32 MiB;
/// the agent asks again for those that did not fit.
#[utoipa::path(post, path = "/api/v1/agent/blobs/fetch", tag = "agent", request_body = BlobHashes,
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn fetch_blobs(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<BlobHashes, { MAX_BLOB_BATCH }>,
) -> Result<Response, ApiError> {
    let mut allowed: Vec<std::sync::Arc<HashSet<ContentHash>>> = Vec::new();
    for row in state.store.target_apps(Some(&agent.target.name)).await? {
        for version in [row.desired_version.as_deref(), staged_version(&row)]
            .into_iter()
            .flatten()
        {
            if let Some(release) = state.store.release(&row.app, version).await? {
                allowed.push(load_manifest_blobs(&state, &release).await?);
            }
        }
    }
    let mut hashes = Vec::with_capacity(request.hashes.len());
    for hex in &request.hashes {
        let hash = ContentHash::from_hex(hex)
            .ok_or_else(|| ApiError::invalid(format!("{hex:?} is not a hash")))?;
        if !allowed.iter().any(|blobs| blobs.contains(&hash)) {
            return Err(ApiError::not_found(format!(
                "blob {hex} is not part of a release this target runs"
            )));
        }
        hashes.push(hash);
    }
    read_blob_batch(&state, hashes).await
}

/// The release a target is asked to stage ahead, if any.
fn staged_version(row: &ferry_store::TargetApp) -> Option<&str> {
    row.stage.as_ref().map(|(version, _)| version.as_str())
}

/// Records how converging one application went and moves its deployment on.
#[utoipa::path(post, path = "/api/v1/agent/report", tag = "agent", request_body = AgentReport,
    responses((status = 200, body = Object), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    agent: AgentCaller,
    Body(request): Body<AgentReport>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let reason = request
        .reason
        .clone()
        .unwrap_or_else(|| "no reason given".to_owned());
    let detail = match &request.output_tail {
        Some(tail) if !tail.is_empty() => format!("{reason}\n{tail}"),
        _ => reason.clone(),
    };
    let target = agent.target.name.clone();
    // An agent reports only on what its own target was asked to do.
    // Staging ahead is reported as `staged` or `stage_failed` and leaves what the target
    // runs as it was.
    let staging = request.outcome.is_staging();
    let asked = state
        .store
        .target_apps(Some(&target))
        .await?
        .into_iter()
        .any(|r| {
            let deployment = if staging {
                r.stage.as_ref().map(|(_, d)| *d)
            } else {
                r.deployment_id
            };
            r.app == request.app && deployment == Some(request.deployment)
        });
    if !asked {
        return Err(ApiError::not_found(format!(
            "target {target:?} was not asked to {} {} in deployment {}",
            if staging { "stage" } else { "run" },
            request.app,
            request.deployment
        )));
    }
    let reported = |detail: &str| {
        request
            .outcome
            .target_app_state()
            .map(|target_state| TargetReport {
                target: target.clone(),
                app: request.app.clone(),
                current_version: request.current_version.clone(),
                state: target_state,
                detail: Some(detail.to_owned()),
                at_ms: state.clock.now_ms(),
            })
    };
    if request.outcome == Outcome::Progress {
        if let Some(progress) = reported(&reason) {
            record_progress(&state, request.deployment, progress).await?;
        }
        return Ok(Json(serde_json::json!({ "ok": true })));
    }
    let outcome = request.outcome;
    apply_report(
        &state,
        request.deployment,
        &target,
        |step| Report::from_agent(step, outcome, &detail),
        reported(&detail),
    )
    .await?;
    Ok(Json(serde_json::json!({ "ok": true })))
}
