//! `/api/v1/teams/{team}/channels` and `/api/v1/teams/{team}/deliveries`: where a team's
//! notifications go, and what became of each one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ferry_api::{AddChannel, Delivery, NotificationChannel};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::permission::{decide, Action, Decision};
use ferry_notify::Channel;
use ferry_store::{ChannelRecord, DeliveryRecord, NewChannel, NewDelivery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::teams::existing_team;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::json::{Body, Path, Query};
use crate::notifier;
use crate::state::AppState;
use crate::views::rfc3339;

/// Deliveries listed when no limit is given.
const DEFAULT_DELIVERIES: u32 = 50;
/// Deliveries listed at most.
const MAX_DELIVERIES: u32 = 1000;

/// Refuses unless the caller leads `team` or is an admin.
fn require_manage(caller: &Caller, team: &str) -> Result<(), ApiError> {
    match decide(&caller.principal, Action::ManageTeamRoles { team }) {
        Decision::Allow => Ok(()),
        Decision::Deny(reason) => Err(ApiError::forbidden(format!(
            "{reason}; the notification channels of team {team:?} are managed by its lead or an admin"
        ))),
    }
}

fn kind_of(record: &ChannelRecord) -> String {
    serde_json::from_str::<serde_json::Value>(&record.config)
        .ok()
        .and_then(|config| config["kind"].as_str().map(str::to_owned))
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

/// The channel `id` of `team`, if it is in use.
async fn channel_of(state: &AppState, team: &str, id: i64) -> Result<ChannelRecord, ApiError> {
    state
        .store
        .channels(Some(team), false)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "team {team:?} has no channel {id}; `ferry channel list {team}` shows its channels"
            ))
        })
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
    existing_team(&state, &team).await?;
    caller.require(Action::ViewTeam { team: &team })?;
    let channels = state.store.channels(Some(&team), false).await?;
    Ok(Json(channels.into_iter().map(channel_json).collect()))
}

/// Adds a notification channel to a team (its lead or an admin): a signed webhook or
/// e-mail over SMTP. The channel is checked before it is stored.
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
    existing_team(&state, &team).await?;
    require_manage(&caller, &team)?;
    let channel = match request {
        AddChannel::Webhook { url, secret } => Channel::Webhook { url, secret },
        AddChannel::Email { smtp, from, to } => Channel::Email { smtp, from, to },
    };
    channel
        .validate()
        .map_err(|bad| ApiError::invalid(format!("the channel is not valid: {bad}")))?;
    let description = channel.describe();
    let kind = match &channel {
        Channel::Webhook { .. } => "webhook",
        Channel::Email { .. } => "email",
    };
    let record = caller.audit(
        AuditAction::ChannelAdd(audit_event::ChannelAdd {
            team: team.clone(),
            kind: kind.to_owned(),
            description: description.clone(),
        }),
        String::new(),
        None,
    );
    let config = serde_json::to_string(&channel)
        .map_err(|e| ApiError::internal(format!("cannot encode the channel: {e}")))?;
    let added = state
        .store
        .add_channel(
            NewChannel {
                team: team.clone(),
                config,
                description,
                created_by: caller.user.name.clone(),
                created_ms: caller.now_ms(),
            },
            record,
        )
        .await?;
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
    existing_team(&state, &team).await?;
    require_manage(&caller, &team)?;
    let channel = channel_of(&state, &team, id).await?;
    let record = caller.audit(
        AuditAction::ChannelRemove(audit_event::ChannelRemove {
            team: team.clone(),
            channel: id,
            description: channel.description.clone(),
        }),
        format!("channel/{id}"),
        None,
    );
    state
        .store
        .remove_channel(&team, id, caller.now_ms(), record)
        .await?;
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
    existing_team(&state, &team).await?;
    require_manage(&caller, &team)?;
    let channel = channel_of(&state, &team, id).await?;
    let now = caller.now_ms();
    let message = notifier::test_message(&team, &channel, &caller.user.name, now);
    let record = caller.audit(
        AuditAction::ChannelTest(audit_event::ChannelTest {
            team: team.clone(),
            channel: id,
            description: channel.description.clone(),
            message: message.id.clone(),
        }),
        format!("channel/{id}"),
        None,
    );
    let delivery = NewDelivery {
        channel_id: id,
        team: team.clone(),
        event: notifier::TEST_EVENT.to_owned(),
        audit_seq: None,
        message: serde_json::to_string(&message)
            .map_err(|e| ApiError::internal(format!("cannot encode the message: {e}")))?,
        created_ms: now,
    };
    let queued = state.store.queue_delivery(delivery, record).await?;
    notifier::wake();
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
    existing_team(&state, &team).await?;
    caller.require(Action::ViewTeam { team: &team })?;
    let limit = query.limit.unwrap_or(DEFAULT_DELIVERIES);
    if limit == 0 || limit > MAX_DELIVERIES {
        return Err(ApiError::invalid(format!(
            "limit {limit} is out of range; ask for 1 to {MAX_DELIVERIES} deliveries"
        )));
    }
    let deliveries = state.store.deliveries(&team, limit).await?;
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
    existing_team(&state, &team).await?;
    caller.require(Action::ViewTeam { team: &team })?;
    match state.store.delivery(id).await? {
        Some(delivery) if delivery.team == team => Ok(Json(delivery_json(delivery))),
        _ => Err(ApiError::not_found(format!(
            "team {team:?} has no delivery {id}; `ferry channel deliveries {team}` lists them"
        ))),
    }
}
