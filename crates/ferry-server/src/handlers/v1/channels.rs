//! `/api/v1/teams/{team}/channels` and `/api/v1/teams/{team}/deliveries`: where a team's
//! notifications go, and what became of each one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{AddChannel, Delivery, NotificationChannel};
use ferry_notify::Channel;
use ferry_store::{ChannelRecord, DeliveryRecord};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::services::channels;
use crate::state::AppState;
use crate::views::rfc3339;

fn kind_of(record: &ChannelRecord) -> String {
    serde_json::from_str::<Channel>(&record.config)
        .map(|channel| channel.kind().to_owned())
        .unwrap_or_default()
}

fn channel_json(record: ChannelRecord) -> NotificationChannel {
    NotificationChannel {
        kind: kind_of(&record),
        id: record.id,
        team: record.team,
        description: record.description,
        created_by: record.created_by,
        created_at: rfc3339(record.created_ms),
    }
}

fn delivery_json(record: DeliveryRecord) -> Delivery {
    let message: serde_json::Value =
        serde_json::from_str(&record.message).unwrap_or(serde_json::Value::Null);
    let pending = record.status == ferry_store::DeliveryStatus::Pending;
    Delivery {
        id: record.id,
        team: record.team,
        channel: record.channel_id,
        channel_description: record.channel,
        event: record.event,
        subject: message["subject"].as_str().unwrap_or_default().to_owned(),
        status: record.status,
        attempts: record.attempts,
        max_attempts: ferry_notify::MAX_ATTEMPTS,
        last_error: record.last_error,
        detail: record.detail,
        audit_seq: record.audit_seq,
        created_at: rfc3339(record.created_ms),
        last_attempt_at: record.last_attempt_ms.map(rfc3339),
        next_attempt_at: pending.then(|| rfc3339(record.next_attempt_ms)),
        finished_at: record.finished_ms.map(rfc3339),
        message,
    }
}

/// The notification channels of a team (anyone who can see the team); secrets are never
/// shown.
#[utoipa::path(get, path = "/api/v1/teams/{team}/channels", tag = "notifications",
    params(("team" = String, Path, description = "team name")),
    responses((status = 200, body = Vec<NotificationChannel>), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn list_channels(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
) -> Result<Json<Vec<NotificationChannel>>, ApiError> {
    let channels = channels::list(&state, &caller, &team).await?;
    Ok(Json(channels.into_iter().map(channel_json).collect()))
}

/// Adds a notification channel to a team (its lead or an admin): a signed webhook or
/// e-mail over SMTP. The channel is checked before it is stored; a webhook to loopback,
/// link-local or private addresses needs `allow_private`, which only an admin may set.
#[utoipa::path(post, path = "/api/v1/teams/{team}/channels", tag = "notifications",
    request_body = AddChannel,
    params(("team" = String, Path, description = "team name")),
    responses((status = 201, body = NotificationChannel), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn add_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    Body(request): Body<AddChannel>,
) -> Result<(StatusCode, Json<NotificationChannel>), ApiError> {
    let channel = match request {
        AddChannel::Webhook {
            url,
            secret,
            allow_private,
        } => Channel::Webhook {
            url,
            secret,
            allow_private,
        },
        AddChannel::Email { smtp, from, to } => Channel::Email { smtp, from, to },
    };
    let added = channels::add(&state, &caller, &team, channel).await?;
    Ok((StatusCode::CREATED, Json(channel_json(added))))
}

/// Removes a notification channel (the team's lead or an admin). Its delivery log stays;
/// deliveries still pending fail.
#[utoipa::path(delete, path = "/api/v1/teams/{team}/channels/{id}", tag = "notifications",
    params(("team" = String, Path, description = "team name"),
        ("id" = i64, Path, description = "channel id")),
    responses((status = 204), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn remove_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, id)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    channels::remove(&state, &caller, &team, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test message to one channel of a team (its lead or an admin): the delivery is
/// queued now and sent by the notifier, with retries like any other.
#[utoipa::path(post, path = "/api/v1/teams/{team}/channels/{id}/test", tag = "notifications",
    params(("team" = String, Path, description = "team name"),
        ("id" = i64, Path, description = "channel id")),
    responses((status = 201, body = Delivery), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn test_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, id)): Path<(String, i64)>,
) -> Result<(StatusCode, Json<Delivery>), ApiError> {
    let queued = channels::test(&state, &caller, &team, id).await?;
    Ok((StatusCode::CREATED, Json(delivery_json(queued))))
}

/// How many deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// The newest N (default 50, at most 1000).
    limit: Option<u32>,
}

/// A team's delivery log, newest first (anyone who can see the team).
#[utoipa::path(get, path = "/api/v1/teams/{team}/deliveries", tag = "notifications",
    params(("team" = String, Path, description = "team name"), DeliveryQuery),
    responses((status = 200, body = Vec<Delivery>), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody), (status = 422, body = ferry_api::ErrorBody)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(team): Path<String>,
    Query(query): Query<DeliveryQuery>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    let deliveries = channels::deliveries(&state, &caller, &team, query.limit).await?;
    Ok(Json(deliveries.into_iter().map(delivery_json).collect()))
}

/// One delivery of a team (anyone who can see the team).
#[utoipa::path(get, path = "/api/v1/teams/{team}/deliveries/{id}", tag = "notifications",
    params(("team" = String, Path, description = "team name"),
        ("id" = i64, Path, description = "delivery id")),
    responses((status = 200, body = Delivery), (status = 403, body = ferry_api::ErrorBody),
        (status = 404, body = ferry_api::ErrorBody)))]
pub async fn show_delivery(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, id)): Path<(String, i64)>,
) -> Result<Json<Delivery>, ApiError> {
    let delivery = channels::delivery(&state, &caller, &team, id).await?;
    Ok(Json(delivery_json(delivery)))
}
