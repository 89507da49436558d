//! Where a team's notifications go (its channels) and what became of each one (its
//! deliveries).

use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::permission::Action;
use ferry_notify::Channel;
use ferry_store::{ChannelRecord, DeliveryRecord, NewChannel, NewDelivery};

use super::access::existing_team;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::notifier;
use crate::state::AppState;

/// Deliveries listed when no limit is given.
const DEFAULT_DELIVERIES: u32 = 50;
/// Deliveries listed at most.
const MAX_DELIVERIES: u32 = 1000;

/// Refuses unless `team` exists and the caller leads it or is an admin.
async fn require_manage(state: &AppState, caller: &Caller, team: &str) -> ServiceResult<()> {
    existing_team(state, team).await?;
    caller
        .require(Action::ManageTeamRoles { team })
        .map_err(|denied| {
            ServiceError::forbidden(format!(
            "{}; the notification channels of team {team:?} are managed by its lead or an admin",
            denied.message
        ))
        })
}

/// Refuses unless `team` exists and the caller can see it.
async fn require_view(state: &AppState, caller: &Caller, team: &str) -> ServiceResult<()> {
    existing_team(state, team).await?;
    caller.require(Action::ViewTeam { team })
}

/// The channel `id` of `team`, if it is in use.
async fn channel_of(state: &AppState, team: &str, id: i64) -> ServiceResult<ChannelRecord> {
    state
        .store
        .channels(Some(team), false)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "team {team:?} has no channel {id}; `ferry channel list {team}` shows its channels"
            ))
        })
}

/// The channels of a team in use (anyone who can see the team).
pub async fn list(
    state: &AppState,
    caller: &Caller,
    team: &str,
) -> ServiceResult<Vec<ChannelRecord>> {
    require_view(state, caller, team).await?;
    Ok(state.store.channels(Some(team), false).await?)
}

/// Adds a channel to a team (its lead or an admin); the channel is checked before it is
/// stored. Only an admin lets a webhook reach loopback, link-local and private addresses:
/// from there a webhook reaches the server itself and its network.
pub async fn add(
    state: &AppState,
    caller: &Caller,
    team: &str,
    channel: Channel,
) -> ServiceResult<ChannelRecord> {
    require_manage(state, caller, team).await?;
    let allow_private = matches!(
        channel,
        Channel::Webhook {
            allow_private: true,
            ..
        }
    );
    if allow_private {
        caller.require(Action::Administer).map_err(|denied| {
            ServiceError::forbidden(format!(
                "{}; only an admin may let a webhook reach loopback, link-local and private addresses (--allow-private)",
                denied.message
            ))
        })?;
    }
    channel
        .validate()
        .map_err(|bad| ServiceError::invalid(format!("the channel is not valid: {bad}")))?;
    let description = channel.describe();
    let record = caller.audit(
        AuditAction::ChannelAdd(audit_event::ChannelAdd {
            team: team.to_owned(),
            kind: channel.kind().to_owned(),
            description: description.clone(),
            allow_private,
        }),
        String::new(),
        None,
    );
    let config = serde_json::to_string(&channel)
        .map_err(|e| ServiceError::internal(format!("cannot encode the channel: {e}")))?;
    Ok(state
        .store
        .add_channel(
            NewChannel {
                team: team.to_owned(),
                config,
                description,
                created_by: caller.user.name.clone(),
                created_ms: caller.now_ms(),
            },
            record,
        )
        .await?)
}

/// Removes a channel (the team's lead or an admin). Its delivery log stays; deliveries
/// still pending fail.
pub async fn remove(state: &AppState, caller: &Caller, team: &str, id: i64) -> ServiceResult<()> {
    require_manage(state, caller, team).await?;
    let channel = channel_of(state, team, id).await?;
    let record = caller.audit(
        AuditAction::ChannelRemove(audit_event::ChannelRemove {
            team: team.to_owned(),
            channel: id,
            description: channel.description,
        }),
        format!("channel/{id}"),
        None,
    );
    Ok(state
        .store
        .remove_channel(team, id, caller.now_ms(), record)
        .await?)
}

/// Queues a test message to one channel of a team (its lead or an admin); the notifier
/// sends it with retries like any other.
pub async fn test(
    state: &AppState,
    caller: &Caller,
    team: &str,
    id: i64,
) -> ServiceResult<DeliveryRecord> {
    require_manage(state, caller, team).await?;
    let channel = channel_of(state, team, id).await?;
    let now = caller.now_ms();
    let message = notifier::test_message(team, &channel, &caller.user.name, now);
    let record = caller.audit(
        AuditAction::ChannelTest(audit_event::ChannelTest {
            team: team.to_owned(),
            channel: id,
            description: channel.description.clone(),
            message: message.id.clone(),
        }),
        format!("channel/{id}"),
        None,
    );
    let delivery = NewDelivery {
        channel_id: id,
        team: team.to_owned(),
        event: notifier::TEST_EVENT.to_owned(),
        audit_seq: None,
        message: serde_json::to_string(&message)
            .map_err(|e| ServiceError::internal(format!("cannot encode the message: {e}")))?,
        created_ms: now,
    };
    let queued = state.store.queue_delivery(delivery, record).await?;
    notifier::wake();
    Ok(queued)
}

/// A team's newest deliveries, newest first (anyone who can see the team): `limit` of them,
/// 50 when not given.
pub async fn deliveries(
    state: &AppState,
    caller: &Caller,
    team: &str,
    limit: Option<u32>,
) -> ServiceResult<Vec<DeliveryRecord>> {
    require_view(state, caller, team).await?;
    let limit = limit.unwrap_or(DEFAULT_DELIVERIES);
    if limit == 0 || limit > MAX_DELIVERIES {
        return Err(ServiceError::invalid(format!(
            "limit {limit} is out of range; ask for 1 to {MAX_DELIVERIES} deliveries"
        )));
    }
    Ok(state.store.deliveries(team, limit).await?)
}

/// One delivery of a team (anyone who can see the team).
pub async fn delivery(
    state: &AppState,
    caller: &Caller,
    team: &str,
    id: i64,
) -> ServiceResult<DeliveryRecord> {
    require_view(state, caller, team).await?;
    match state.store.delivery(id).await? {
        Some(delivery) if delivery.team == team => Ok(delivery),
        _ => Err(ServiceError::not_found(format!(
            "team {team:?} has no delivery {id}; `ferry channel deliveries {team}` lists them"
        ))),
    }
}
