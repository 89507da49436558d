//! One-off freezes: `ferry env freeze ENV --for 2h --reason TEXT` (or `--until "2026-12-04
//! 22:00"`, UTC) freezes an environment from now until an end, beside its recurring windows,
//! and `ferry env unfreeze ENV` ends it sooner.
//!
//! An environment has at most one one-off freeze. Freezing it again while a freeze is in
//! force replaces that freeze when the new one ends as late or later (with the new reason);
//! one that would end sooner is refused, so nobody cuts short a freeze they did not read:
//! unfreeze first, then freeze again. A `--for` freeze ends on the whole minute (rounded
//! up), so its end reads `22:00 UTC`, like the windows'.

use std::time::Duration;

use time::PrimitiveDateTime;

use super::frozen::{format_until, frozen_until, Freezes, FrozenNow};
use super::{MAX_DURATION, MINUTE_MS};
use crate::duration::parse_duration;

/// The longest reason a freeze or unfreeze may give, in characters.
pub const MAX_REASON_CHARS: usize = 200;

const UNTIL_EXAMPLE: &str = "write it like \"2026-12-04 22:00\" (UTC)";

/// A one-off freeze of an environment: from when it was made until its end, why, and who made
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneOffFreeze {
    /// When it was made (ms since the epoch, UTC).
    pub from_ms: i64,
    /// When it ends (ms since the epoch, UTC); the end itself is not frozen.
    pub until_ms: i64,
    /// Why, as given with `--reason`.
    pub reason: String,
    /// The user who made it.
    pub by: String,
}

/// How long a new one-off freeze lasts, as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezeEnd {
    /// `--for DURATION`, from now.
    For(Duration),
    /// `--until "YYYY-MM-DD HH:MM"` in UTC, as ms since the epoch.
    Until(i64),
}

impl FreezeEnd {
    /// Reads `--for`: a duration as `crate::duration::parse_duration` reads it.
    pub fn parse_for(text: &str) -> Result<FreezeEnd, String> {
        parse_duration(text)
            .map(FreezeEnd::For)
            .map_err(|e| format!("--for: {e}"))
    }

    /// Reads `--until`: a UTC time `YYYY-MM-DD HH:MM`.
    pub fn parse_until(text: &str) -> Result<FreezeEnd, String> {
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        PrimitiveDateTime::parse(text.trim(), format)
            .map(|at| FreezeEnd::Until(at.assume_utc().unix_timestamp() * 1000))
            .map_err(|_| format!("--until {text:?} is not a time: {UNTIL_EXAMPLE}"))
    }
}

/// A reason as given: trimmed, one line, at most [`MAX_REASON_CHARS`] characters. `what`
/// names it in errors.
pub fn checked_reason(reason: &str, what: &str) -> Result<String, String> {
    let reason = reason.trim();
    if reason.chars().any(char::is_control) {
        return Err(format!("{what} must be one line of text"));
    }
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(format!(
            "{what} is {chars} characters long: say it in at most {MAX_REASON_CHARS}"
        ));
    }
    Ok(reason.to_owned())
}

impl OneOffFreeze {
    /// The freeze `by` makes at `now_ms`, lasting until `end`, for `reason` (required: it is
    /// shown with every refusal). It lasts more than zero and at most 31 days, like a
    /// window; a `--for` freeze ends on the whole minute, rounded up.
    pub fn new(
        now_ms: i64,
        end: FreezeEnd,
        reason: &str,
        by: &str,
    ) -> Result<OneOffFreeze, String> {
        let reason = checked_reason(reason, "the reason")?;
        if reason.is_empty() {
            return Err(
                "a freeze needs --reason TEXT saying why: it is shown with every refusal while \
                 it lasts"
                    .to_owned(),
            );
        }
        let longest = MAX_DURATION.as_millis() as i64;
        let until_ms = match end {
            FreezeEnd::For(duration) => {
                if duration.is_zero() {
                    return Err(
                        "--for must be more than zero: write how long to freeze, like 2h or 1d"
                            .to_owned(),
                    );
                }
                if duration > MAX_DURATION {
                    return Err(too_long());
                }
                let end = now_ms.saturating_add(duration.as_millis() as i64);
                end.saturating_add(MINUTE_MS - 1)
                    .div_euclid(MINUTE_MS)
                    .saturating_mul(MINUTE_MS)
            }
            FreezeEnd::Until(until_ms) => {
                if until_ms <= now_ms {
                    return Err(format!(
                        "--until {} has passed (it is {} now): give a later time, or --for \
                         DURATION",
                        format_until(until_ms, now_ms),
                        format_until(now_ms, now_ms)
                    ));
                }
                if until_ms - now_ms > longest {
                    return Err(too_long());
                }
                until_ms
            }
        };
        Ok(OneOffFreeze {
            from_ms: now_ms,
            until_ms,
            reason,
            by: by.to_owned(),
        })
    }

    /// The end of this freeze, when it is in force at `now_ms`.
    pub fn active_at(&self, now_ms: i64) -> Option<i64> {
        (self.from_ms <= now_ms && now_ms < self.until_ms).then_some(self.until_ms)
    }
}

fn too_long() -> String {
    "a freeze lasts at most 31 days: freeze again when it ends, or add a freeze window \
     (`ferry env set ENV --freeze \"CRON DURATION\"`)"
        .to_owned()
}

/// Whether `new` may replace the one-off freeze `current` of `env` at `now_ms`: always when
/// none is in force, and when it ends as late or later; one ending sooner is refused,
/// naming the freeze in force and how to shorten it.
pub fn check_replacement(
    env: &str,
    current: Option<&OneOffFreeze>,
    new: &OneOffFreeze,
    now_ms: i64,
) -> Result<(), String> {
    match current.filter(|current| current.active_at(now_ms).is_some()) {
        Some(current) if new.until_ms < current.until_ms => Err(format!(
            "{env} is frozen until {} already ({}, by {}); a freeze until {} would end it sooner: \
             to shorten it, `ferry env unfreeze {env}` first, then freeze again",
            format_until(current.until_ms, now_ms),
            current.reason,
            current.by,
            format_until(new.until_ms, now_ms),
        )),
        _ => Ok(()),
    }
}

/// What `ferry env unfreeze ENV` ends at `now_ms`: the one-off freeze in force. Refused
/// when there is none: `ENV is not frozen`, or, when freeze windows hold it, what holds it
/// and how to remove a window. (Its reason is checked like a freeze's, with
/// [`checked_reason`].)
pub fn check_unfreeze<'a>(
    env: &str,
    freezes: &'a Freezes,
    now_ms: i64,
) -> Result<&'a OneOffFreeze, String> {
    if let Some(freeze) = freezes
        .one_off
        .as_ref()
        .filter(|freeze| freeze.active_at(now_ms).is_some())
    {
        return Ok(freeze);
    }
    match frozen_until(freezes, now_ms) {
        None => Err(format!("{env} is not frozen: nothing to unfreeze")),
        Some(frozen) => Err(format!(
            "{env} has no freeze made with `ferry env freeze` to end: it is frozen {} by its \
             freeze windows; {}",
            frozen.describe(now_ms),
            remove_windows_hint(env)
        )),
    }
}

/// What still holds `env` by its windows once its one-off freeze is ended at `now_ms`, and
/// how to remove them; `None` when nothing does.
pub fn still_frozen(env: &str, windows: &[super::FreezeWindow], now_ms: i64) -> Option<String> {
    let windows_only = Freezes {
        windows: windows.to_vec(),
        one_off: None,
    };
    frozen_until(&windows_only, now_ms).map(|frozen: FrozenNow| {
        format!(
            "{env} is still frozen {} by its freeze windows; {}",
            frozen.describe(now_ms),
            remove_windows_hint(env)
        )
    })
}

fn remove_windows_hint(env: &str) -> String {
    format!(
        "remove one with `ferry env set {env} --unfreeze \"CRON DURATION\"` (`ferry env list` \
         shows them)"
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, window};
    use super::*;

    fn freeze_for(now: &str, text: &str, reason: &str) -> Result<OneOffFreeze, String> {
        OneOffFreeze::new(at(now), FreezeEnd::parse_for(text)?, reason, "anna")
    }

    #[test]
    fn a_freeze_lasts_from_now_until_its_end() {
        for (now, end, until) in [
            ("2026-12-04 20:00", "2h", "2026-12-04 22:00"),
            ("2026-12-04 20:00", "1h 30m", "2026-12-04 21:30"),
            // Rounded up to the whole minute.
            ("2026-12-04 19:58:30", "2h", "2026-12-04 21:59"),
            ("2026-12-04 20:00", "1s", "2026-12-04 20:01"),
            ("2026-12-04 20:00", "31d", "2027-01-04 20:00"),
        ] {
            let freeze = freeze_for(now, end, " release night ").unwrap();
            assert_eq!(
                (freeze.from_ms, freeze.until_ms),
                (at(now), at(until)),
                "{end} at {now}"
            );
            assert_eq!(freeze.reason, "release night");
        }
        let until = FreezeEnd::parse_until(" 2026-12-04 22:00 ").unwrap();
        assert_eq!(until, FreezeEnd::Until(at("2026-12-04 22:00")));
        let freeze = OneOffFreeze::new(at("2026-12-04 20:00"), until, "x", "anna").unwrap();
        assert_eq!(freeze.until_ms, at("2026-12-04 22:00"));
        assert_eq!(freeze.active_at(at("2026-12-04 19:59")), None);
        assert_eq!(
            freeze.active_at(at("2026-12-04 20:00")),
            Some(freeze.until_ms)
        );
        assert_eq!(freeze.active_at(at("2026-12-04 22:00")), None);
    }

    #[test]
    fn bad_freezes_say_what_to_write() {
        let now = "2026-12-04 20:00";
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        let cases: &[(&str, &str, &str)] = &[
            ("2h", "", "needs --reason TEXT"),
            ("2h", "   ", "needs --reason TEXT"),
            ("2h", "two\nlines", "one line"),
            ("2h", &long, "at most 200"),
            (
                "0s",
                "x",
                "more than zero: write how long to freeze, like 2h",
            ),
            ("32d", "x", "at most 31 days"),
            ("744h1s", "x", "at most 31 days"),
            ("2 hours", "x", "--for: invalid duration \"2 hours\""),
            ("2x", "x", "write it like 500ms, 30s, 15m, 2h, 1d or 1h30m"),
            ("", "x", "--for: invalid duration \"\""),
            ("-1h", "x", "invalid duration"),
        ];
        for (text, reason, expected) in cases {
            let err = freeze_for(now, text, reason).unwrap_err();
            assert!(err.contains(expected), "{text:?} {reason:?}: {err}");
        }
        let until = |text: &str| {
            FreezeEnd::parse_until(text)
                .and_then(|end| OneOffFreeze::new(at(now), end, "x", "anna"))
                .unwrap_err()
        };
        for (text, expected) in [
            ("22:00", "write it like \"2026-12-04 22:00\" (UTC)"),
            ("2026-12-04T22:00", "is not a time"),
            ("2026-13-04 22:00", "is not a time"),
            (
                "2026-12-04 19:00",
                "--until 19:00 UTC has passed (it is 20:00 UTC now)",
            ),
            ("2026-12-04 20:00", "has passed"),
            ("2027-01-04 20:01", "at most 31 days"),
        ] {
            let err = until(text);
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_freeze_in_force_is_replaced_only_by_one_ending_as_late_or_later() {
        let now = at("2026-12-04 20:00");
        let current = freeze_for("2026-12-04 19:00", "3h", "release night").unwrap();
        let ended = freeze_for("2026-12-04 17:00", "1h", "earlier").unwrap();
        for (current, new, allowed) in [
            (None, "1h", true),
            (Some(&ended), "1h", true),
            (Some(&current), "2h", true),
            (Some(&current), "3h", true),
            (Some(&current), "1h", false),
        ] {
            let new =
                OneOffFreeze::new(now, FreezeEnd::parse_for(new).unwrap(), "x", "ben").unwrap();
            let result = check_replacement("prd", current, &new, now);
            assert_eq!(result.is_ok(), allowed, "{current:?} {new:?}: {result:?}");
        }
        let shorter =
            OneOffFreeze::new(now, FreezeEnd::For(Duration::from_secs(60)), "x", "ben").unwrap();
        assert_eq!(
            check_replacement("prd", Some(&current), &shorter, now).unwrap_err(),
            "prd is frozen until 22:00 UTC already (release night, by anna); a freeze until 20:01 \
             UTC would end it sooner: to shorten it, `ferry env unfreeze prd` first, then \
             freeze again"
        );
    }

    #[test]
    fn unfreeze_ends_the_one_off_freeze_in_force_and_names_what_else_holds() {
        let now = at("2026-12-04 20:00"); // a Friday
        let night = freeze_for("2026-12-04 19:00", "3h", "release night").unwrap();
        let ended = freeze_for("2026-12-04 17:00", "1h", "earlier").unwrap();
        let freezes = |windows: &[&str], one_off: Option<&OneOffFreeze>| Freezes {
            windows: windows.iter().map(|text| window(text)).collect(),
            one_off: one_off.cloned(),
        };
        let cases: &[(Freezes, Result<&OneOffFreeze, &str>)] = &[
            (freezes(&[], Some(&night)), Ok(&night)),
            (freezes(&["0 18 * * FRI 64h"], Some(&night)), Ok(&night)),
            (
                freezes(&[], None),
                Err("prd is not frozen: nothing to unfreeze"),
            ),
            (
                freezes(&[], Some(&ended)),
                Err("prd is not frozen: nothing to unfreeze"),
            ),
            (
                freezes(&["0 18 * * FRI 64h"], Some(&ended)),
                Err(
                    "prd has no freeze made with `ferry env freeze` to end: it is frozen until \
                     2026-12-07 10:00 UTC (freeze window 0 18 * * FRI 2d16h) by its freeze \
                     windows; remove one with `ferry env set prd --unfreeze \"CRON DURATION\"` \
                     (`ferry env list` shows them)",
                ),
            ),
        ];
        for (freezes, expected) in cases {
            let got = check_unfreeze("prd", freezes, now);
            assert_eq!(got, expected.map_err(str::to_owned), "{freezes:?}");
        }
        // An unfreeze's reason is checked as a freeze's is.
        let err = checked_reason("a\nb", "the reason").unwrap_err();
        assert!(err.contains("one line"), "{err}");
        assert_eq!(
            still_frozen("prd", &[window("0 18 * * FRI 64h")], now).as_deref(),
            Some(
                "prd is still frozen until 2026-12-07 10:00 UTC (freeze window 0 18 * * FRI \
                 2d16h) by its freeze windows; remove one with `ferry env set prd --unfreeze \
                 \"CRON DURATION\"` (`ferry env list` shows them)"
            )
        );
        assert_eq!(still_frozen("prd", &[window("0 1 * * * 1h")], now), None);
    }
}
