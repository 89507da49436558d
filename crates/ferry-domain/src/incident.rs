//! Incidents: a production problem's severity and the life it goes through.
//!
//! An incident is opened, then acknowledged by the person it was routed to, then resolved.
//! Acknowledging is optional: whoever fixes an unacknowledged incident may resolve it at
//! once. Nothing goes backwards: a resolved incident stays resolved, and a problem that comes
//! back is a new incident (its own severity, path and escalation clock), which keeps the
//! history of each one honest.
//!
//! Only a critical incident in production takes the hotfix path and escalates when nobody
//! acknowledges it (see `crate::support` and `crate::rotation`).

use crate::vocabulary::vocabulary;

vocabulary! {
    /// How bad a production problem is, as the person opening the incident judges it.
    pub enum Severity ("severity") {
        /// Users cannot work: it takes the hotfix path and escalates until acknowledged.
        Critical = "critical",
        /// Serious, but it can wait for the normal product path.
        High = "high",
        /// A real problem with a workaround.
        Medium = "medium",
        /// A nuisance.
        Low = "low",
    }
}

impl Severity {
    /// Whether the incident takes the hotfix path and escalates.
    pub fn is_critical(self) -> bool {
        self == Severity::Critical
    }
}

vocabulary! {
    /// Where an incident is in its life: open → acknowledged → resolved (acknowledging may be
    /// skipped).
    pub enum IncidentStatus ("incident status") {
        /// Opened; nobody has said they are on it yet (a critical one escalates).
        Open = "open",
        /// The assignee said they are on it; escalation stops.
        Acknowledged = "acknowledged",
        /// Fixed; final.
        Resolved = "resolved",
    }
}

/// A change of status that is refused because the incident is already past it. Nothing
/// changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IncidentRefusal {
    /// `ferry incident ack` on an incident someone already acknowledged.
    #[error(
        "incident {id} is already acknowledged: nothing to do; resolve it with `ferry incident \
         resolve {id}` once the problem is fixed"
    )]
    AlreadyAcknowledged {
        /// The incident.
        id: i64,
    },
    /// `ferry incident ack` on a resolved incident.
    #[error(
        "incident {id} is already resolved and cannot be acknowledged: open a new incident with \
         `ferry incident open` if the problem is back"
    )]
    AckResolved {
        /// The incident.
        id: i64,
    },
    /// `ferry incident resolve` on a resolved incident.
    #[error(
        "incident {id} is already resolved: nothing to do; open a new incident with `ferry \
         incident open` if the problem is back"
    )]
    AlreadyResolved {
        /// The incident.
        id: i64,
    },
}

impl IncidentRefusal {
    /// The incident the refusal is about.
    pub fn id(&self) -> i64 {
        match self {
            IncidentRefusal::AlreadyAcknowledged { id }
            | IncidentRefusal::AckResolved { id }
            | IncidentRefusal::AlreadyResolved { id } => *id,
        }
    }

    /// The status that made the change pointless.
    pub fn status(&self) -> IncidentStatus {
        match self {
            IncidentRefusal::AlreadyAcknowledged { .. } => IncidentStatus::Acknowledged,
            IncidentRefusal::AckResolved { .. } | IncidentRefusal::AlreadyResolved { .. } => {
                IncidentStatus::Resolved
            }
        }
    }
}

/// Whether incident `id`, now `status`, may be acknowledged: only an open one may.
pub fn check_ack(id: i64, status: IncidentStatus) -> Result<(), IncidentRefusal> {
    match status {
        IncidentStatus::Open => Ok(()),
        IncidentStatus::Acknowledged => Err(IncidentRefusal::AlreadyAcknowledged { id }),
        IncidentStatus::Resolved => Err(IncidentRefusal::AckResolved { id }),
    }
}

/// Whether incident `id`, now `status`, may be resolved: an open or acknowledged one may
/// (acknowledging first is not required).
pub fn check_resolve(id: i64, status: IncidentStatus) -> Result<(), IncidentRefusal> {
    match status {
        IncidentStatus::Open | IncidentStatus::Acknowledged => Ok(()),
        IncidentStatus::Resolved => Err(IncidentRefusal::AlreadyResolved { id }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_parse_and_print() {
        // (text, parsed, critical?)
        let cases = [
            ("critical", Some(Severity::Critical), true),
            ("high", Some(Severity::High), false),
            ("medium", Some(Severity::Medium), false),
            ("low", Some(Severity::Low), false),
            ("Critical", None, false),
            ("CRITICAL", None, false),
            (" critical", None, false),
            ("critical ", None, false),
            ("crit", None, false),
            ("urgent", None, false),
            ("", None, false),
        ];
        for (text, expected, critical) in cases {
            let parsed = Severity::parse(text).ok();
            assert_eq!(parsed, expected, "{text:?}");
            assert_eq!(text.parse::<Severity>().ok(), expected, "{text:?}");
            if let Some(severity) = parsed {
                assert_eq!(severity.as_str(), text);
                assert_eq!(severity.to_string(), text);
                assert_eq!(severity.is_critical(), critical, "{text:?}");
            }
        }
    }

    #[test]
    fn only_critical_is_critical() {
        let critical: Vec<Severity> = Severity::ALL
            .iter()
            .copied()
            .filter(|severity| severity.is_critical())
            .collect();
        assert_eq!(critical, [Severity::Critical]);
    }

    #[test]
    fn severity_refusal_lists_the_accepted_values() {
        assert_eq!(
            Severity::parse("urgent").unwrap_err().to_string(),
            "unknown severity \"urgent\": use critical, high, medium or low"
        );
    }

    #[test]
    fn statuses_parse_and_print() {
        let cases = [
            ("open", Some(IncidentStatus::Open)),
            ("acknowledged", Some(IncidentStatus::Acknowledged)),
            ("resolved", Some(IncidentStatus::Resolved)),
            ("ack", None),
            ("closed", None),
            ("Open", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = IncidentStatus::parse(text).ok();
            assert_eq!(parsed, expected, "{text:?}");
            assert_eq!(text.parse::<IncidentStatus>().ok(), expected, "{text:?}");
            if let Some(status) = parsed {
                assert_eq!(status.as_str(), text);
                assert_eq!(status.to_string(), text);
            }
        }
        assert_eq!(
            IncidentStatus::parse("closed").unwrap_err().to_string(),
            "unknown incident status \"closed\": use open, acknowledged or resolved"
        );
    }

    #[test]
    fn transitions() {
        use IncidentStatus::*;
        // (status, ack allowed?, resolve allowed?)
        let cases = [
            (Open, true, true),
            (Acknowledged, false, true),
            (Resolved, false, false),
        ];
        for (status, ack, resolve) in cases {
            assert_eq!(check_ack(7, status).is_ok(), ack, "ack {status}");
            assert_eq!(
                check_resolve(7, status).is_ok(),
                resolve,
                "resolve {status}"
            );
        }
    }

    #[test]
    fn refusals_name_the_incident_its_status_and_what_to_do() {
        use IncidentStatus::*;
        // (refusal, status it names, message)
        let cases = [
            (
                check_ack(7, Acknowledged).unwrap_err(),
                Acknowledged,
                "incident 7 is already acknowledged: nothing to do; resolve it with `ferry \
                 incident resolve 7` once the problem is fixed",
            ),
            (
                check_ack(8, Resolved).unwrap_err(),
                Resolved,
                "incident 8 is already resolved and cannot be acknowledged: open a new incident \
                 with `ferry incident open` if the problem is back",
            ),
            (
                check_resolve(9, Resolved).unwrap_err(),
                Resolved,
                "incident 9 is already resolved: nothing to do; open a new incident with `ferry \
                 incident open` if the problem is back",
            ),
        ];
        for (refusal, status, message) in cases {
            assert_eq!(refusal.status(), status, "{refusal:?}");
            assert_eq!(refusal.to_string(), message);
            assert!(message.contains(&refusal.id().to_string()));
            assert!(message.contains(status.as_str()));
        }
    }
}
