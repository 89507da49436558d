//! The messages the notifier sends: the words of each notifiable audit action, and the test
//! message of `ferry channel test`.

use ferry_domain::audit::AuditEvent;
use ferry_domain::audit_event::{AuditAction, DeploymentRequested, RequestedChange};
use ferry_domain::deployment::{Kind, Status};
use ferry_domain::support::BackportMode;
use ferry_notify::Message;
use ferry_store::ChannelRecord;
use serde_json::{json, Map, Value};

use super::TEST_EVENT;
use crate::views::rfc3339;

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

/// The message telling `team` about a notifiable audit event, `action` as read from it.
pub fn event_message(event: &AuditEvent, action: &AuditAction, team: &str, now_ms: i64) -> Message {
    let r = &event.record;
    let app = r.app.as_deref().unwrap_or("-");
    let (headline, lines) = describe(action, app, &r.actor, &r.subject);
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
        event.seq,
        action.name()
    ));
    let mut data = match action.details() {
        Value::Object(map) => map,
        other => Map::from_iter([("details".to_owned(), other)]),
    };
    data.insert("team".to_owned(), json!(team));
    data.insert("app".to_owned(), json!(r.app));
    data.insert("actor".to_owned(), json!(r.actor));
    data.insert("at".to_owned(), json!(at));
    data.insert("seq".to_owned(), json!(event.seq));
    Message {
        id: message_id(),
        event: action.name().to_owned(),
        subject: one_line(&format!("[ferry] {headline}")),
        text,
        data: Value::Object(data),
        sent_at_ms: now_ms,
    }
}

/// The text, if there is any.
fn non_empty(text: &str) -> Option<&str> {
    Some(text).filter(|t| !t.is_empty())
}

/// The number at the end of a subject like `incident/7`.
fn subject_id(subject: &str, kind: &str) -> Option<String> {
    subject
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// `text: title`, or `text` for an incident without a title.
fn with_title(text: String, title: &str) -> String {
    match non_empty(title) {
        Some(title) => format!("{text}: {title}"),
        None => text,
    }
}

/// Where people read more about an incident.
fn show_incident(id: &str) -> String {
    format!("Details: `ferry incident show {id}`")
}

/// Subject and body lines for people, for each notifiable action.
fn describe(action: &AuditAction, app: &str, actor: &str, subject: &str) -> (String, Vec<String>) {
    use AuditAction as A;
    match action {
        A::IncidentOpen(d) => {
            // The store names the incident in the subject: its id is not known before.
            let incident = subject_id(subject, "incident");
            let severity = d.severity;
            let env = non_empty(&d.env)
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            let name = match &incident {
                Some(id) => format!("{severity} incident {id}"),
                None => format!("{severity} incident"),
            };
            let assignee = d
                .assignee
                .as_deref()
                .and_then(non_empty)
                .unwrap_or("the team's leads");
            let mut lines = vec![format!("Assigned to: {assignee}")];
            lines.push(format!("Support path: {}", d.path));
            if let Some(base) = d.base_version.as_deref().and_then(non_empty) {
                lines.push(format!("Production runs: {base}"));
            }
            lines.extend(incident.as_deref().map(show_incident));
            (with_title(format!("{name} on {app}{env}"), &d.title), lines)
        }
        A::IncidentEscalate(d) => {
            let to = match (
                d.assignee.as_deref().and_then(non_empty),
                non_empty(&d.team),
            ) {
                (Some(assignee), _) => assignee.to_owned(),
                (None, Some(team)) => format!("the leads of team {team}"),
                (None, None) => "the team's leads".to_owned(),
            };
            let severity = format!("{} ", d.severity);
            let lines = vec![
                format!(
                    "Nobody acknowledged it in time; it is now {to}'s (escalation level {}).",
                    d.level
                ),
                show_incident(&d.incident.to_string()),
            ];
            (
                with_title(
                    format!(
                        "{severity}incident {} on {app} escalated to {to}",
                        d.incident
                    ),
                    &d.title,
                ),
                lines,
            )
        }
        A::IncidentAck(d) | A::IncidentResolve(d) => {
            let verb = match action {
                A::IncidentAck(_) => "acknowledged",
                _ => "resolved",
            };
            let lines = d
                .note
                .as_deref()
                .and_then(non_empty)
                .map(|note| format!("Note: {note}"))
                .into_iter()
                .chain([show_incident(&d.incident.to_string())])
                .collect();
            (
                with_title(
                    format!("incident {} on {app} {verb} by {actor}", d.incident),
                    &d.title,
                ),
                lines,
            )
        }
        A::DeploymentBreakGlass(d) | A::DeploymentOverrideGuard(d) => {
            describe_override(d, matches!(action, A::DeploymentBreakGlass(_)), app, actor)
        }
        A::BackportOpen(d) => {
            let hotfix = non_empty(&d.hotfix_version).unwrap_or("a hotfix");
            let todo = match d.mode {
                BackportMode::Merge => "merge the fix into dev's version",
                BackportMode::Backport => "backport the fix to dev",
            };
            let mut lines = Vec::new();
            if let Some(base) = non_empty(&d.base_version) {
                lines.push(format!("Hotfix of: {base}"));
            }
            if let Some(incident) = d.incident {
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
        A::BackportWaive(d) => {
            let hotfix = non_empty(&d.hotfix_version)
                .map(|v| format!(" (hotfix {v})"))
                .unwrap_or_default();
            let reason = non_empty(&d.reason)
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            (
                format!(
                    "backport {} of {app}{hotfix} waived by {actor}{reason}",
                    d.backport
                ),
                Vec::new(),
            )
        }
        A::DriftDetected(d) => {
            let target = subject.strip_prefix("target/").unwrap_or(subject);
            let paths = match d.paths {
                1 => "1 path differs".to_owned(),
                n => format!("{n} paths differ"),
            };
            let mut lines: Vec<String> = d
                .examples
                .iter()
                .map(|e| format!("  {} ({})", e.path, e.change))
                .collect();
            if d.paths > d.examples.len() as u64 {
                lines.push(format!("  and {} more", d.paths - d.examples.len() as u64));
            }
            lines.push(format!(
                "Someone changed files on the target by hand. `ferry drift {app} --env {}` lists them; `ferry drift capture {target} {app} --as VERSION` keeps them as a hotfix release.",
                d.env
            ));
            (
                format!(
                    "drift on {target} ({}): {app} {} was changed by hand, {paths}",
                    d.env, d.version
                ),
                lines,
            )
        }
        A::ConfigReveal(d) => {
            let keys: Vec<&str> = d.keys.iter().map(|k| k.as_str()).collect();
            (
                format!(
                    "{actor} read back the secrets of {app} in {} (revision {}): {}",
                    d.env,
                    d.revision,
                    keys.join(", ")
                ),
                vec![format!(
                    "If that was not expected, change them: `ferry config set {app} --env {} --secret KEY`",
                    d.env
                )],
            )
        }
        A::DeploymentCancel(d) => {
            let id = subject_id(subject, "deployment");
            let what = id.as_deref().map_or_else(
                || "a deployment".to_owned(),
                |id| format!("deployment {id}"),
            );
            let stopped = match d.was {
                Status::AwaitingApproval => "It was awaiting approval: nothing was switched.",
                _ => "Targets not switched yet stay as they were; switched targets go back to their previous release.",
            };
            let mut lines = vec![stopped.to_owned()];
            lines.extend(id.map(|id| format!("Details: `ferry deployment show {id}`")));
            (
                format!(
                    "{what} of {app} {} to {} cancelled by {actor}: {}",
                    d.version, d.env, d.reason
                ),
                lines,
            )
        }
        A::DeploymentDeploy(d) if d.skip_backup.is_some() => (
            format!(
                "{app} {} deployed to {} by {actor} without backing up its data first: {}",
                d.change.version,
                d.env,
                d.skip_backup.as_deref().unwrap_or_default()
            ),
            vec![format!(
                "Take one now: `ferry backup create {app} --env {}`",
                d.env
            )],
        ),
        other => (format!("{} on {app} by {actor}", other.name()), Vec::new()),
    }
}

/// A deployment or rollback that overrode policy: with break-glass, or past the regression
/// guard.
fn describe_override(
    requested: &DeploymentRequested<RequestedChange>,
    break_glass: bool,
    app: &str,
    actor: &str,
) -> (String, Vec<String>) {
    let (version, requested_reason) = match &requested.change {
        RequestedChange::Deploy(change) => (&change.version, &change.reason),
        RequestedChange::Rollback(change) => (&change.to, &change.reason),
    };
    let version = non_empty(version).unwrap_or("a release");
    let env = non_empty(&requested.env).unwrap_or("an environment");
    let glass = requested.break_glass.as_ref();
    let what = match glass.map(|g| g.kind) {
        Some(Kind::Rollback) => format!("rolled {app} back to {version} in {env}"),
        Some(Kind::Stage) => format!("staged {app} {version} on the targets of {env}"),
        _ => format!("deployed {app} {version} to {env}"),
    };
    // The break-glass reason as policy accepted it (trimmed), else the request's.
    let reason = glass
        .map(|g| g.reason.as_str())
        .or_else(|| requested_reason.as_deref().and_then(non_empty));
    let mut lines = Vec::new();
    let headline = if break_glass {
        if let Some(summary) = glass.and_then(|g| non_empty(&g.summary)) {
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
    if let Some(reason) = reason {
        lines.push(format!("Reason: {reason}"));
    }
    let headline = match reason {
        Some(reason) => format!("{headline}: {reason}"),
        None => headline,
    };
    (headline, lines)
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

    /// The message of an event whose details are read as the notifier reads them.
    fn event_message(event: &AuditEvent, team: &str, now_ms: i64) -> Message {
        let action = AuditAction::parse(&event.record).expect("the event reads");
        super::event_message(event, &action, team, now_ms)
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
    fn a_cancel_says_which_deployment_who_and_why() {
        let cancelled = event_message(
            &event(
                "deployment.cancel",
                "deployment/12",
                json!({"version": "1.0.1", "env": "prd", "reason": "wrong build",
                    "was": "running", "team": "shop"}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            cancelled.subject,
            "[ferry] deployment 12 of shop-web 1.0.1 to prd cancelled by dana: wrong build"
        );
        assert!(
            cancelled.text.contains("switched targets go back")
                && cancelled.text.contains("`ferry deployment show 12`"),
            "{}",
            cancelled.text
        );
    }

    #[test]
    fn a_skipped_backup_says_who_skipped_it_and_why() {
        let skipped = event_message(
            &event(
                "deployment.deploy",
                "deployment/4",
                json!({"version": "1.0.1", "env": "prd", "strategy": null, "reason": null,
                    "allow_downgrade": false, "team": "shop", "skip_backup": "disk full"}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            skipped.subject,
            "[ferry] shop-web 1.0.1 deployed to prd by dana without backing up its data first: disk full"
        );
        assert!(
            skipped
                .text
                .contains("`ferry backup create shop-web --env prd`"),
            "{}",
            skipped.text
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
    fn drift_says_where_what_and_what_to_do() {
        let drift = event_message(
            &event(
                "drift.detected",
                "target/prd-1",
                json!({"env": "prd", "version": "1.0.0", "paths": 7, "team": "shop",
                    "examples": [{"path": "index.php", "change": "content"},
                        {"path": "debug.php", "change": "added"}]}),
            ),
            "shop",
            5,
        );
        assert_eq!(
            drift.subject,
            "[ferry] drift on prd-1 (prd): shop-web 1.0.0 was changed by hand, 7 paths differ"
        );
        for line in [
            "  index.php (content)",
            "  debug.php (added)",
            "  and 5 more",
            "`ferry drift shop-web --env prd`",
        ] {
            assert!(drift.text.contains(line), "{line}: {}", drift.text);
        }
    }
}
