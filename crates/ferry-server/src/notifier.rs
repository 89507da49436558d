//! The notifier: tells each team what happened to its applications, through its channels.
//!
//! The audit trail is the outbox. Every change commits with its audit event, so the notifier
//! reads the events after a durable cursor, turns each notifiable one into one delivery per
//! channel of the event's team, and moves the cursor, deliveries and cursor in one
//! transaction: no notification is lost when the server stops, and none is made twice. It
//! then sends the due deliveries, a few at a time, retrying with the backoff of
//! [`ferry_notify::retry_delay_ms`] until one succeeds, fails for good, or
//! [`ferry_notify::MAX_ATTEMPTS`] attempts were made. Retries are scheduled on the wall clock,
//! which every server sharing the database reads; one scheduled further ahead than any retry
//! ever is was scheduled before the clock was set back, and is sent now rather than waiting
//! out the jump. Delivery bookkeeping is not audited: it is no user's change.

use std::collections::HashMap;
use std::time::Duration;

use ferry_domain::audit::AuditEvent;
use ferry_domain::audit_event::{AuditAction, AuditKind};
use ferry_notify::{Channel, Message};
use ferry_store::{Attempt, ChannelRecord, DeliveryRecord, DueDeliveries, NewDelivery, StoreError};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::state::AppState;

mod message;

pub use message::{event_message, test_message};

/// The event of a delivery someone asked for with `ferry channel test`.
pub const TEST_EVENT: &str = AuditKind::ChannelTest.name();

/// How often the notifier looks for new audit events and due deliveries when nothing wakes
/// it: one indexed query each.
const POLL: Duration = Duration::from_millis(500);
/// Audit events read per step.
const EVENTS_PER_STEP: u32 = 200;
/// Deliveries being sent at once, at most.
const MAX_IN_FLIGHT: usize = 8;
/// How long a claimed delivery is left to its notifier: longer than any one attempt takes
/// (a webhook times out after 10 s, an SMTP step after 30 s).
const CLAIM_MS: i64 = 5 * 60 * 1000;

/// Wakes the notifier of this process (a delivery was queued, or an event written).
static WAKE: Notify = Notify::const_new();

/// Makes the notifier look for work now rather than at its next poll.
pub fn wake() {
    WAKE.notify_one();
}

/// Turns audit events into deliveries and sends them, for as long as the server runs.
pub async fn run(state: AppState) {
    let mut cursor: Option<i64> = None;
    let mut sending: JoinSet<()> = JoinSet::new();
    loop {
        match derive_deliveries(&state, cursor).await {
            Ok(at) => cursor = Some(at),
            Err(e) => {
                tracing::warn!("notifications: reading the audit trail: {e}; trying again");
                cursor = None;
            }
        }
        let room = MAX_IN_FLIGHT.saturating_sub(sending.len());
        if room > 0 {
            let now = state.clock.now_ms();
            let due = DueDeliveries {
                now_ms: now,
                latest_schedule_ms: now + ferry_notify::LONGEST_RETRY_DELAY_MS,
                claimed_until_ms: now + CLAIM_MS,
            };
            match state.store.claim_due_deliveries(due, room as u32).await {
                Ok(due) => {
                    for delivery in due {
                        sending.spawn(send(state.clone(), delivery));
                    }
                }
                Err(e) => tracing::warn!("notifications: finding due deliveries: {e}"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = WAKE.notified() => {}
            Some(_) = sending.join_next(), if !sending.is_empty() => {}
        }
    }
}

/// Turns every audit event after the cursor into deliveries, moving the cursor with them.
/// Returns the cursor reached.
async fn derive_deliveries(state: &AppState, cursor: Option<i64>) -> Result<i64, StoreError> {
    let mut cursor = match cursor {
        Some(at) => at,
        None => state.store.notification_cursor().await?,
    };
    loop {
        let events = state
            .store
            .audit_events_after(cursor, EVENTS_PER_STEP)
            .await?;
        let Some(last) = events.last() else {
            return Ok(cursor);
        };
        let to = last.seq;
        let mut channels: HashMap<String, Vec<ChannelRecord>> = HashMap::new();
        let mut deliveries = Vec::new();
        for event in &events {
            let action = match AuditAction::parse(&event.record) {
                Ok(action) => action,
                Err(error) => {
                    tracing::warn!(
                        "notifications: audit event {} is told to no team: {error}",
                        event.seq
                    );
                    continue;
                }
            };
            let Some(audience) = audience(&action) else {
                continue;
            };
            let Some(team) = team_of(state, event, audience).await? else {
                continue;
            };
            if !channels.contains_key(&team) {
                let found = match state.store.channels(Some(&team), false).await {
                    Ok(found) => found,
                    Err(StoreError::NotFound { .. }) => Vec::new(),
                    Err(e) => return Err(e),
                };
                channels.insert(team.clone(), found);
            }
            let now = state.clock.now_ms();
            for channel in &channels[&team] {
                let message = event_message(event, &action, &team, now);
                deliveries.push(NewDelivery {
                    channel_id: channel.id,
                    team: team.clone(),
                    event: event.record.action.clone(),
                    audit_seq: Some(event.seq),
                    message: serde_json::to_string(&message).expect("messages serialize"),
                    created_ms: now,
                });
            }
        }
        let queued = deliveries.len();
        match state
            .store
            .advance_notifications(cursor, to, deliveries)
            .await
        {
            Ok(()) => {
                if queued > 0 {
                    tracing::info!(
                        "notifications: queued {queued} deliveries for audit events {}..={to}",
                        cursor + 1
                    );
                }
                cursor = to;
            }
            // Another notifier moved the cursor, or a channel was removed meanwhile: start
            // again from where the cursor is now.
            Err(StoreError::Refused(why)) => {
                tracing::debug!("notifications: {why}; reading again");
                return state.store.notification_cursor().await;
            }
            Err(e) => return Err(e),
        }
        if events.len() < EVENTS_PER_STEP as usize {
            return Ok(cursor);
        }
    }
}

/// Which team hears about an action.
enum Audience<'a> {
    /// The team its details name.
    Named(&'a str),
    /// The team that owns its application: the details name none.
    AppOwner,
}

impl Audience<'_> {
    /// The team `team` names; an empty name (an application gone meanwhile) names none.
    fn named(team: &str) -> Audience<'_> {
        match team.is_empty() {
            true => Audience::AppOwner,
            false => Audience::Named(team),
        }
    }
}

/// Who hears about `action`; `None` for the actions no team is told about. Every action is
/// named here, so a new one cannot be left out by accident.
fn audience(action: &AuditAction) -> Option<Audience<'_>> {
    use AuditAction as A;
    match action {
        A::IncidentOpen(d) => Some(Audience::named(&d.team)),
        A::IncidentEscalate(d) => Some(Audience::named(&d.team)),
        A::IncidentAck(d) | A::IncidentResolve(d) => Some(Audience::named(&d.team)),
        A::DeploymentBreakGlass(d) | A::DeploymentOverrideGuard(d) => {
            Some(Audience::named(&d.team))
        }
        A::BackportOpen(d) => Some(
            d.team
                .as_deref()
                .map_or(Audience::AppOwner, Audience::named),
        ),
        A::BackportWaive(d) => Some(Audience::named(&d.team)),
        A::DeploymentCancel(d) => Some(Audience::named(&d.team)),
        A::DriftDetected(d) => Some(Audience::named(&d.team)),
        // Secrets read back: whoever owns them should know.
        A::ConfigReveal(d) => Some(Audience::named(&d.team)),
        // A protected environment deployed to without the backup that would undo it.
        A::DeploymentDeploy(d) if d.skip_backup.is_some() => Some(Audience::named(&d.team)),
        A::ServerBootstrap(_)
        | A::TeamCreate(_)
        | A::TeamMember(_)
        | A::TeamSupport(_)
        | A::UserCreate(_)
        | A::UserRotateToken(_)
        | A::UserSetPassword(_)
        | A::UserLogin(_)
        | A::UserLogout(_)
        | A::UserDisable(_)
        | A::UserEnable(_)
        | A::RoleSetLevel(_)
        | A::EnvironmentCreate(_)
        | A::EnvironmentDelete(_)
        | A::EnvironmentRename(_)
        | A::EnvironmentSetPolicy(_)
        | A::EnvironmentFreeze(_)
        | A::EnvironmentUnfreeze(_)
        | A::EnvironmentFreezeNow(_)
        | A::EnvironmentUnfreezeNow(_)
        | A::AppCreate(_)
        | A::AppGrant(_)
        | A::AppPlace(_)
        | A::AppKeep(_)
        | A::AppRunAs(_)
        | A::AppMaintainer(_)
        | A::AppBackups(_)
        | A::TargetEnrollToken(_)
        | A::TargetEnroll(_)
        | A::TargetRemove(_)
        | A::DriftCapture(_)
        | A::DriftCaptured(_)
        | A::DriftRevert(_)
        | A::ReleaseCreate(_)
        | A::ReleasePrune(_)
        | A::BackupRequest(_)
        | A::BackupCreate(_)
        | A::BackupRestore(_)
        | A::BackupPrune(_)
        | A::ChannelAdd(_)
        | A::ChannelRemove(_)
        | A::ChannelTest(_)
        | A::RouteSet(_)
        | A::RouteRemove(_)
        | A::IncidentRebase(_)
        | A::BackportDone(_)
        | A::DeploymentDeploy(_)
        | A::DeploymentStage(_)
        | A::DeploymentRollback(_)
        | A::DeploymentApprove(_)
        | A::DeploymentReject(_)
        | A::Refused(_)
        | A::DriftCheck(_)
        | A::ConfigChange(_)
        | A::ConfigReseal(_)
        | A::DeploymentFinish(_) => None,
    }
}

/// The team an event is told to.
async fn team_of(
    state: &AppState,
    event: &AuditEvent,
    audience: Audience<'_>,
) -> Result<Option<String>, StoreError> {
    match (audience, &event.record.app) {
        (Audience::Named(team), _) => Ok(Some(team.to_owned())),
        (Audience::AppOwner, Some(app)) => Ok(state.store.app(app).await?.map(|app| app.team)),
        (Audience::AppOwner, None) => Ok(None),
    }
}

/// Makes one attempt at a claimed delivery and records its outcome.
async fn send(state: AppState, delivery: DeliveryRecord) {
    let outcome = match prepare(&state, &delivery).await {
        Err(error) => Err(ferry_notify::DeliveryError {
            retryable: false,
            message: error,
        }),
        Ok((channel, message)) => ferry_notify::deliver(&channel, &message).await,
    };
    // One instant for the attempt and the retry it schedules: the log shows the backoff.
    let now = state.clock.now_ms();
    let attempts = delivery.attempts + 1;
    let attempt = match outcome {
        Ok(delivered) => Attempt::Delivered {
            detail: delivered.detail,
        },
        Err(e) if e.retryable => match ferry_notify::retry_delay_ms(attempts) {
            Some(delay_ms) => Attempt::Retry {
                error: e.message,
                next_attempt_ms: now + delay_ms,
            },
            None => Attempt::Failed {
                error: format!(
                    "{}; ferry gave up after {attempts} attempts, `ferry channel test` tries the channel again",
                    e.message
                ),
            },
        },
        Err(e) => Attempt::Failed { error: e.message },
    };
    match &attempt {
        Attempt::Delivered { detail } => tracing::info!(
            "notifications: delivery {} ({}) to channel {} delivered: {detail}",
            delivery.id,
            delivery.event,
            delivery.channel_id
        ),
        Attempt::Retry { error, .. } => tracing::warn!(
            "notifications: delivery {} to channel {} failed, will retry: {error}",
            delivery.id,
            delivery.channel_id
        ),
        Attempt::Failed { error } => tracing::warn!(
            "notifications: delivery {} to channel {} failed for good: {error}",
            delivery.id,
            delivery.channel_id
        ),
    }
    if let Err(e) = state.store.record_attempt(delivery.id, now, attempt).await {
        tracing::error!(
            "notifications: recording the attempt at delivery {}: {e}",
            delivery.id
        );
    }
}

/// The channel and message of a delivery, or why it cannot be sent at all.
async fn prepare(
    state: &AppState,
    delivery: &DeliveryRecord,
) -> Result<(Channel, Message), String> {
    let channels = state
        .store
        .channels(Some(&delivery.team), false)
        .await
        .map_err(|e| format!("reading the channel: {e}"))?;
    let record = channels
        .into_iter()
        .find(|c| c.id == delivery.channel_id)
        .ok_or_else(|| "the channel was removed before the message was delivered".to_owned())?;
    let channel: Channel = serde_json::from_str(&record.config).map_err(|e| {
        format!("the stored channel cannot be read ({e}); remove it and add it again")
    })?;
    let message: Message = serde_json::from_str(&delivery.message).map_err(|e| {
        format!("the stored message cannot be read ({e}); this is a bug in ferry, please report it")
    })?;
    Ok((channel, message))
}

#[cfg(test)]
mod tests {
    use ferry_domain::audit::AuditRecord;
    use serde_json::{json, Value};

    use super::*;

    /// The least each notifiable action can say: empty texts and nothing optional.
    fn least_details() -> Vec<AuditAction> {
        use ferry_domain::audit_event::*;
        use ferry_domain::incident::Severity;
        use ferry_domain::support::{BackportMode, SupportPath};
        let incident = IncidentChange {
            incident: 0,
            note: None,
            team: String::new(),
            title: String::new(),
        };
        let requested = DeploymentRequested {
            change: RequestedChange::Deploy(DeployChange {
                config: 0,
                version: String::new(),
                strategy: None,
                reason: None,
                allow_downgrade: false,
            }),
            env: String::new(),
            override_guard: None,
            review: Vec::new(),
            break_glass: None,
            team: String::new(),
            skipped_offline: Vec::new(),
            skip_backup: None,
        };
        vec![
            AuditAction::IncidentOpen(IncidentOpen {
                env: String::new(),
                severity: Severity::Low,
                title: String::new(),
                path: SupportPath::Backlog,
                team: String::new(),
                assignee: None,
                base_version: None,
            }),
            AuditAction::IncidentEscalate(IncidentEscalate {
                incident: 0,
                level: 0,
                assignee: None,
                team: String::new(),
                title: String::new(),
                severity: Severity::Low,
            }),
            AuditAction::IncidentAck(incident.clone()),
            AuditAction::IncidentResolve(incident),
            AuditAction::DeploymentBreakGlass(requested.clone()),
            AuditAction::DeploymentOverrideGuard(requested),
            AuditAction::DeploymentDeploy(DeploymentRequested {
                change: DeployChange {
                    config: 0,
                    version: String::new(),
                    strategy: None,
                    reason: None,
                    allow_downgrade: false,
                },
                env: String::new(),
                override_guard: None,
                review: Vec::new(),
                break_glass: None,
                team: String::new(),
                skipped_offline: Vec::new(),
                skip_backup: Some(String::new()),
            }),
            AuditAction::BackportOpen(BackportOpen {
                hotfix_version: String::new(),
                base_version: String::new(),
                incident: None,
                mode: BackportMode::Backport,
                team: None,
            }),
            AuditAction::BackportWaive(BackportWaive {
                backport: 0,
                hotfix_version: String::new(),
                reason: String::new(),
                team: String::new(),
            }),
            AuditAction::DeploymentCancel(DeploymentCancel {
                version: String::new(),
                env: String::new(),
                reason: String::new(),
                was: ferry_domain::deployment::Status::Running,
                team: String::new(),
            }),
        ]
    }

    #[test]
    fn every_notifiable_action_reads_well_without_details() {
        for action in least_details() {
            let name = action.name();
            assert!(
                matches!(audience(&action), Some(Audience::AppOwner)),
                "{name}: a team the details do not name is the application's"
            );
            let event = AuditEvent {
                seq: 41,
                record: action.record(1_800_000_000_000, "dana", String::new(), Some("shop-web")),
                prev_hash: String::new(),
                hash: String::new(),
            };
            let message = super::event_message(&event, &action, "shop", 5);
            assert!(message.subject.starts_with("[ferry] "), "{name}");
            assert!(
                message.subject.contains("shop-web"),
                "{name}: {}",
                message.subject
            );
            assert!(!message.text.is_empty());
            assert_eq!(message.data["team"], "shop");
        }
    }

    #[test]
    fn teams_hear_about_their_incidents_overrides_and_backports_only() {
        let heard = |action: &str, details: Value| {
            let record = AuditRecord {
                at_ms: 1_800_000_000_000,
                actor: "dana".into(),
                action: action.into(),
                subject: String::new(),
                app: Some("shop-web".into()),
                details: details.to_string(),
            };
            let action = AuditAction::parse(&record).unwrap();
            match audience(&action) {
                None => None,
                Some(Audience::Named(team)) => Some(team.to_owned()),
                Some(Audience::AppOwner) => Some("owner".to_owned()),
            }
        };
        let deploy = json!({"version": "1.1", "env": "prd", "strategy": null, "reason": null,
            "allow_downgrade": false, "team": "shop"});
        let backport = json!({"hotfix_version": "1.0.1", "base_version": "1.0.0",
            "incident": null, "mode": "backport", "team": null});
        let cases = [
            ("deployment.deploy", deploy.clone(), None),
            ("deployment.stage", deploy.clone(), None),
            ("deployment.override_guard", deploy, Some("shop")),
            ("backport.open", backport, Some("owner")),
            (
                "deployment.deploy",
                json!({"version": "1.1", "env": "prd", "strategy": null, "reason": null,
                    "allow_downgrade": false, "team": "shop", "skip_backup": "disk full"}),
                Some("shop"),
            ),
            (
                "backup.create",
                json!({"env": "prd", "target": "prd-1", "reason": "scheduled", "version": null,
                    "digest": "ab", "files": 1, "bytes": 1, "new_bytes": 1}),
                None,
            ),
            (
                "incident.ack",
                json!({"incident": 7, "note": null, "team": "ops", "title": "t"}),
                Some("ops"),
            ),
            ("team.create", json!({}), None),
            (
                "channel.test",
                json!({"team": "shop", "channel": 1, "description": "d", "message": "m"}),
                None,
            ),
        ];
        for (action, details, expected) in cases {
            assert_eq!(heard(action, details).as_deref(), expected, "{action}");
        }
    }
}
