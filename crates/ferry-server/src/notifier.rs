//! The notifier: tells each team what happened to its applications, through its channels.
//!
//! The audit trail is the outbox. Every change commits with its audit event, so the notifier
//! reads the events after a durable cursor, turns each notifiable one into one delivery per
//! channel of the event's team, and moves the cursor, deliveries and cursor in one
//! transaction: no notification is lost when the server stops, and none is made twice. It
//! then sends the due deliveries, a few at a time, retrying with the backoff of
//! [`ferry_notify::retry_delay_ms`] until one succeeds, fails for good, or
//! [`ferry_notify::MAX_ATTEMPTS`] attempts were made. Delivery bookkeeping is not audited:
//! it is no user's change.

use std::collections::HashMap;
use std::time::Duration;

use ferry_domain::audit::AuditEvent;
use ferry_notify::{Channel, Message};
use ferry_store::{Attempt, ChannelRecord, DeliveryRecord, NewDelivery, StoreError};
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::handlers::v1::rfc3339;
use crate::state::AppState;

/// The audit actions a team hears about.
pub const NOTIFIABLE: [&str; 8] = [
    "incident.open",
    "incident.escalate",
    "incident.ack",
    "incident.resolve",
    "deployment.break_glass",
    "deployment.override_guard",
    "backport.open",
    "backport.waive",
];

/// The event of a delivery someone asked for with `ferry channel test`.
pub const TEST_EVENT: &str = "channel.test";

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
            match state
                .store
                .claim_due_deliveries(now, now + CLAIM_MS, room as u32)
                .await
            {
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
            if !NOTIFIABLE.contains(&event.record.action.as_str()) {
                continue;
            }
            let Some(team) = team_of(state, event).await? else {
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
                let message = event_message(event, &team, now);
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

/// The team an event is for: its details' `team`, else the team owning its application.
async fn team_of(state: &AppState, event: &AuditEvent) -> Result<Option<String>, StoreError> {
    let details: Value = serde_json::from_str(&event.record.details).unwrap_or(Value::Null);
    if let Some(team) = details
        .get("team")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(team.to_owned()));
    }
    match &event.record.app {
        Some(app) => Ok(state.store.app(app).await?.map(|app| app.team)),
        None => Ok(None),
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

/// A new message id: 128 random bits, so receivers can drop duplicates across retries.
fn message_id() -> String {
    let mut random = [0u8; 16];
    // Without randomness, the time still makes ids unique enough for deduplication.
    if getrandom::fill(&mut random).is_err() {
        random[..16].copy_from_slice(
            &(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()))
            .to_le_bytes(),
        );
    }
    random.iter().map(|b| format!("{b:02x}")).collect()
}

/// The message `ferry channel test` sends to one channel.
pub fn test_message(team: &str, channel: &ChannelRecord, actor: &str, now_ms: i64) -> Message {
    let subject = format!("[ferry] test notification for team {team}");
    let text = format!(
        "This is a test of a notification channel of team {team}, sent by {actor} with \
         `ferry channel test {team} {}`.\n\nChannel: {}\nAt: {}\n\nIf you read this, \
         the channel works: ferry will tell team {team} about incidents, overrides of \
         its policy and backport obligations here.\n",
        channel.id,
        channel.description,
        rfc3339(now_ms)
    );
    Message {
        id: message_id(),
        event: TEST_EVENT.to_owned(),
        subject,
        text,
        data: json!({
            "team": team,
            "channel": channel.id,
            "actor": actor,
            "at": rfc3339(now_ms),
        }),
        sent_at_ms: now_ms,
    }
}

/// The message telling `team` about a notifiable audit event.
pub fn event_message(event: &AuditEvent, team: &str, now_ms: i64) -> Message {
    let r = &event.record;
    let details: Value = serde_json::from_str(&r.details).unwrap_or(Value::Null);
    let app = r.app.as_deref().unwrap_or("-");
    let (headline, lines) = describe(&r.action, app, &r.actor, &r.subject, &details);
    let at = rfc3339(r.at_ms);
    let mut text = format!("{headline}\n\n");
    if r.app.is_some() {
        text.push_str(&format!("Application: {app}\n"));
    }
    text.push_str(&format!("Team: {team}\nBy: {}\nAt: {at}\n", r.actor));
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!(
        "\nAudit event {} ({}); `ferry audit --app {app}` shows the history.\n",
        event.seq, r.action
    ));
    let mut data = match details {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => Map::from_iter([("details".to_owned(), other)]),
    };
    if data.get("team").is_none_or(Value::is_null) {
        data.insert("team".to_owned(), json!(team));
    }
    data.insert("app".to_owned(), json!(r.app));
    data.insert("actor".to_owned(), json!(r.actor));
    data.insert("at".to_owned(), json!(at));
    data.insert("seq".to_owned(), json!(event.seq));
    Message {
        id: message_id(),
        event: r.action.clone(),
        subject: one_line(&format!("[ferry] {headline}")),
        text,
        data: Value::Object(data),
        sent_at_ms: now_ms,
    }
}

/// A field of the details as text: strings as they are, numbers written out.
fn field(details: &Value, name: &str) -> Option<String> {
    match details.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The number at the end of a subject like `incident/7`.
fn subject_id(subject: &str, kind: &str) -> Option<String> {
    subject
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Subject and body lines for people, for each notifiable action.
fn describe(
    action: &str,
    app: &str,
    actor: &str,
    subject: &str,
    details: &Value,
) -> (String, Vec<String>) {
    let get = |name: &str| field(details, name);
    let or = |value: Option<String>, default: &str| value.unwrap_or_else(|| default.to_owned());
    let incident = get("incident").or_else(|| subject_id(subject, "incident"));
    let incident_name = match &incident {
        Some(id) => format!("incident {id}"),
        None => "an incident".to_owned(),
    };
    let title = get("title");
    let with_title = |text: String| match &title {
        Some(title) => format!("{text}: {title}"),
        None => text,
    };
    let show = incident
        .as_ref()
        .map(|id| format!("Details: `ferry incident show {id}`"));
    let note = get("note").map(|note| format!("Note: {note}"));
    match action {
        "incident.open" => {
            let severity = or(get("severity"), "new");
            let env = get("env").map(|e| format!(" ({e})")).unwrap_or_default();
            let name = match &incident {
                Some(id) => format!("{severity} incident {id}"),
                None => format!("{severity} incident"),
            };
            let assignee = or(get("assignee"), "the team's leads");
            let mut lines = vec![format!("Assigned to: {assignee}")];
            if let Some(path) = get("path") {
                lines.push(format!("Support path: {path}"));
            }
            if let Some(base) = get("base_version") {
                lines.push(format!("Production runs: {base}"));
            }
            lines.extend(show);
            (with_title(format!("{name} on {app}{env}")), lines)
        }
        "incident.escalate" => {
            let to = get("assignee").unwrap_or_else(|| match get("team") {
                Some(team) => format!("the leads of team {team}"),
                None => "the team's leads".to_owned(),
            });
            let severity = get("severity").map(|s| format!("{s} ")).unwrap_or_default();
            let mut lines = vec![format!(
                "Nobody acknowledged it in time; it is now {to}'s (escalation level {}).",
                or(get("level"), "?")
            )];
            lines.extend(show);
            (
                with_title(format!(
                    "{severity}{incident_name} on {app} escalated to {to}"
                )),
                lines,
            )
        }
        "incident.ack" | "incident.resolve" => {
            let verb = if action == "incident.ack" {
                "acknowledged"
            } else {
                "resolved"
            };
            let lines = note.into_iter().chain(show).collect();
            (
                with_title(format!("{incident_name} on {app} {verb} by {actor}")),
                lines,
            )
        }
        "deployment.break_glass" | "deployment.override_guard" => {
            let version = or(get("version").or_else(|| get("to")), "a release");
            let env = or(get("env"), "an environment");
            let glass = details.get("break_glass");
            let rollback =
                glass.and_then(|g| g.get("kind")).and_then(Value::as_str) == Some("rollback");
            let what = if rollback {
                format!("rolled {app} back to {version} in {env}")
            } else {
                format!("deployed {app} {version} to {env}")
            };
            let reason = glass
                .and_then(|g| g.get("reason"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| get("reason"));
            let mut lines = Vec::new();
            let headline = if action == "deployment.break_glass" {
                if let Some(summary) = glass.and_then(|g| field(g, "summary")) {
                    lines.push(format!("Overridden: {summary}"));
                }
                format!("break-glass: {actor} {what}")
            } else {
                lines.push(
                    "The release would undo a hotfix already shipped to production; the regression guard was overridden."
                        .to_owned(),
                );
                format!("regression guard overridden: {actor} {what}")
            };
            if let Some(reason) = &reason {
                lines.push(format!("Reason: {reason}"));
            }
            let headline = match reason {
                Some(reason) => format!("{headline}: {reason}"),
                None => headline,
            };
            (headline, lines)
        }
        "backport.open" => {
            let hotfix = or(get("hotfix_version"), "a hotfix");
            let todo = match get("mode").as_deref() {
                Some("merge") => "merge the fix into dev's version",
                _ => "backport the fix to dev",
            };
            let mut lines = Vec::new();
            if let Some(base) = get("base_version") {
                lines.push(format!("Hotfix of: {base}"));
            }
            if let Some(incident) = &incident {
                lines.push(format!("Incident: {incident}"));
            }
            lines.push(format!(
                "The obligation closes by itself when a dev release includes the fix; `ferry backport list {app}` shows it."
            ));
            (
                format!("hotfix {hotfix} of {app} reached production: {todo}"),
                lines,
            )
        }
        "backport.waive" => {
            let id = get("backport").or_else(|| subject_id(subject, "backport"));
            let name = match &id {
                Some(id) => format!("backport {id}"),
                None => "a backport obligation".to_owned(),
            };
            let hotfix = get("hotfix_version")
                .map(|v| format!(" (hotfix {v})"))
                .unwrap_or_default();
            let reason = get("reason").map(|r| format!(": {r}")).unwrap_or_default();
            (
                format!("{name} of {app}{hotfix} waived by {actor}{reason}"),
                Vec::new(),
            )
        }
        _ => (format!("{action} on {app} by {actor}"), Vec::new()),
    }
}

/// Text on one line (an e-mail subject must not hold line breaks).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_domain::audit::AuditRecord;

    fn event(action: &str, subject: &str, details: Value) -> AuditEvent {
        AuditEvent {
            seq: 41,
            record: AuditRecord {
                at_ms: 1_800_000_000_000,
                actor: "dana".into(),
                action: action.into(),
                subject: subject.into(),
                app: Some("shop-web".into()),
                details: details.to_string(),
            },
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn incident_subjects_say_what_where_and_how_bad() {
        let open = event_message(
            &event(
                "incident.open",
                "incident/7",
                json!({"env": "prd", "severity": "critical", "title": "checkout down",
                    "path": "hotfix-backport", "team": "shop", "assignee": "lee"}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            open.subject,
            "[ferry] critical incident 7 on shop-web (prd): checkout down"
        );
        assert!(open.text.contains("Assigned to: lee"), "{}", open.text);
        assert_eq!(open.event, "incident.open");
        assert_eq!(open.data["app"], "shop-web");
        assert_eq!(open.data["actor"], "dana");
        assert_eq!(open.data["seq"], 41);
        assert_eq!(open.data["at"], "2027-01-15T08:00:00Z");
        assert_eq!(open.data["severity"], "critical");
        assert_eq!(open.sent_at_ms, 5);

        let ack = event_message(
            &event(
                "incident.ack",
                "incident/7",
                json!({"incident": 7, "title": "checkout down", "team": "shop"}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            ack.subject,
            "[ferry] incident 7 on shop-web acknowledged by dana: checkout down"
        );
        let escalated = event_message(
            &event(
                "incident.escalate",
                "incident/7",
                json!({"incident": 7, "level": 1, "assignee": null, "team": "shop",
                    "title": "checkout down", "severity": "critical"}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            escalated.subject,
            "[ferry] critical incident 7 on shop-web escalated to the leads of team shop: checkout down"
        );
    }

    #[test]
    fn overrides_and_backports() {
        let glass = event_message(
            &event(
                "deployment.break_glass",
                "deployment/3",
                json!({"version": "1.0.1", "env": "prd", "team": "shop",
                    "break_glass": {"kind": "deploy", "reason": "outage\nnow", "summary": "s"}}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            glass.subject,
            "[ferry] break-glass: dana deployed shop-web 1.0.1 to prd: outage now"
        );
        assert!(!glass.subject.contains('\n'));
        let backport = event_message(
            &event(
                "backport.open",
                "release/shop-web/1.0.1",
                json!({"hotfix_version": "1.0.1", "base_version": "1.0.0", "mode": "merge",
                    "incident": 7, "team": null}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            backport.subject,
            "[ferry] hotfix 1.0.1 of shop-web reached production: merge the fix into dev's version"
        );
        assert_eq!(backport.data["team"], "shop", "the team it went to");
    }

    #[test]
    fn every_notifiable_action_reads_well_without_details() {
        for action in NOTIFIABLE {
            let message = event_message(&event(action, "", json!({})), "shop", 5);
            assert!(message.subject.starts_with("[ferry] "), "{action}");
            assert!(
                message.subject.contains("shop-web"),
                "{action}: {}",
                message.subject
            );
            assert!(!message.text.is_empty());
            assert_eq!(message.data["team"], "shop");
        }
    }
}
