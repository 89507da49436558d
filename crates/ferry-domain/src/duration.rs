//! Durations as people write them: `500ms`, `90s`, `15m`, `2h`, `1d`, `1h30m`. The one
//! syntax of every duration ferry reads, on the command line, in the API and in a release's
//! `ferry.toml`; the README's "Durations" section describes it for users.

use std::time::Duration;

/// Shown with every refusal, so the fix is one glance away.
const EXAMPLES: &str = "write it like 500ms, 30s, 15m, 2h, 1d or 1h30m";

/// The units a part may have, and their length.
const UNITS: [(&str, Duration); 5] = [
    ("ms", Duration::from_millis(1)),
    ("s", Duration::from_secs(1)),
    ("m", Duration::from_secs(60)),
    ("h", Duration::from_secs(3600)),
    ("d", Duration::from_secs(86_400)),
];

/// Parses a duration: one or more parts, each a whole number followed by a unit (`ms`, `s`,
/// `m`, `h` or `d`), added up. Spaces around the text, between a number and its unit and
/// between parts are ignored. Zero is a duration; settings that need more say so themselves.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = |why: String| format!("invalid duration {text:?}: {why}; {EXAMPLES}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let not_allowed = |c: char| {
            invalid(format!(
                "{c:?} is not allowed: a duration is whole numbers, each with a unit"
            ))
        };
        let (number, after) = split_prefix(rest, |c| c.is_ascii_digit());
        if number.is_empty() {
            let (unit, _) = split_prefix(rest, char::is_alphabetic);
            return Err(match rest.chars().next() {
                Some(c) if unit.is_empty() => not_allowed(c),
                _ => invalid(format!("the unit {unit:?} has no number before it")),
            });
        }
        let (unit, after) = split_prefix(after.trim_start(), char::is_alphabetic);
        if unit.is_empty() {
            return Err(match after.chars().next() {
                Some(c) if !c.is_ascii_digit() => not_allowed(c),
                _ => invalid(format!(
                    "a number alone is not a duration, give {number} a unit"
                )),
            });
        }
        let Some((_, unit_length)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(invalid(format!(
                "{unit:?} is not a unit: use ms, s, m, h or d"
            )));
        };
        let too_long = || invalid("it is too long".to_owned());
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| times(*unit_length, n))
            .ok_or_else(too_long)?;
        total = total.checked_add(part).ok_or_else(too_long)?;
        rest = after.trim_start();
    }
    Ok(total)
}

/// `unit` × `n`, if it fits a [`Duration`].
fn times(unit: Duration, n: u64) -> Option<Duration> {
    if unit < Duration::from_secs(1) {
        // Only `ms` is shorter than a second, and any count of milliseconds fits.
        return Some(Duration::from_millis(n));
    }
    n.checked_mul(unit.as_secs()).map(Duration::from_secs)
}

/// The longest prefix of `text` whose characters all match, and the rest.
fn split_prefix(text: &str, matches: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(|c| !matches(c)).unwrap_or(text.len()))
}

/// Writes a duration the way [`parse_duration`] reads it, largest units first: `1d2h`,
/// `15m`, `1s500ms`, `0s`; below a millisecond counts as nothing.
pub fn format_duration(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (suffix, unit) in UNITS.iter().rev() {
        let unit = unit.as_millis();
        if millis >= unit {
            text.push_str(&format!("{}{suffix}", millis / unit));
            millis %= unit;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_they_are_read() {
        for (millis, text) in [
            (0, "0s"),
            (1, "1ms"),
            (999, "999ms"),
            (1500, "1s500ms"),
            (59_000, "59s"),
            (60_000, "1m"),
            (900_000, "15m"),
            (5_400_000, "1h30m"),
            (86_400_000, "1d"),
            (93_784_005, "1d2h3m4s5ms"),
            (7 * 86_400_000, "7d"),
        ] {
            assert_eq!(format_duration(Duration::from_millis(millis)), text);
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(millis)));
        }
        assert_eq!(format_duration(Duration::from_micros(999)), "0s");
    }

    #[test]
    fn accepted() {
        let max_seconds = u64::MAX.to_string() + "s";
        for (text, millis) in [
            // One part of each unit.
            ("0s", 0),
            ("0ms", 0),
            ("500ms", 500),
            ("30s", 30_000),
            ("15m", 900_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("007s", 7_000),
            // Parts add up, in any order, repeated or not.
            ("1h30m", 5_400_000),
            ("1d2h3m4s5ms", 93_784_005),
            ("1m500ms", 60_500),
            ("30s1h", 3_630_000),
            ("1h1h", 7_200_000),
            // Spaces around the text, before a unit and between parts.
            (" 10s ", 10_000),
            ("\t2m\n", 120_000),
            ("10 s", 10_000),
            ("500 ms", 500),
            ("1h 30m", 5_400_000),
            ("1 h 30 m", 5_400_000),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text:?}"
            );
        }
        assert_eq!(
            parse_duration(&max_seconds),
            Ok(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn refused() {
        let max_seconds = u64::MAX.to_string() + "s";
        let past_max = format!("{max_seconds}1s");
        for (text, why) in [
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("30", "a number alone is not a duration, give 30 a unit"),
            ("1h30", "a number alone is not a duration, give 30 a unit"),
            ("1 0s", "a number alone is not a duration, give 1 a unit"),
            ("s", "the unit \"s\" has no number before it"),
            ("ms", "the unit \"ms\" has no number before it"),
            ("1x", "\"x\" is not a unit"),
            ("1w", "\"w\" is not a unit"),
            ("1y", "\"y\" is not a unit"),
            ("1H", "\"H\" is not a unit"),
            ("1sec", "\"sec\" is not a unit"),
            ("1 days", "\"days\" is not a unit"),
            ("10 days", "\"days\" is not a unit"),
            ("1µs", "\"µs\" is not a unit"),
            ("-1s", "'-' is not allowed"),
            ("+1s", "'+' is not allowed"),
            ("1.5h", "'.' is not allowed"),
            ("1.5s", "'.' is not allowed"),
            ("1h,30m", "',' is not allowed"),
            ("99999999999999999999s", "it is too long"),
            ("99999999999999999999h", "it is too long"),
            ("213503982334602d", "it is too long"),
            (&past_max, "it is too long"),
        ] {
            let error = parse_duration(text).unwrap_err();
            let prefix = format!("invalid duration {text:?}: ");
            assert!(error.starts_with(&prefix), "{text:?}: {error}");
            assert!(error[prefix.len()..].contains(why), "{text:?}: {error}");
            assert!(error.ends_with(EXAMPLES), "{text:?}: {error}");
        }
    }
}
