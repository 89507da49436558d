//! Whether an environment is frozen now, and until when: its one-off freeze (`ferry env
//! freeze`) and its recurring windows, chained.
//!
//! Freezes chain: when one ends while another is in force (or starts right at its end), the
//! environment stays frozen until that one ends, and so on. The freeze whose end is the end
//! of the chain is the one that holds the environment, and refusals name it. A chain that
//! goes on for [`MAX_CHAIN`] links, or reaches [`CONTINUOUS_AFTER_MS`] past now, never lets
//! go (`* * * * * 1h`, `0 * * * * 2h`): the environment is frozen continuously.

use std::fmt;

use super::{format_utc, FreezeWindow, OneOffFreeze};

/// How many chained freezes [`frozen_until`] follows; a chain still going after that many is
/// taken as continuous (a window set that never lets go, like `* * * * * 1m`, would chain
/// forever).
pub const MAX_CHAIN: usize = 10_000;

/// How far past now a chain of freezes may reach before it is taken as continuous: a year
/// and a day, longer than any cron pattern that still leaves a gap each year.
pub const CONTINUOUS_AFTER_MS: i64 = 366 * 86_400_000;

/// Everything that freezes one environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Freezes {
    /// Its recurring freeze windows.
    pub windows: Vec<FreezeWindow>,
    /// Its one-off freeze, if it has one (in force or not).
    pub one_off: Option<OneOffFreeze>,
}

/// The freeze that holds an environment until its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// A one-off freeze: why, and who made it.
    OneOff { reason: String, by: String },
    /// A recurring freeze window, as listed (`0 18 * * FRI 2d16h`).
    Window(String),
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::OneOff { reason, by } => write!(f, "{reason}, by {by}"),
            Hold::Window(window) => write!(f, "freeze window {window}"),
        }
    }
}

/// When a freeze ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thaw {
    /// At this time (ms since the epoch, UTC).
    At(i64),
    /// Never: the freeze windows leave no gap.
    Never,
}

/// An environment frozen now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrozenNow {
    /// Frozen until `until_ms` (ms since the epoch, UTC), held there by `held_by`.
    Until { until_ms: i64, held_by: Hold },
    /// Its freeze windows chain without a gap: it never thaws on its own.
    Continuously,
}

impl FrozenNow {
    /// When it thaws.
    pub fn thaw(&self) -> Thaw {
        match self {
            FrozenNow::Until { until_ms, .. } => Thaw::At(*until_ms),
            FrozenNow::Continuously => Thaw::Never,
        }
    }

    /// As people read it at `now_ms`: `until 22:00 UTC (release night, by anna)`, `until
    /// 2024-03-04 10:00 UTC (freeze window 0 18 * * FRI 2d16h)` or `continuously (its freeze
    /// windows leave no gap)`.
    pub fn describe(&self, now_ms: i64) -> String {
        match self {
            FrozenNow::Until { until_ms, held_by } => {
                format!("until {} ({held_by})", format_until(*until_ms, now_ms))
            }
            FrozenNow::Continuously => "continuously (its freeze windows leave no gap)".to_owned(),
        }
    }
}

/// A time a freeze ends, as seen at `now_ms`: `22:00 UTC` on the same UTC day, the date too
/// otherwise (`2024-03-04 10:00 UTC`); seconds only when not zero.
pub fn format_until(until_ms: i64, now_ms: i64) -> String {
    let full = format_utc(until_ms);
    match (full.split_once(' '), format_utc(now_ms).split_once(' ')) {
        (Some((day, time)), Some((today, _))) if day == today => time.to_owned(),
        _ => full,
    }
}

/// One freeze of a chain.
#[derive(Clone, Copy)]
enum Link<'a> {
    OneOff(&'a OneOffFreeze),
    Window(&'a FreezeWindow),
}

impl Link<'_> {
    fn hold(self) -> Hold {
        match self {
            Link::OneOff(freeze) => Hold::OneOff {
                reason: freeze.reason.clone(),
                by: freeze.by.clone(),
            },
            Link::Window(window) => Hold::Window(window.to_string()),
        }
    }
}

/// The freeze in force at `at` that ends latest, and its end. The one-off freeze wins a
/// tie, since it says why.
fn next_link(freezes: &Freezes, at: i64) -> Option<(i64, Link<'_>)> {
    let one_off = freezes
        .one_off
        .as_ref()
        .and_then(|freeze| freeze.active_at(at).map(|end| (end, Link::OneOff(freeze))));
    let window = freezes
        .windows
        .iter()
        .filter_map(|window| window.active_at(at).map(|end| (end, Link::Window(window))))
        .max_by_key(|(end, _)| *end);
    match (one_off, window) {
        (Some((one_off, _)), Some(window)) if window.0 > one_off => Some(window),
        (Some(one_off), _) => Some(one_off),
        (None, window) => window,
    }
}

/// Whether `freezes` hold the environment at `now_ms`, and until when: freezes chain (one
/// ending while another is in force, or starting right at its end, hands over to it); the
/// end itself is not frozen. A chain of [`MAX_CHAIN`] links, or one reaching
/// [`CONTINUOUS_AFTER_MS`] past now, is [`FrozenNow::Continuously`].
pub fn frozen_until(freezes: &Freezes, now_ms: i64) -> Option<FrozenNow> {
    let horizon = now_ms.saturating_add(CONTINUOUS_AFTER_MS);
    let mut last: Option<(i64, Link)> = None;
    let mut at = now_ms;
    let mut links = 0;
    while let Some((end, link)) = next_link(freezes, at) {
        if end > horizon || links == MAX_CHAIN {
            return Some(FrozenNow::Continuously);
        }
        links += 1;
        last = Some((end, link));
        at = end;
    }
    let (until_ms, link) = last?;
    Some(FrozenNow::Until {
        until_ms,
        held_by: link.hold(),
    })
}

/// A deployment refused because the environment is frozen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frozen {
    pub env: String,
    /// The freeze, as it stands.
    pub frozen: FrozenNow,
    /// When it was judged (ms since the epoch, UTC): says whether the end is today.
    pub now_ms: i64,
}

impl fmt::Display for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = &self.env;
        write!(
            f,
            "{env:?} is frozen {}: ",
            self.frozen.describe(self.now_ms)
        )?;
        match &self.frozen {
            FrozenNow::Until {
                held_by: Hold::OneOff { .. },
                ..
            } => write!(
                f,
                "deploy after that, or after a release manager or admin ends it with `ferry env unfreeze {env}`"
            )?,
            FrozenNow::Until { .. } => f.write_str("deploy after that")?,
            FrozenNow::Continuously => write!(
                f,
                "a release manager or admin may remove a window with `ferry env set {env} \
                 --unfreeze \"CRON DURATION\"` (`ferry env list` shows them)"
            )?,
        }
        write!(
            f,
            "; or an admin of {env:?} may override the freeze with --break-glass --reason TEXT"
        )
    }
}

impl std::error::Error for Frozen {}

/// Refuses a deployment to `env` while any of its freezes holds it at `now_ms`.
pub fn check_freeze(env: &str, freezes: &Freezes, now_ms: i64) -> Result<(), Frozen> {
    match frozen_until(freezes, now_ms) {
        Some(frozen) => Err(Frozen {
            env: env.to_owned(),
            frozen,
            now_ms,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, window};
    use super::*;

    fn one_off(from: &str, until: &str, reason: &str) -> OneOffFreeze {
        OneOffFreeze {
            from_ms: at(from),
            until_ms: at(until),
            reason: reason.into(),
            by: "anna".into(),
        }
    }

    fn freezes(windows: &[&str], one_off: Option<OneOffFreeze>) -> Freezes {
        Freezes {
            windows: windows.iter().map(|text| window(text)).collect(),
            one_off,
        }
    }

    /// `frozen_until(...).describe(now)`, or "-" when not frozen.
    fn described(freezes: &Freezes, now: &str) -> String {
        frozen_until(freezes, at(now)).map_or("-".to_owned(), |f| f.describe(at(now)))
    }

    #[test]
    fn several_windows_chain() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "2024-03-01 12:00", "-"),
            (&["0 18 * * FRI 64h"], "2024-03-01 12:00", "-"),
            (
                &["0 18 * * FRI 64h"],
                "2024-03-02 12:00",
                "2024-03-04 10:00",
            ),
            // The later of two overlapping windows.
            (
                &["0 18 * * FRI 64h", "0 0 * * SAT 4d"],
                "2024-03-02 12:00",
                "2024-03-06 00:00",
            ),
            // A ends inside B: until B's end; B ends inside C: until C's end.
            (
                &["0 8 1 * * 4h", "0 11 1 * * 4h", "0 14 1 * * 2h"],
                "2024-03-01 09:00",
                "2024-03-01 16:00",
            ),
            // B starts right at A's end: still frozen.
            (
                &["0 8 1 * * 4h", "0 12 1 * * 1h"],
                "2024-03-01 09:00",
                "2024-03-01 13:00",
            ),
            // A gap of one minute: the freeze ends with A.
            (
                &["0 8 1 * * 4h", "1 12 1 * * 1h"],
                "2024-03-01 09:00",
                "2024-03-01 12:00",
            ),
            // Only B covers now; A, which ends inside B, does not matter.
            (
                &["0 8 1 * * 4h", "0 11 1 * * 4h"],
                "2024-03-01 13:00",
                "2024-03-01 15:00",
            ),
            // One window chaining with itself: every 3h for 4h, on the 1st only.
            (&["0 */3 1 * * 4h"], "2024-03-01 01:00", "2024-03-02 01:00"),
            // Eleven months chained, then a gap: not continuous.
            (
                &["0 0 1 JAN-NOV * 31d"],
                "2024-01-15 00:00",
                "2024-12-02 00:00",
            ),
        ];
        for (texts, now, expected) in cases {
            let got = frozen_until(&freezes(texts, None), at(now)).map(|f| f.thaw());
            let expected = (*expected != "-").then(|| Thaw::At(at(expected)));
            assert_eq!(got, expected, "{texts:?} at {now}");
        }
    }

    #[test]
    fn one_off_freezes_chain_with_windows() {
        // 2024-03-01 is a Friday; the weekend window runs from 18:00 to Monday 10:00.
        let weekend = ["0 18 * * FRI 64h"];
        let night = || one_off("2024-03-01 12:00", "2024-03-01 22:00", "release night");
        let cases: &[(&[&str], Option<OneOffFreeze>, &str, &str)] = &[
            // Alone: until its end, today, so the time alone.
            (
                &[],
                Some(night()),
                "2024-03-01 13:00",
                "until 22:00 UTC (release night, by anna)",
            ),
            // Before it starts and from its end on, it holds nothing.
            (&[], Some(night()), "2024-03-01 11:59", "-"),
            (&[], Some(night()), "2024-03-01 22:00", "-"),
            // Ending on another day: with the date.
            (
                &[],
                Some(one_off("2024-03-01 12:00", "2024-03-02 02:00", "migration")),
                "2024-03-01 13:00",
                "until 2024-03-02 02:00 UTC (migration, by anna)",
            ),
            // It hands over to the weekend window, which holds the end.
            (
                &weekend,
                Some(night()),
                "2024-03-01 13:00",
                "until 2024-03-04 10:00 UTC (freeze window 0 18 * * FRI 2d16h)",
            ),
            // A window that ends inside it: the one-off freeze holds the end.
            (
                &["0 12 * * * 2h"],
                Some(night()),
                "2024-03-01 13:00",
                "until 22:00 UTC (release night, by anna)",
            ),
            // A window hands over to it.
            (
                &["0 10 * * * 3h"],
                Some(one_off("2024-03-01 12:30", "2024-03-01 15:00", "db move")),
                "2024-03-01 11:00",
                "until 15:00 UTC (db move, by anna)",
            ),
            // A gap between a window and it: frozen until the window ends.
            (
                &["0 10 * * * 1h"],
                Some(one_off("2024-03-01 12:30", "2024-03-01 15:00", "db move")),
                "2024-03-01 10:30",
                "until 11:00 UTC (freeze window 0 10 * * * 1h)",
            ),
            // Same end: the one-off freeze says why.
            (
                &["0 12 * * * 10h"],
                Some(night()),
                "2024-03-01 13:00",
                "until 22:00 UTC (release night, by anna)",
            ),
            // Into windows that never let go.
            (
                &["0 * * * * 2h"],
                Some(night()),
                "2024-03-01 13:00",
                "continuously (its freeze windows leave no gap)",
            ),
        ];
        for (windows, one_off, now, expected) in cases {
            let got = described(&freezes(windows, one_off.clone()), now);
            assert_eq!(got, *expected, "{windows:?} {one_off:?} at {now}");
        }
    }

    #[test]
    fn windows_that_never_let_go_are_frozen_continuously() {
        let now = "2024-03-01 12:00";
        for texts in [
            &["* * * * * 1h"][..],
            &["* * * * * 1m"],
            &["0 * * * * 2h"],
            &["*/30 * * * * 1h"],
            &["0 0 * * * 1d"],
            &["0 0 1 * * 31d"],
            &["0 18 * * FRI 64h", "0 10 * * MON-FRI 1d"],
        ] {
            assert_eq!(
                frozen_until(&freezes(texts, None), at(now)),
                Some(FrozenNow::Continuously),
                "{texts:?}"
            );
        }
        // Windows that leave a gap some day are not.
        for texts in [
            &["0 0 * * MON-SAT 1d"][..],
            &["* 0-22 * * * 1m"],
            &["0 0 1 JAN-NOV * 31d"],
        ] {
            assert!(
                matches!(
                    frozen_until(&freezes(texts, None), at("2024-01-01 12:00")),
                    Some(FrozenNow::Until { .. })
                ),
                "{texts:?}"
            );
        }
    }

    #[test]
    fn times_far_from_now_are_not_frozen() {
        let all = freezes(&["* * * * * 31d"], None);
        for now in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
            assert_eq!(frozen_until(&all, now), None, "{now}");
        }
    }

    #[test]
    fn times_are_shown_with_the_date_unless_today() {
        for (until, now, shown) in [
            ("2024-03-01 22:00", "2024-03-01 00:00", "22:00 UTC"),
            ("2024-03-01 22:00:30", "2024-03-01 21:00", "22:00:30 UTC"),
            (
                "2024-03-02 00:00",
                "2024-03-01 23:00",
                "2024-03-02 00:00 UTC",
            ),
            (
                "2024-03-01 22:00",
                "2024-02-29 22:00",
                "2024-03-01 22:00 UTC",
            ),
        ] {
            assert_eq!(format_until(at(until), at(now)), shown, "{until} at {now}");
        }
    }

    #[test]
    fn check_freeze_refuses_naming_the_end_and_the_reason() {
        let now = "2024-03-01 13:00";
        let night = one_off("2024-03-01 12:00", "2024-03-01 22:00", "release night");
        let cases = [
            (
                freezes(&["0 18 * * FRI 64h"], None),
                "2024-03-01 12:00",
                None,
            ),
            (
                freezes(&[], Some(night.clone())),
                now,
                Some(
                    "\"prd\" is frozen until 22:00 UTC (release night, by anna): deploy after \
                     that, or after a release manager or admin ends it with `ferry env unfreeze \
                     prd`; or an admin of \"prd\" may override the freeze with --break-glass \
                     --reason TEXT",
                ),
            ),
            (
                freezes(&["0 18 * * FRI 64h"], None),
                "2024-03-02 12:00",
                Some(
                    "\"prd\" is frozen until 2024-03-04 10:00 UTC (freeze window 0 18 * * FRI \
                     2d16h): deploy after that; or an admin of \"prd\" may override the freeze \
                     with --break-glass --reason TEXT",
                ),
            ),
            (
                freezes(&["* * * * * 2h"], None),
                now,
                Some(
                    "\"prd\" is frozen continuously (its freeze windows leave no gap): a release \
                     manager or admin may remove a window with `ferry env set prd --unfreeze \
                     \"CRON DURATION\"` (`ferry env list` shows them); or an admin of \"prd\" may override the freeze with \
                     --break-glass --reason TEXT",
                ),
            ),
        ];
        for (freezes, now, expected) in cases {
            let got = check_freeze("prd", &freezes, at(now)).map_err(|e| e.to_string());
            assert_eq!(got.err().as_deref(), expected, "{freezes:?} at {now}");
        }
    }
}
