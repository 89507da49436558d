//! Support rotations and escalation: who is on call, and who is told next when a critical
//! incident is not acknowledged.
//!
//! A rotation lists people in order; from its start each serves one shift in turn, and after
//! the last one the first serves again. Before the start the first member is on call, so a
//! rotation set up for next Monday already has someone to call today.
//!
//! A critical incident goes to the person on call when it was opened (level 0). Each time a
//! whole escalation period passes without an acknowledgement it climbs one level: the next
//! member of the rotation (level 1), then the team's leads (level 2, the last step). The
//! incident keeps the on-call of the moment it was opened, so a hand-over in the middle of
//! an incident does not change who answers for it.

use std::fmt;
use std::time::Duration;

use crate::duration::format_duration;
use crate::incident::Severity;
use crate::name::{validate_name, NameKind};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// The shortest shift a rotation may have.
pub const MIN_SHIFT_MS: i64 = MINUTE_MS;

/// The longest shift a rotation may have: 366 days.
pub const MAX_SHIFT_MS: i64 = 366 * DAY_MS;

/// How long a critical incident waits for an acknowledgement before it escalates, unless
/// the team sets another period.
pub const DEFAULT_ESCALATION_MS: i64 = 15 * 60 * 1000;

/// The last escalation level: the team's leads.
pub const MAX_ESCALATION_LEVEL: u32 = 2;

/// `ms` as people write durations, in the largest units: `1d2h`, `15m`, `90ms`.
fn format_ms(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) if ms > 0 => format_duration(Duration::from_millis(ms)),
        _ => format!("{ms}ms"),
    }
}

/// The people of a support team who take turns on call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// User names, in the order they serve.
    pub members: Vec<String>,
    /// How long each shift lasts.
    pub shift_ms: i64,
    /// When the first member's first shift starts.
    pub start_ms: i64,
}

/// A rotation that cannot be used as it is. Nothing changes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRotation {
    /// The member list is empty.
    #[error("a rotation needs at least one member: list the users who take turns on call")]
    NoMembers,
    /// A member is not a valid user name.
    #[error(
        "rotation member {member:?} is not a valid user name: use 1 to 63 characters from a-z, \
         0-9 and '-', starting with a letter or digit"
    )]
    BadMember {
        /// The member as given.
        member: String,
    },
    /// A member is listed more than once.
    #[error(
        "{member:?} is in the rotation more than once: list each member once, in the order \
         they take their shifts"
    )]
    Duplicate {
        /// The member listed twice.
        member: String,
    },
    /// The shift is shorter than a minute.
    #[error("a shift of {} is too short: make it at least 1m", format_ms(*shift_ms))]
    ShiftTooShort {
        /// The shift as given.
        shift_ms: i64,
    },
    /// The shift is longer than 366 days.
    #[error("a shift of {} is too long: make it at most 366d", format_ms(*shift_ms))]
    ShiftTooLong {
        /// The shift as given.
        shift_ms: i64,
    },
}

impl Rotation {
    /// Checks the rotation: at least one member, each a valid user name listed once, and a
    /// shift from one minute to 366 days.
    pub fn validate(&self) -> Result<(), BadRotation> {
        if self.members.is_empty() {
            return Err(BadRotation::NoMembers);
        }
        for (index, member) in self.members.iter().enumerate() {
            if validate_name(NameKind::User, member).is_err() {
                return Err(BadRotation::BadMember {
                    member: member.clone(),
                });
            }
            if self.members[..index].contains(member) {
                return Err(BadRotation::Duplicate {
                    member: member.clone(),
                });
            }
        }
        if self.shift_ms < MIN_SHIFT_MS {
            return Err(BadRotation::ShiftTooShort {
                shift_ms: self.shift_ms,
            });
        }
        if self.shift_ms > MAX_SHIFT_MS {
            return Err(BadRotation::ShiftTooLong {
                shift_ms: self.shift_ms,
            });
        }
        Ok(())
    }

    /// The number of the shift running at `now_ms`, counted from 0 at `start_ms` (0 before
    /// the start too). None when the rotation has no members or no positive shift.
    fn shift_number(&self, now_ms: i64) -> Option<i128> {
        if self.members.is_empty() || self.shift_ms <= 0 {
            return None;
        }
        // i128: the difference of two i64 times may not fit in an i64.
        let elapsed = i128::from(now_ms) - i128::from(self.start_ms);
        Some(elapsed.div_euclid(i128::from(self.shift_ms)).max(0))
    }

    /// The index in `members` of who is on call at `now_ms`: the first member before the
    /// start. None when the rotation has no members or no positive shift.
    pub fn on_call_index(&self, now_ms: i64) -> Option<usize> {
        let shift = self.shift_number(now_ms)?;
        let index = shift.rem_euclid(self.members.len() as i128);
        Some(index as usize)
    }

    /// Who is on call at `now_ms` (see [`Rotation::on_call_index`]).
    pub fn on_call(&self, now_ms: i64) -> Option<&str> {
        self.on_call_index(now_ms)
            .map(|index| self.members[index].as_str())
    }

    /// When the shift running at `now_ms` ends and the next member takes over (before the
    /// start: the end of the first shift). A time past the range of i64 is given as
    /// `i64::MAX`. None when the rotation has no members or no positive shift.
    pub fn hand_over_ms(&self, now_ms: i64) -> Option<i64> {
        let shift = self.shift_number(now_ms)?;
        let end = i128::from(self.start_ms) + (shift + 1) * i128::from(self.shift_ms);
        Some(i64::try_from(end).unwrap_or(i64::MAX))
    }
}

/// Who is told about an incident at some escalation level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Responder {
    /// One member of the rotation, by user name.
    Person(String),
    /// The team's leads (everyone with approve or more in production), the last step.
    Leads,
}

impl fmt::Display for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Responder::Person(name) => f.write_str(name),
            Responder::Leads => f.write_str("the team's leads"),
        }
    }
}

/// How many whole escalation periods of `escalate_after_ms` have passed since `opened_ms`:
/// 0 until the first period is over (and for a `now_ms` before the opening). A period that
/// is not positive is taken as [`DEFAULT_ESCALATION_MS`], so a bad setting cannot stop a
/// critical incident from escalating.
pub fn escalation_level(opened_ms: i64, now_ms: i64, escalate_after_ms: i64) -> u32 {
    let period = if escalate_after_ms > 0 {
        escalate_after_ms
    } else {
        DEFAULT_ESCALATION_MS
    };
    let elapsed = i128::from(now_ms) - i128::from(opened_ms);
    if elapsed <= 0 {
        return 0;
    }
    u32::try_from(elapsed / i128::from(period)).unwrap_or(u32::MAX)
}

/// Who answers for an incident opened at `opened_ms` once it has reached `level`: level 0
/// is the on-call at `opened_ms`, level 1 the member after them in rotation order, level 2
/// and above the team's leads. A rotation of one member has nobody after them, so level 1
/// is the leads already; a rotation with nobody in it leaves only the leads.
pub fn responder(rotation: &Rotation, opened_ms: i64, level: u32) -> Responder {
    let Some(index) = rotation.on_call_index(opened_ms) else {
        return Responder::Leads;
    };
    let size = rotation.members.len();
    match level {
        0 => Responder::Person(rotation.members[index].clone()),
        1 if size > 1 => Responder::Person(rotation.members[(index + 1) % size].clone()),
        _ => Responder::Leads,
    }
}

/// The level an incident must be escalated to now, if it must: only a critical incident
/// that nobody acknowledged and that is not resolved escalates, when the time since
/// `opened_ms` has reached a higher level (see [`escalation_level`], capped at
/// [`MAX_ESCALATION_LEVEL`]) than `current_level`, the level it was last escalated to. Several
/// missed periods jump straight to the level they reach (after a server outage, say).
pub fn due_escalation(
    severity: Severity,
    acknowledged: bool,
    resolved: bool,
    opened_ms: i64,
    now_ms: i64,
    escalate_after_ms: i64,
    current_level: u32,
) -> Option<u32> {
    if !severity.is_critical() || acknowledged || resolved {
        return None;
    }
    let level = escalation_level(opened_ms, now_ms, escalate_after_ms).min(MAX_ESCALATION_LEVEL);
    (level > current_level).then_some(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const MIN: i64 = 60_000;
    /// 2024-03-04 09:00 UTC, a Monday.
    const START: i64 = 1_709_542_800_000;

    fn rotation(members: &[&str], shift_ms: i64, start_ms: i64) -> Rotation {
        Rotation {
            members: members.iter().map(|m| m.to_string()).collect(),
            shift_ms,
            start_ms,
        }
    }

    #[test]
    fn valid_rotations() {
        let cases = [
            rotation(&["ana"], MIN, 0),
            rotation(&["ana", "bo"], 24 * HOUR, START),
            rotation(&["ana", "bo", "cy"], 7 * 24 * HOUR, -START),
            rotation(&["a-1", "0b"], MAX_SHIFT_MS, START),
            rotation(&["ana"], MIN, i64::MIN),
        ];
        for rotation in cases {
            assert_eq!(rotation.validate(), Ok(()), "{rotation:?}");
        }
    }

    #[test]
    fn invalid_rotations() {
        use BadRotation::*;
        let cases = [
            (rotation(&[], HOUR, START), NoMembers),
            (rotation(&[], 0, START), NoMembers),
            (
                rotation(&["ana", "ana"], HOUR, START),
                Duplicate {
                    member: "ana".into(),
                },
            ),
            (
                rotation(&["ana", "bo", "cy", "bo"], HOUR, START),
                Duplicate {
                    member: "bo".into(),
                },
            ),
            (
                rotation(&["ana", ""], HOUR, START),
                BadMember { member: "".into() },
            ),
            (
                rotation(&["Ana"], HOUR, START),
                BadMember {
                    member: "Ana".into(),
                },
            ),
            (
                rotation(&["ana", "bo b"], HOUR, START),
                BadMember {
                    member: "bo b".into(),
                },
            ),
            (
                rotation(&["ana"], MIN - 1, START),
                ShiftTooShort { shift_ms: MIN - 1 },
            ),
            (rotation(&["ana"], 0, START), ShiftTooShort { shift_ms: 0 }),
            (
                rotation(&["ana"], -HOUR, START),
                ShiftTooShort { shift_ms: -HOUR },
            ),
            (
                rotation(&["ana"], MAX_SHIFT_MS + 1, START),
                ShiftTooLong {
                    shift_ms: MAX_SHIFT_MS + 1,
                },
            ),
            (
                rotation(&["ana"], i64::MAX, START),
                ShiftTooLong { shift_ms: i64::MAX },
            ),
        ];
        for (rotation, expected) in cases {
            assert_eq!(rotation.validate(), Err(expected), "{rotation:?}");
        }
    }

    #[test]
    fn rotation_refusals_say_what_to_do() {
        let cases = [
            (
                BadRotation::NoMembers,
                "a rotation needs at least one member: list the users who take turns on call",
            ),
            (
                BadRotation::BadMember {
                    member: "Ana".into(),
                },
                "rotation member \"Ana\" is not a valid user name: use 1 to 63 characters from \
                 a-z, 0-9 and '-', starting with a letter or digit",
            ),
            (
                BadRotation::Duplicate {
                    member: "bo".into(),
                },
                "\"bo\" is in the rotation more than once: list each member once, in the order \
                 they take their shifts",
            ),
            (
                BadRotation::ShiftTooShort { shift_ms: 59_500 },
                "a shift of 59s500ms is too short: make it at least 1m",
            ),
            (
                BadRotation::ShiftTooShort { shift_ms: 0 },
                "a shift of 0ms is too short: make it at least 1m",
            ),
            (
                BadRotation::ShiftTooShort { shift_ms: -HOUR },
                "a shift of -3600000ms is too short: make it at least 1m",
            ),
            (
                BadRotation::ShiftTooLong {
                    shift_ms: MAX_SHIFT_MS + HOUR + 1000,
                },
                "a shift of 366d1h1s is too long: make it at most 366d",
            ),
        ];
        for (refusal, message) in cases {
            assert_eq!(refusal.to_string(), message);
        }
    }

    #[test]
    fn who_is_on_call() {
        let three = rotation(&["ana", "bo", "cy"], 8 * HOUR, START);
        // (now, on-call index, hand-over)
        let cases = [
            // Before the start: the first member, until the end of the first shift.
            (START - 1, 0, START + 8 * HOUR),
            (START - 100 * HOUR, 0, START + 8 * HOUR),
            (i64::MIN, 0, START + 8 * HOUR),
            (START, 0, START + 8 * HOUR),
            (START + 8 * HOUR - 1, 0, START + 8 * HOUR),
            (START + 8 * HOUR, 1, START + 16 * HOUR),
            (START + 16 * HOUR, 2, START + 24 * HOUR),
            (START + 24 * HOUR - 1, 2, START + 24 * HOUR),
            // Cycling.
            (START + 24 * HOUR, 0, START + 32 * HOUR),
            (START + 32 * HOUR + 5, 1, START + 40 * HOUR),
            (START + 365 * 24 * HOUR, 0, START + (365 * 24 + 8) * HOUR),
            (
                START + (365 * 24 + 9) * HOUR,
                1,
                START + (365 * 24 + 16) * HOUR,
            ),
        ];
        for (now, index, hand_over) in cases {
            assert_eq!(three.on_call_index(now), Some(index), "at {now}");
            assert_eq!(
                three.on_call(now),
                Some(["ana", "bo", "cy"][index]),
                "at {now}"
            );
            assert_eq!(three.hand_over_ms(now), Some(hand_over), "at {now}");
        }
    }

    #[test]
    fn on_call_with_times_before_1970() {
        // A start before the epoch: the differences, not the times, decide.
        let two = rotation(&["ana", "bo"], HOUR, -10 * HOUR);
        // (now, on-call, hand-over)
        let cases = [
            (-11 * HOUR, "ana", -9 * HOUR),
            (-10 * HOUR, "ana", -9 * HOUR),
            (-9 * HOUR, "bo", -8 * HOUR),
            (-HOUR - 1, "ana", -HOUR),
            (-1, "bo", 0),
            (0, "ana", HOUR),
            (HOUR, "bo", 2 * HOUR),
        ];
        for (now, on_call, hand_over) in cases {
            assert_eq!(two.on_call(now), Some(on_call), "at {now}");
            assert_eq!(two.hand_over_ms(now), Some(hand_over), "at {now}");
        }
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let early = rotation(&["ana", "bo"], MAX_SHIFT_MS, i64::MIN);
        assert_eq!(early.on_call_index(i64::MAX), Some(0));
        assert!(early.hand_over_ms(i64::MAX).unwrap() > 0);
        let late = rotation(&["ana", "bo"], MAX_SHIFT_MS, i64::MAX - 1);
        assert_eq!(late.on_call(i64::MIN), Some("ana"));
        assert_eq!(late.on_call(i64::MAX), Some("ana"));
        assert_eq!(late.hand_over_ms(i64::MAX), Some(i64::MAX));
        let one_ms = rotation(&["ana", "bo", "cy"], 1, i64::MIN);
        assert_eq!(one_ms.on_call_index(i64::MAX), Some(0));
        assert_eq!(one_ms.hand_over_ms(i64::MAX), Some(i64::MAX));
    }

    #[test]
    fn unusable_rotations_have_nobody_on_call() {
        for broken in [
            rotation(&[], HOUR, START),
            rotation(&["ana"], 0, START),
            rotation(&["ana"], -HOUR, START),
        ] {
            assert_eq!(broken.on_call_index(START), None, "{broken:?}");
            assert_eq!(broken.on_call(START), None, "{broken:?}");
            assert_eq!(broken.hand_over_ms(START), None, "{broken:?}");
            assert_eq!(responder(&broken, START, 0), Responder::Leads);
        }
    }

    #[test]
    fn escalation_levels() {
        let period = DEFAULT_ESCALATION_MS;
        // (opened, now, escalate after, level)
        let cases = [
            (START, START, period, 0),
            (START, START - 1, period, 0),
            (START, i64::MIN, period, 0),
            (START, START + period - 1, period, 0),
            (START, START + period, period, 1),
            (START, START + 2 * period - 1, period, 1),
            (START, START + 2 * period, period, 2),
            (START, START + 10 * period + 1, period, 10),
            (START, START + 30 * MIN, 10 * MIN, 3),
            (START, START + 59 * MIN, HOUR, 0),
            // A period that is not positive falls back to the default.
            (START, START + period, 0, 1),
            (START, START + 2 * period, -5, 2),
            (START, START + period - 1, 0, 0),
            // Huge spans saturate.
            (i64::MIN, i64::MAX, 1, u32::MAX),
            (0, i64::MAX, 1, u32::MAX),
            (0, u32::MAX as i64, 1, u32::MAX),
            (0, u32::MAX as i64 - 1, 1, u32::MAX - 1),
        ];
        for (opened, now, after, level) in cases {
            assert_eq!(
                escalation_level(opened, now, after),
                level,
                "opened {opened}, now {now}, after {after}"
            );
        }
    }

    #[test]
    fn responders_by_level() {
        let person = |name: &str| Responder::Person(name.into());
        let three = rotation(&["ana", "bo", "cy"], 8 * HOUR, START);
        let one = rotation(&["ana"], 8 * HOUR, START);
        // (rotation, opened, level, responder)
        let cases = [
            (&three, START, 0, person("ana")),
            (&three, START, 1, person("bo")),
            (&three, START, 2, Responder::Leads),
            (&three, START, 3, Responder::Leads),
            (&three, START, u32::MAX, Responder::Leads),
            (&three, START + 9 * HOUR, 0, person("bo")),
            (&three, START + 9 * HOUR, 1, person("cy")),
            // The last member's next is the first.
            (&three, START + 17 * HOUR, 0, person("cy")),
            (&three, START + 17 * HOUR, 1, person("ana")),
            (&three, START - HOUR, 0, person("ana")),
            (&three, START - HOUR, 1, person("bo")),
            // One member: nobody after them but the leads.
            (&one, START, 0, person("ana")),
            (&one, START, 1, Responder::Leads),
            (&one, START, 2, Responder::Leads),
        ];
        for (rotation, opened, level, expected) in cases {
            assert_eq!(
                responder(rotation, opened, level),
                expected,
                "{:?} opened {opened} level {level}",
                rotation.members
            );
        }
    }

    #[test]
    fn the_incident_keeps_the_on_call_of_its_opening() {
        let three = rotation(&["ana", "bo", "cy"], HOUR, START);
        let opened = START + HOUR - MIN;
        // The shift changes a minute later; level 0 is still ana, level 1 bo.
        assert_eq!(three.on_call(opened + MIN), Some("bo"));
        assert_eq!(
            responder(&three, opened, 0),
            Responder::Person("ana".into())
        );
        assert_eq!(responder(&three, opened, 1), Responder::Person("bo".into()));
    }

    #[test]
    fn responders_display() {
        assert_eq!(Responder::Person("ana".into()).to_string(), "ana");
        assert_eq!(Responder::Leads.to_string(), "the team's leads");
    }

    #[test]
    fn due_escalations() {
        use Severity::*;
        let p = DEFAULT_ESCALATION_MS;
        // (severity, acknowledged, resolved, minutes since opened as periods, current, due)
        let cases = [
            // Critical, unacknowledged, open: climbs one level per period, up to 2.
            (Critical, false, false, 0, 0, None),
            (Critical, false, false, p - 1, 0, None),
            (Critical, false, false, p, 0, Some(1)),
            (Critical, false, false, p, 1, None),
            (Critical, false, false, 2 * p - 1, 1, None),
            (Critical, false, false, 2 * p, 1, Some(2)),
            (Critical, false, false, 2 * p, 2, None),
            (Critical, false, false, 9 * p, 2, None),
            // Missed periods jump straight to the level they reach, capped at the leads.
            (Critical, false, false, 2 * p, 0, Some(2)),
            (Critical, false, false, 50 * p, 0, Some(2)),
            (Critical, false, false, 50 * p, 1, Some(2)),
            // A current level above the cap never goes back down.
            (Critical, false, false, 50 * p, 3, None),
            // Before the opening (clock skew): nothing yet.
            (Critical, false, false, -p, 0, None),
            // Acknowledged or resolved: never.
            (Critical, true, false, 5 * p, 0, None),
            (Critical, false, true, 5 * p, 0, None),
            (Critical, true, true, 5 * p, 0, None),
            // Not critical: never.
            (High, false, false, 5 * p, 0, None),
            (Medium, false, false, 5 * p, 0, None),
            (Low, false, false, 5 * p, 0, None),
        ];
        for (severity, acknowledged, resolved, elapsed, current, due) in cases {
            assert_eq!(
                due_escalation(
                    severity,
                    acknowledged,
                    resolved,
                    START,
                    START + elapsed,
                    p,
                    current
                ),
                due,
                "{severity} ack {acknowledged} resolved {resolved} after {elapsed} at level {current}"
            );
        }
    }

    #[test]
    fn due_escalation_uses_the_team_period() {
        // (escalate after, elapsed, due from level 0)
        let cases = [
            (5 * MIN, 5 * MIN, Some(1)),
            (5 * MIN, 10 * MIN, Some(2)),
            (HOUR, 30 * MIN, None),
            (HOUR, HOUR, Some(1)),
            (0, DEFAULT_ESCALATION_MS, Some(1)),
        ];
        for (after, elapsed, due) in cases {
            assert_eq!(
                due_escalation(
                    Severity::Critical,
                    false,
                    false,
                    START,
                    START + elapsed,
                    after,
                    0
                ),
                due,
                "after {after}, elapsed {elapsed}"
            );
        }
    }

    #[test]
    fn durations_in_messages() {
        let cases = [
            (1, "1ms"),
            (999, "999ms"),
            (1000, "1s"),
            (MIN, "1m"),
            (90_000, "1m30s"),
            (HOUR, "1h"),
            (DAY_MS + HOUR, "1d1h"),
            (MAX_SHIFT_MS, "366d"),
            (0, "0ms"),
            (-1, "-1ms"),
        ];
        for (ms, text) in cases {
            assert_eq!(format_ms(ms), text, "{ms}");
        }
    }
}
