//! Freeze windows: times when an environment takes no deployments.
//!
//! A window is written `CRON DURATION` (`ferry env set ENV --freeze "0 18 * * FRI 64h"`):
//! a standard five-field cron expression in UTC saying when the window starts, and how long
//! it lasts from each start (a duration as [`parse_duration`] reads it, described in the
//! README's "Durations" section). An environment may have several windows; a deployment during any
//! of them is refused with the time the freeze ends, unless an admin breaks the glass.
//!
//! The cron fields are minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
//! JAN-DEC) and day of week (0-7 or SUN-SAT, 0 and 7 both Sunday). Each field is `*`, a
//! number or name, a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of
//! those. Names are case-insensitive; `SUN` at the end of a range means 7, so `FRI-SUN` is
//! Friday to Sunday. As in Vixie cron, when both the day of month and the day of week are
//! restricted (neither field starts with `*`), a day matches if EITHER matches; otherwise it
//! must match both.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::Date;

use crate::duration::{format_duration, parse_duration};

mod frozen;
mod one_off;

pub use frozen::{
    check_freeze, format_until, frozen_until, Freezes, Frozen, FrozenNow, Hold, Thaw,
    CONTINUOUS_AFTER_MS, MAX_CHAIN,
};
pub use one_off::{
    check_replacement, check_unfreeze, checked_reason, still_frozen, FreezeEnd, OneOffFreeze,
    MAX_REASON_CHARS,
};

/// The longest a freeze window may last. It also bounds how far back the search for the
/// window's latest start goes.
pub const MAX_DURATION: Duration = Duration::from_secs(31 * 86_400);

const EXAMPLE: &str = "write it like \"0 18 * * FRI 64h\" (minute hour day-of-month month \
                       day-of-week, then a duration: from Friday 18:00 UTC for 64 hours)";

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 1440;
/// The Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The five cron fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Minute,
        Kind::Hour,
        Kind::DayOfMonth,
        Kind::Month,
        Kind::DayOfWeek,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Minute => "minute",
            Kind::Hour => "hour",
            Kind::DayOfMonth => "day-of-month",
            Kind::Month => "month",
            Kind::DayOfWeek => "day-of-week",
        }
    }

    /// The smallest and largest number the field accepts.
    fn bounds(self) -> (u32, u32) {
        match self {
            Kind::Minute => (0, 59),
            Kind::Hour => (0, 23),
            Kind::DayOfMonth => (1, 31),
            Kind::Month => (1, 12),
            Kind::DayOfWeek => (0, 7),
        }
    }

    /// What `*` covers (day of week: 0-6, Sunday once).
    fn star_range(self) -> (u32, u32) {
        match self {
            Kind::DayOfWeek => (0, 6),
            _ => self.bounds(),
        }
    }

    /// Whether `*` at the start of the field changes the day-of-month/day-of-week rule.
    fn star_matters(self) -> bool {
        matches!(self, Kind::DayOfMonth | Kind::DayOfWeek)
    }

    fn value_hint(self) -> &'static str {
        match self {
            Kind::Month => " or a name JAN-DEC",
            Kind::DayOfWeek => " or a name MON-SUN",
            _ => "",
        }
    }
}

/// One cron field: the set of values it matches, one bit per value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Field {
    bits: u64,
    /// Written as `*` or `*/n` (only kept for the day fields, where it matters).
    star: bool,
}

impl Field {
    fn has(self, value: u32) -> bool {
        value < 64 && self.bits & (1 << value) != 0
    }

    /// The largest value in the field that is at most `limit`.
    fn highest_at_most(self, limit: u32) -> Option<u32> {
        let mask = if limit >= 63 {
            u64::MAX
        } else {
            (1u64 << (limit + 1)) - 1
        };
        let bits = self.bits & mask;
        (bits != 0).then(|| 63 - bits.leading_zeros())
    }

    fn values(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |&value| self.has(value))
    }
}

/// The bits of `lo..=hi` stepping by `step`.
fn progression(lo: u32, hi: u32, step: u32) -> u64 {
    (lo..=hi)
        .step_by(step as usize)
        .fold(0, |bits, value| bits | 1 << value)
}

fn parse_field(kind: Kind, text: &str) -> Result<Field, String> {
    let name = kind.name();
    let (star_lo, star_hi) = kind.star_range();
    let span = star_hi - star_lo;
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{name} field {text:?} has an empty list item"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let (lo, hi) = if range == "*" {
            if text.contains(',') {
                return Err(format!(
                    "{name} field {text:?} mixes `*` into a list: write `*` alone, or list the values"
                ));
            }
            (star_lo, star_hi)
        } else if let Some((lo, hi)) = range.split_once('-') {
            let (lo, hi) = (parse_value(kind, lo, false)?, parse_value(kind, hi, true)?);
            if lo > hi {
                return Err(format!(
                    "{name} range {range:?} runs backwards: write the smaller value first, like 1-5 or MON-FRI"
                ));
            }
            (lo, hi)
        } else if step.is_some() {
            return Err(format!(
                "{name} step {item:?} needs a range before the `/`: write */n or a-b/n, like */15 or 0-30/10"
            ));
        } else {
            let value = parse_value(kind, range, false)?;
            (value, value)
        };
        let step = match step {
            None => 1,
            Some(step) => step
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| step.parse::<u32>().ok())
                .flatten()
                .filter(|value| (1..=span).contains(value))
                .ok_or_else(|| {
                    format!(
                        "{name} step {step:?} in {item:?} is not valid: a step is a number from 1 to {span}"
                    )
                })?,
        };
        bits |= progression(lo, hi, step);
    }
    if kind == Kind::DayOfWeek && bits & (1 << 7) != 0 {
        bits = (bits & !(1 << 7)) | 1;
    }
    Ok(Field {
        bits,
        star: kind.star_matters() && text.starts_with('*'),
    })
}

/// A number or name in a field; `range_end` makes `SUN` mean 7 so `FRI-SUN` works.
fn parse_value(kind: Kind, text: &str, range_end: bool) -> Result<u32, String> {
    let name = kind.name();
    let (lo, hi) = kind.bounds();
    if text.is_empty() {
        return Err(format!(
            "{name} range is missing a value: write it like 1-5"
        ));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (lo..=hi).contains(&value) => Ok(value),
            _ => Err(format!("{name} {text} is out of range {lo}-{hi}")),
        };
    }
    let upper = text.to_ascii_uppercase();
    let named = match kind {
        Kind::Month => MONTHS
            .iter()
            .position(|month| *month == upper)
            .map(|index| index as u32 + 1),
        Kind::DayOfWeek => WEEKDAYS.iter().position(|day| *day == upper).map(|index| {
            if index == 0 && range_end {
                7
            } else {
                index as u32
            }
        }),
        _ => None,
    };
    named.ok_or_else(|| {
        format!(
            "{name} {text:?} is not a number from {lo} to {hi}{}",
            kind.value_hint()
        )
    })
}

fn render_field(kind: Kind, field: Field) -> String {
    let (lo, hi) = kind.star_range();
    if field.star || !kind.star_matters() {
        for step in 1..=hi - lo {
            if field.bits == progression(lo, hi, step) {
                return if step == 1 {
                    "*".to_owned()
                } else {
                    format!("*/{step}")
                };
            }
        }
    }
    match kind {
        // Monday first, Sunday last as 7, so a weekend renders as SAT-SUN.
        Kind::DayOfWeek => render_runs(
            &[1, 2, 3, 4, 5, 6, 0]
                .into_iter()
                .filter(|&day| field.has(day))
                .map(|day| if day == 0 { 7 } else { day })
                .collect::<Vec<_>>(),
            |day| WEEKDAYS[day as usize % 7].to_owned(),
        ),
        Kind::Month => render_runs(&field.values().collect::<Vec<_>>(), |month| {
            MONTHS[month as usize - 1].to_owned()
        }),
        _ => {
            let values: Vec<u32> = field.values().collect();
            if values.len() >= 3 {
                let step = values[1] - values[0];
                if step > 1 && values.windows(2).all(|pair| pair[1] - pair[0] == step) {
                    return format!("{}-{}/{step}", values[0], values[values.len() - 1]);
                }
            }
            render_runs(&values, |value| value.to_string())
        }
    }
}

/// Ascending values as a list where three or more consecutive values become a range.
fn render_runs(values: &[u32], show: impl Fn(u32) -> String) -> String {
    let mut items = Vec::new();
    let mut start = 0;
    while start < values.len() {
        let mut end = start;
        while end + 1 < values.len() && values[end + 1] == values[end] + 1 {
            end += 1;
        }
        match end - start {
            0 => items.push(show(values[start])),
            1 => {
                items.push(show(values[start]));
                items.push(show(values[end]));
            }
            _ => items.push(format!("{}-{}", show(values[start]), show(values[end]))),
        }
        start = end + 1;
    }
    items.join(",")
}

/// The five cron fields of a freeze window: when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cron {
    fields: [Field; 5],
}

impl Cron {
    fn field(&self, kind: Kind) -> Field {
        self.fields[kind as usize]
    }

    /// Whether the window starts on this day (days since 1970-01-01, UTC).
    fn day_matches(&self, day: i64) -> bool {
        let Some(date) = i32::try_from(day + UNIX_EPOCH_JULIAN_DAY)
            .ok()
            .and_then(|julian| Date::from_julian_day(julian).ok())
        else {
            return false;
        };
        let (dom, dow) = (self.field(Kind::DayOfMonth), self.field(Kind::DayOfWeek));
        let dom_ok = dom.has(u32::from(date.day()));
        let dow_ok = dow.has(u32::from(date.weekday().number_days_from_sunday()));
        let day_ok = if dom.star || dow.star {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        };
        day_ok
            && self
                .field(Kind::Month)
                .has(u32::from(u8::from(date.month())))
    }

    /// The latest start in one matching day at or before `limit` (minutes into the day).
    fn latest_in_day(&self, limit: u32) -> Option<u32> {
        let (hours, minutes) = (self.field(Kind::Hour), self.field(Kind::Minute));
        let (hour, minute) = (limit / 60, limit % 60);
        if hours.has(hour) {
            if let Some(minute) = minutes.highest_at_most(minute) {
                return Some(hour * 60 + minute);
            }
        }
        let hour = hours.highest_at_most(hour.checked_sub(1)?)?;
        Some(hour * 60 + minutes.highest_at_most(59)?)
    }

    /// The latest start (minutes since the epoch) at or before `now`, looking back no
    /// further than `earliest`: day by day, then by hour and minute inside a matching day.
    fn latest_start(&self, now: i64, earliest: i64) -> Option<i64> {
        let mut day = now.div_euclid(DAY_MINUTES);
        let mut limit = now.rem_euclid(DAY_MINUTES) as u32;
        while (day + 1) * DAY_MINUTES > earliest {
            if self.day_matches(day) {
                if let Some(minute) = self.latest_in_day(limit) {
                    return Some(day * DAY_MINUTES + i64::from(minute));
                }
            }
            day -= 1;
            limit = DAY_MINUTES as u32 - 1;
        }
        None
    }

    /// Whether some date matches. In the either-rule any day of week matches some date; with
    /// the both-rule, a (month, day-of-month) pair that exists recurs on every weekday over
    /// the years, so only the pair matters.
    fn can_start(&self) -> bool {
        let (dom, dow) = (self.field(Kind::DayOfMonth), self.field(Kind::DayOfWeek));
        if !dom.star && !dow.star {
            return true;
        }
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        self.field(Kind::Month)
            .values()
            .any(|month| dom.highest_at_most(LONGEST[month as usize - 1]).is_some())
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields: Vec<String> = Kind::ALL
            .into_iter()
            .map(|kind| render_field(kind, self.field(kind)))
            .collect();
        f.write_str(&fields.join(" "))
    }
}

/// A freeze window: from every start its cron expression matches (UTC), for its duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FreezeWindow {
    cron: Cron,
    duration: Duration,
}

impl FreezeWindow {
    /// Parses `CRON DURATION`, like `0 18 * * FRI 64h`. The duration is written as
    /// [`parse_duration`] reads it, more than zero and at most 31 days. An expression that
    /// can never start (like `0 0 30 FEB *`) is refused. Errors say what is wrong and show
    /// an example.
    pub fn parse(text: &str) -> Result<FreezeWindow, String> {
        let invalid = |what: String| format!("invalid freeze window {text:?}: {what}; {EXAMPLE}");
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.is_empty() {
            return Err(format!("empty freeze window: {EXAMPLE}"));
        }
        // Five cron fields, then the duration, which may itself hold spaces (`1h 30m`).
        if words.len() < 6 {
            let missing = if words.len() == 5 {
                " (is the duration missing?)"
            } else {
                ""
            };
            return Err(invalid(format!(
                "it has {} fields{missing}, it needs 6: five cron fields and a duration",
                words.len()
            )));
        }
        let mut fields = [Field {
            bits: 0,
            star: false,
        }; 5];
        for (kind, word) in Kind::ALL.into_iter().zip(&words) {
            fields[kind as usize] = parse_field(kind, word).map_err(invalid)?;
        }
        let cron = Cron { fields };
        let duration_text = words[5..].join(" ");
        let duration = parse_duration(&duration_text)
            .map_err(|err| format!("invalid freeze window {text:?}: {err}"))?;
        if duration.is_zero() {
            return Err(invalid(format!(
                "a window of {duration_text} never freezes anything: give it a duration like 1h"
            )));
        }
        if duration > MAX_DURATION {
            return Err(invalid(format!(
                "{duration_text} is longer than the 31 days a freeze window may last: split a longer freeze into several windows"
            )));
        }
        if !cron.can_start() {
            return Err(invalid(format!(
                "no day-of-month in {:?} falls in the months {:?}, so the window would never start",
                words[2], words[3]
            )));
        }
        Ok(FreezeWindow { cron, duration })
    }

    /// When the window starts.
    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    /// How long the window lasts from each start.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The end (ms since the epoch, UTC) of the window covering `now_ms`, if one does: the
    /// window that started at the latest cron match at or before `now_ms` and lasts past it.
    /// The end itself is not frozen. Where starts overlap (a match every hour, lasting two),
    /// the latest start gives the latest end.
    pub fn active_at(&self, now_ms: i64) -> Option<i64> {
        let duration_ms = self.duration.as_millis() as i64;
        let now = now_ms.div_euclid(MINUTE_MS);
        let earliest = now_ms.saturating_sub(duration_ms).div_euclid(MINUTE_MS);
        let start = self.cron.latest_start(now, earliest)?;
        let end = start.checked_mul(MINUTE_MS)?.checked_add(duration_ms)?;
        (end > now_ms).then_some(end)
    }
}

impl FromStr for FreezeWindow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FreezeWindow::parse(s)
    }
}

/// The canonical form: names for months and weekdays, ranges where they fit, the duration
/// in its largest units (`0 18 * * FRI 2d16h`). It parses back to the same window.
impl fmt::Display for FreezeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cron, format_duration(self.duration))
    }
}

/// Milliseconds since the Unix epoch as RFC 3339 in UTC, the API's form of a time.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// A time for messages: `2024-03-01 18:00 UTC` (seconds shown only when not zero).
pub fn format_utc(ms: i64) -> String {
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return format!("{ms} ms after 1970-01-01 UTC");
    };
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    if at.second() != 0 {
        text.push_str(&format!(":{:02}", at.second()));
    }
    text.push_str(" UTC");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_the_apis_form_of_a_time() {
        for (ms, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_709_316_000_000, "2024-03-01T18:00:00Z"),
            (1_709_316_000_250, "2024-03-01T18:00:00.25Z"),
        ] {
            assert_eq!(rfc3339(ms), text);
        }
    }
    use time::macros::datetime;
    use time::PrimitiveDateTime;

    /// Milliseconds of a UTC time written `2024-03-01 18:00`.
    pub(super) fn at(text: &str) -> i64 {
        let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        let seconds = match PrimitiveDateTime::parse(text, format) {
            Ok(at) => at.assume_utc().unix_timestamp(),
            Err(_) => {
                let format = time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                );
                PrimitiveDateTime::parse(text, format)
                    .unwrap_or_else(|err| panic!("bad test time {text:?}: {err}"))
                    .assume_utc()
                    .unix_timestamp()
            }
        };
        seconds * 1000
    }

    pub(super) fn window(text: &str) -> FreezeWindow {
        FreezeWindow::parse(text).unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    /// `active_at` for each (window, now, expected end or "-").
    fn check_active(cases: &[(&str, &str, &str)]) {
        for (text, now, expected) in cases {
            let got = window(text).active_at(at(now)).map(format_utc);
            let expected = (*expected != "-").then(|| format!("{expected} UTC"));
            assert_eq!(got, expected, "{text:?} at {now}");
        }
    }

    #[test]
    fn test_clock_helper() {
        assert_eq!(
            at("2024-03-01 18:00"),
            datetime!(2024-03-01 18:00 UTC).unix_timestamp() * 1000
        );
        assert_eq!(format_utc(at("2024-03-01 18:00")), "2024-03-01 18:00 UTC");
        assert_eq!(
            format_utc(at("2024-03-01 18:00:07")),
            "2024-03-01 18:00:07 UTC"
        );
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59 UTC");
        assert!(format_utc(i64::MAX).contains("ms after"));
    }

    #[test]
    fn weekend_window() {
        // 2024-03-01 is a Friday.
        check_active(&[
            ("0 18 * * FRI 64h", "2024-03-01 17:59", "-"),
            ("0 18 * * FRI 64h", "2024-03-01 18:00", "2024-03-04 10:00"),
            ("0 18 * * FRI 64h", "2024-03-02 12:00", "2024-03-04 10:00"),
            (
                "0 18 * * FRI 64h",
                "2024-03-04 09:59:59",
                "2024-03-04 10:00",
            ),
            ("0 18 * * FRI 64h", "2024-03-04 10:00", "-"),
            ("0 18 * * FRI 64h", "2024-03-06 12:00", "-"),
            ("0 18 * * 5 64h", "2024-03-03 23:00", "2024-03-04 10:00"),
            ("0 18 * * fri 2d16h", "2024-03-03 23:00", "2024-03-04 10:00"),
        ]);
    }

    #[test]
    fn weekday_windows() {
        // Business hours on weekdays; 2024-03-04 is a Monday.
        check_active(&[
            ("0 9 * * MON-FRI 8h", "2024-03-04 08:59", "-"),
            ("0 9 * * MON-FRI 8h", "2024-03-04 09:00", "2024-03-04 17:00"),
            ("0 9 * * MON-FRI 8h", "2024-03-08 16:59", "2024-03-08 17:00"),
            ("0 9 * * MON-FRI 8h", "2024-03-08 17:00", "-"),
            ("0 9 * * MON-FRI 8h", "2024-03-09 10:00", "-"),
            ("0 9 * * 1-5 8h", "2024-03-05 12:00", "2024-03-05 17:00"),
            ("0 9 * * MON,WED,FRI 8h", "2024-03-05 12:00", "-"),
            (
                "0 9 * * MON,WED,FRI 8h",
                "2024-03-06 12:00",
                "2024-03-06 17:00",
            ),
            ("0 9 * * 1-5/2 8h", "2024-03-06 12:00", "2024-03-06 17:00"),
            ("0 9 * * 1-5/2 8h", "2024-03-07 12:00", "-"),
            ("0 9 * * */2 8h", "2024-03-10 12:00", "2024-03-10 17:00"),
            ("0 9 * * */2 8h", "2024-03-11 12:00", "-"),
        ]);
    }

    #[test]
    fn sunday_is_zero_and_seven() {
        // 2024-03-03 is a Sunday.
        for text in [
            "0 0 * * 0 1d",
            "0 0 * * 7 1d",
            "0 0 * * SUN 1d",
            "0 0 * * sun 1d",
            "0 0 * * 6-7 1d",
            "0 0 * * SAT-SUN 1d",
            "0 0 * * FRI-SUN 1d",
            "0 0 * * 0,6 1d",
        ] {
            check_active(&[
                (text, "2024-03-03 12:00", "2024-03-04 00:00"),
                (text, "2024-03-04 12:00", "-"),
            ]);
        }
        assert_eq!(window("0 0 * * 7 1d"), window("0 0 * * 0 1d"));
        assert_eq!(window("0 0 * * 6-7 1d"), window("0 0 * * SAT,SUN 1d"));
    }

    #[test]
    fn month_boundaries_and_leap_days() {
        check_active(&[
            // The last days of a month, into the next one.
            ("0 0 31 * * 2d", "2024-04-01 12:00", "2024-04-02 00:00"),
            ("0 0 31 * * 2d", "2024-05-01 12:00", "-"), // April has 30 days
            ("0 22 28-31 * * 4h", "2024-03-01 01:00", "2024-03-01 02:00"),
            ("0 22 29-31 * * 4h", "2024-03-01 01:00", "2024-03-01 02:00"),
            ("0 22 29-31 * * 4h", "2023-03-01 01:00", "-"),
            ("0 22 28-31 * * 4h", "2024-02-29 23:00", "2024-03-01 02:00"),
            ("0 22 28-31 * * 4h", "2023-03-01 01:00", "2023-03-01 02:00"),
            // Year end.
            ("0 0 24 DEC * 10d", "2025-01-02 12:00", "2025-01-03 00:00"),
            ("0 0 24 12 * 10d", "2025-01-03 00:00", "-"),
            ("0 0 24 DEC * 10d", "2024-12-23 23:59", "-"),
            // Leap days: 29 February only in leap years, found a year later at most.
            ("0 0 29 FEB * 1d", "2024-02-29 23:59", "2024-03-01 00:00"),
            ("0 0 29 FEB * 1d", "2023-02-28 12:00", "-"),
            ("0 0 29 2 * 2d", "2024-03-01 12:00", "2024-03-02 00:00"),
            ("0 12 1 MAR * 1h", "2024-03-01 12:30", "2024-03-01 13:00"),
            ("0 12 1 MAR * 1h", "2023-03-01 12:30", "2023-03-01 13:00"),
            (
                "0 12 1 JAN-MAR * 1h",
                "2023-02-01 12:30",
                "2023-02-01 13:00",
            ),
            ("0 12 1 JAN-MAR * 1h", "2023-04-01 12:30", "-"),
        ]);
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // 2024-03-01 is a Friday, 2024-03-13 a Wednesday, 2024-03-15 a Friday.
        check_active(&[
            // Both restricted: either matches.
            ("0 0 13 * FRI 1d", "2024-03-13 12:00", "2024-03-14 00:00"),
            ("0 0 13 * FRI 1d", "2024-03-15 12:00", "2024-03-16 00:00"),
            ("0 0 13 * FRI 1d", "2024-03-14 12:00", "-"),
            // Day of week is `*`: the day of month alone decides.
            ("0 0 13 * * 1d", "2024-03-15 12:00", "-"),
            // Day of month is `*`: the day of week alone decides.
            ("0 0 * * FRI 1d", "2024-03-13 12:00", "-"),
            // A star with a step still counts as `*`: both must match.
            ("0 0 */2 * FRI 1d", "2024-03-01 12:00", "2024-03-02 00:00"),
            ("0 0 */2 * FRI 1d", "2024-03-15 12:00", "2024-03-16 00:00"),
            ("0 0 */2 * FRI 1d", "2024-03-08 12:00", "-"),
            ("0 0 */2 * FRI 1d", "2024-03-13 12:00", "-"),
            // Without the star, odd days or Fridays.
            (
                "0 0 1-31/2 * FRI 1d",
                "2024-03-08 12:00",
                "2024-03-09 00:00",
            ),
            (
                "0 0 1-31/2 * FRI 1d",
                "2024-03-13 12:00",
                "2024-03-14 00:00",
            ),
            ("0 0 1-31/2 * FRI 1d", "2024-03-12 12:00", "-"),
        ]);
    }

    #[test]
    fn hours_minutes_and_overlaps() {
        check_active(&[
            ("*/15 * * * * 5m", "2024-03-01 10:14", "-"),
            ("*/15 * * * * 5m", "2024-03-01 10:15", "2024-03-01 10:20"),
            ("*/15 * * * * 5m", "2024-03-01 10:19:59", "2024-03-01 10:20"),
            ("*/15 * * * * 5m", "2024-03-01 10:20", "-"),
            ("30 8-10 * * * 45m", "2024-03-01 10:59", "2024-03-01 11:15"),
            ("30 8-10 * * * 45m", "2024-03-01 08:10", "-"),
            ("30 8-10 * * * 45m", "2024-03-01 09:10", "2024-03-01 09:15"),
            ("0,30 12 * * * 10m", "2024-03-01 12:35", "2024-03-01 12:40"),
            ("0 22 * * * 4h", "2024-03-02 01:00", "2024-03-02 02:00"),
            ("0 22 * * * 4h", "2024-03-01 21:59", "-"),
            ("59 23 * * * 2m", "2024-03-02 00:00", "2024-03-02 00:01"),
            (
                "0 0 * * * 90s",
                "2024-03-02 00:01:29",
                "2024-03-02 00:01:30",
            ),
            // Starts every hour, each lasting two: the latest start gives the end.
            ("0 * * * * 2h", "2024-03-01 10:30", "2024-03-01 12:00"),
            // The search looks back as far as the duration, and no further.
            ("0 0 1 * * 31d", "2024-03-31 23:59", "2024-04-01 00:00"),
            ("0 0 1 * * 30d", "2024-03-31 00:00", "-"),
            ("0 0 1 JAN * 31d", "2024-02-01 00:00", "-"),
            ("0 0 1 JAN * 31d", "2024-01-31 23:59", "2024-02-01 00:00"),
        ]);
    }

    #[test]
    fn times_far_from_now() {
        check_active(&[
            ("0 0 * * * 1h", "1969-12-31 00:30", "1969-12-31 01:00"),
            ("0 0 1 1 * 1h", "1970-01-01 00:30", "1970-01-01 01:00"),
            ("0 0 * * * 1h", "9999-12-31 00:30", "9999-12-31 01:00"),
        ]);
        let w = window("* * * * * 31d");
        for now in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
            assert_eq!(w.active_at(now), None, "{now}");
        }
    }

    /// The naive answer: every minute back from `now` for the window's duration.
    fn naive_active_at(window: &FreezeWindow, now_ms: i64) -> Option<i64> {
        let duration_ms = window.duration().as_millis() as i64;
        let now = now_ms.div_euclid(MINUTE_MS);
        let cron = window.cron();
        let field = |kind: Kind| cron.field(kind);
        (now - duration_ms / MINUTE_MS - 1..=now)
            .rev()
            .find(|&minute| {
                let at = time::OffsetDateTime::from_unix_timestamp(minute * 60).unwrap();
                let dom = field(Kind::DayOfMonth).has(u32::from(at.day()));
                let dow =
                    field(Kind::DayOfWeek).has(u32::from(at.weekday().number_days_from_sunday()));
                let day = if field(Kind::DayOfMonth).star || field(Kind::DayOfWeek).star {
                    dom && dow
                } else {
                    dom || dow
                };
                day && field(Kind::Minute).has(u32::from(at.minute()))
                    && field(Kind::Hour).has(u32::from(at.hour()))
                    && field(Kind::Month).has(u32::from(u8::from(at.month())))
            })
            .map(|start| start * MINUTE_MS + duration_ms)
            .filter(|&end| end > now_ms)
    }

    #[test]
    fn agrees_with_a_minute_by_minute_search() {
        let windows = [
            "0 18 * * FRI 64h",
            "*/7 */5 * * * 3m",
            "15,45 9-17 * * MON-FRI 20m",
            "0 0 1,15 * MON 1d",
            "0 0 */2 * SAT 2d",
            "30 23 28-31 * * 3h",
            "0 12 29 FEB * 1d",
            "59 23 31 DEC * 1h",
            "0 6 * JAN,JUL SUN 36h",
            "* * * * * 1m",
            "0 0 1 * * 31d",
        ];
        // A fixed pseudo-random walk over four years, seconds included.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let start = at("2023-01-01 00:00");
        let span = at("2027-01-01 00:00") - start;
        for text in windows {
            let w = window(text);
            for _ in 0..150 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let now = start + (state % span as u64) as i64;
                assert_eq!(
                    w.active_at(now),
                    naive_active_at(&w, now),
                    "{text} at {}",
                    format_utc(now)
                );
            }
        }
    }

    #[test]
    fn canonical_form_round_trips() {
        let cases = [
            ("0 18 * * FRI 64h", "0 18 * * FRI 2d16h"),
            ("0 18 * * fri 2d16h", "0 18 * * FRI 2d16h"),
            ("  0   18 * *  5  64h ", "0 18 * * FRI 2d16h"),
            ("0 9 * * 1-5 8h", "0 9 * * MON-FRI 8h"),
            ("0 9 * * MON,TUE 8h", "0 9 * * MON,TUE 8h"),
            ("0 0 * * 0,6 1d", "0 0 * * SAT,SUN 1d"),
            ("0 0 * * 5-7 1d", "0 0 * * FRI-SUN 1d"),
            ("0 0 * * 0-6 1d", "0 0 * * MON-SUN 1d"),
            ("0 0 * * */1 1d", "0 0 * * * 1d"),
            ("0 0 * * */2 1d", "0 0 * * */2 1d"),
            ("0 0 1-31 * * 1d", "0 0 1-31 * * 1d"),
            ("0 0 */2 * * 1d", "0 0 */2 * * 1d"),
            ("0 0 */30 * * 1d", "0 0 */30 * * 1d"),
            ("0 0 1-31/2 * MON 1d", "0 0 1-31/2 * MON 1d"),
            ("*/15 * * * * 5m", "*/15 * * * * 5m"),
            ("0,15,30,45 * * * * 5m", "*/15 * * * * 5m"),
            ("5-50/15 * * * * 5m", "5-50/15 * * * * 5m"),
            ("0-59 0-23 * 1-12 * 1m", "* * * * * 1m"),
            ("1,2,3,7,8 1,2 * * * 60s", "1-3,7,8 1,2 * * * 1m"),
            ("0 0 1 jan,Feb,MAR,12 * 1d", "0 0 1 JAN-MAR,DEC * 1d"),
            ("0 0 1 */3 * 1d", "0 0 1 */3 * 1d"),
            ("0 0 1 1,4,7,10 * 1d", "0 0 1 */3 * 1d"),
            ("0 0 * * * 90s", "0 0 * * * 1m30s"),
            ("0 0 * * * 1d1h1m1s", "0 0 * * * 1d1h1m1s"),
            ("0 0 * * * 31d", "0 0 * * * 31d"),
            ("0 0 * * * 744h", "0 0 * * * 31d"),
        ];
        for (input, canonical) in cases {
            let parsed = window(input);
            assert_eq!(parsed.to_string(), canonical, "{input}");
            assert_eq!(window(canonical), parsed, "{input}");
            assert_eq!(canonical.parse::<FreezeWindow>(), Ok(parsed), "{input}");
        }
    }

    #[test]
    fn the_duration_is_everything_after_the_five_cron_fields_spaces_included() {
        for (text, written) in [
            ("0 18 * * FRI 1h 30m", "0 18 * * FRI 1h30m"),
            ("0 18 * * FRI 10 s", "0 18 * * FRI 10s"),
            ("0 18 * * FRI   2d 16h  ", "0 18 * * FRI 2d16h"),
        ] {
            let window = FreezeWindow::parse(text).unwrap();
            assert_eq!(window.to_string(), written, "{text:?}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        // Each bad input with a piece of the message it must carry.
        let cases = [
            ("", "empty freeze window"),
            ("   ", "empty freeze window"),
            (
                "0 18 * * FRI",
                "5 fields (is the duration missing?), it needs 6",
            ),
            ("0 18 * FRI 64h", "5 fields"),
            ("0 18 * * FRI 64h extra", "invalid duration \"64h extra\""),
            ("64h", "1 fields"),
            ("60 18 * * FRI 64h", "minute 60 is out of range 0-59"),
            ("0 24 * * FRI 64h", "hour 24 is out of range 0-23"),
            ("0 18 0 * * 64h", "day-of-month 0 is out of range 1-31"),
            ("0 18 32 * * 64h", "day-of-month 32 is out of range 1-31"),
            ("0 18 * 13 * 64h", "month 13 is out of range 1-12"),
            ("0 18 * 0 * 64h", "month 0 is out of range 1-12"),
            ("0 18 * * 8 64h", "day-of-week 8 is out of range 0-7"),
            (
                "0 18 * * 99999999999 64h",
                "day-of-week 99999999999 is out of range",
            ),
            (
                "0 18 * * FRIDAY 64h",
                "\"FRIDAY\" is not a number from 0 to 7 or a name MON-SUN",
            ),
            ("0 18 * * -1 64h", "day-of-week range is missing a value"),
            ("0 18 * JANUARY * 64h", "or a name JAN-DEC"),
            ("0 18 * * JAN 64h", "day-of-week \"JAN\" is not a number"),
            (
                "0 FRI * * * 64h",
                "hour \"FRI\" is not a number from 0 to 23",
            ),
            (
                "x 18 * * * 64h",
                "minute \"x\" is not a number from 0 to 59",
            ),
            ("+5 18 * * * 64h", "minute \"+5\" is not a number"),
            ("0 18 * * FRI-MON 64h", "range \"FRI-MON\" runs backwards"),
            (
                "30-10 18 * * * 64h",
                "minute range \"30-10\" runs backwards",
            ),
            ("0 18 5- * * 64h", "day-of-month range is missing a value"),
            (
                "*/0 18 * * * 64h",
                "minute step \"0\" in \"*/0\" is not valid",
            ),
            ("*/60 18 * * * 64h", "a step is a number from 1 to 59"),
            ("0 */24 * * * 64h", "a step is a number from 1 to 23"),
            ("0 18 * * */7 64h", "a step is a number from 1 to 6"),
            ("*/x 18 * * * 64h", "minute step \"x\""),
            ("*/+5 18 * * * 64h", "minute step \"+5\""),
            ("*/ 18 * * * 64h", "minute step \"\""),
            ("5/15 18 * * * 64h", "needs a range before the `/`"),
            ("*/5/5 18 * * * 64h", "minute step \"5/5\""),
            (
                "1,,2 18 * * * 64h",
                "minute field \"1,,2\" has an empty list item",
            ),
            ("*,5 18 * * * 64h", "mixes `*` into a list"),
            ("0 18 * * FRI 64", "invalid duration \"64\""),
            ("0 18 * * FRI 1w", "invalid duration \"1w\""),
            ("0 18 * * FRI -1h", "invalid duration \"-1h\""),
            ("0 18 * * FRI 0h", "a window of 0h never freezes anything"),
            ("0 18 * * FRI 32d", "32d is longer than the 31 days"),
            ("0 18 * * FRI 744h1s", "longer than the 31 days"),
            ("0 0 30 FEB * 1h", "would never start"),
            ("0 0 31 APR,JUN,SEP,NOV * 1h", "would never start"),
            ("0 0 30-31 2 * 1h", "would never start"),
            ("0 0 30 FEB */2 1h", "would never start"),
        ];
        for (input, expected) in cases {
            let err = FreezeWindow::parse(input).expect_err(input);
            assert!(err.contains(expected), "{input:?}: {err}");
            assert!(
                err.contains("write it like"),
                "{input:?} shows no example: {err}"
            );
        }
    }

    #[test]
    fn possible_but_rare_dates_are_accepted() {
        for text in [
            "0 0 29 FEB * 1h",
            "0 0 30 FEB MON 1h", // either rule: every Monday
            "0 0 31 * * 1h",
            "0 0 29 2 MON 1h",
        ] {
            window(text);
        }
        // A star day-of-week: 29 February whatever its weekday, found once in four years.
        let w = window("0 0 29 FEB */1 1h");
        assert_eq!(
            w.active_at(at("2044-02-29 00:30")),
            Some(at("2044-02-29 01:00"))
        );
    }
}
