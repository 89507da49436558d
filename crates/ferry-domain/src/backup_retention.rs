//! Which application backups retention removes: everything but the newest `last`, the
//! newest of each of the last `days` days and the newest of each of the last `weeks` weeks
//! (`ferry app set APP --backup-keep 7,7d,4w`). Days and weeks are UTC; weeks start on
//! Monday.

use std::fmt;
use std::str::FromStr;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How many application backups to keep, as `--backup-keep` writes it: comma-separated
/// `N` (the newest N), `Nd` (one a day for N days) and `Nw` (one a week for N weeks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackupKeep {
    pub last: u32,
    pub days: u32,
    pub weeks: u32,
}

impl BackupKeep {
    /// What an application keeps until `--backup-keep` says otherwise.
    pub const DEFAULT: BackupKeep = BackupKeep {
        last: 7,
        days: 7,
        weeks: 4,
    };

    /// The most of each a policy may name: ten years of weeks, a few thousand backups.
    const MAX: u32 = 10_000;
}

impl Default for BackupKeep {
    fn default() -> BackupKeep {
        BackupKeep::DEFAULT
    }
}

impl fmt::Display for BackupKeep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [(self.last, ""), (self.days, "d"), (self.weeks, "w")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| format!("{n}{unit}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for BackupKeep {
    type Err = String;

    fn from_str(text: &str) -> Result<BackupKeep, String> {
        let usage = "write the newest N, one a day for N days and one a week for N weeks as \
                     N, Nd and Nw, separated by commas, like 7,7d,4w";
        let mut keep = BackupKeep {
            last: 0,
            days: 0,
            weeks: 0,
        };
        let mut seen = [false; 3];
        for part in text.split(',').map(str::trim) {
            let (digits, slot) = match part.as_bytes().last() {
                Some(b'd') => (&part[..part.len() - 1], 1),
                Some(b'w') => (&part[..part.len() - 1], 2),
                _ => (part, 0),
            };
            let n: u32 = digits
                .parse()
                .ok()
                .filter(|n| (1..=BackupKeep::MAX).contains(n))
                .ok_or_else(|| {
                    format!(
                        "{part:?} in {text:?} is not a count from 1 to {}: {usage}",
                        BackupKeep::MAX
                    )
                })?;
            if std::mem::replace(&mut seen[slot], true) {
                return Err(format!(
                    "{part:?} in {text:?} repeats a kind of point: {usage}"
                ));
            }
            *[&mut keep.last, &mut keep.days, &mut keep.weeks][slot] = n;
        }
        Ok(keep)
    }
}

/// A complete backup as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainedBackup {
    pub id: i64,
    pub created_ms: i64,
    /// Kept whatever its age (a restore from it is under way), or not.
    pub pinned: bool,
}

/// The ids of `backups` (one application, environment and target, any order) that `keep`
/// does not keep at `now_ms`, oldest first. The newest backup is always kept.
pub fn backups_to_remove(backups: &[RetainedBackup], keep: BackupKeep, now_ms: i64) -> Vec<i64> {
    let mut newest_first: Vec<&RetainedBackup> = backups.iter().collect();
    newest_first.sort_by_key(|b| std::cmp::Reverse((b.created_ms, b.id)));
    let today = now_ms.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: shifting by three days makes weeks start on Monday.
    let week_of = |day: i64| (day + 3).div_euclid(7);
    let this_week = week_of(today);
    let mut days_kept = std::collections::BTreeSet::new();
    let mut weeks_kept = std::collections::BTreeSet::new();
    let mut removed = Vec::new();
    for (index, backup) in newest_first.iter().enumerate() {
        let day = backup.created_ms.div_euclid(DAY_MS);
        let week = week_of(day);
        // Each rule keeps the newest backup of its day or week: the first met here.
        let by_day = today - day < i64::from(keep.days) && days_kept.insert(day);
        let by_week = this_week - week < i64::from(keep.weeks) && weeks_kept.insert(week);
        let by_count = index < keep.last.max(1) as usize;
        if !(by_count || by_day || by_week || backup.pinned) {
            removed.push(backup.id);
        }
    }
    removed.reverse();
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_policies_read_and_print() {
        for (text, expected) in [
            ("7,7d,4w", Ok((7, 7, 4))),
            ("7d,4w", Ok((0, 7, 4))),
            (" 3 ", Ok((3, 0, 0))),
            ("4w,2", Ok((2, 0, 4))),
            ("0", Err("not a count from 1")),
            ("7x", Err("not a count from 1")),
            ("", Err("not a count from 1")),
            ("3,4", Err("repeats a kind of point")),
            ("1d,2d", Err("repeats a kind of point")),
            ("99999", Err("not a count from 1 to 10000")),
        ] {
            match (text.parse::<BackupKeep>(), expected) {
                (Ok(keep), Ok((last, days, weeks))) => {
                    assert_eq!(keep, BackupKeep { last, days, weeks }, "{text}");
                    assert_eq!(keep.to_string().parse::<BackupKeep>(), Ok(keep), "{text}");
                }
                (Err(error), Err(reason)) => assert!(error.contains(reason), "{text}: {error}"),
                (got, want) => panic!("{text}: {got:?}, expected {want:?}"),
            }
        }
        assert_eq!(BackupKeep::DEFAULT.to_string(), "7,7d,4w");
    }

    /// `backups` as (id, days before now, hour of that day); `now` is day 20,003 (a
    /// Monday: 20,003 + 3 is a multiple of 7) at 12:00.
    fn check(backups: &[(i64, i64, i64)], keep: &str, pinned: &[i64], expected: &[i64]) {
        let today = 20_003;
        assert_eq!((today + 3) % 7, 0, "day 20,003 starts a week");
        let hour = 60 * 60 * 1000;
        let backups: Vec<RetainedBackup> = backups
            .iter()
            .map(|&(id, days_ago, at)| RetainedBackup {
                id,
                created_ms: (today - days_ago) * DAY_MS + at * hour,
                pinned: pinned.contains(&id),
            })
            .collect();
        let now = today * DAY_MS + 12 * hour;
        assert_eq!(
            backups_to_remove(&backups, keep.parse().unwrap(), now),
            expected,
            "keep {keep}"
        );
    }

    #[test]
    fn retention() {
        check(&[], "3", &[], &[]);
        // The newest N.
        check(
            &[(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 0, 4)],
            "2",
            &[],
            &[1, 2],
        );
        // One a day: the newest of each of the last 2 days (today and yesterday).
        check(
            &[(1, 2, 9), (2, 1, 8), (3, 1, 9), (4, 0, 8), (5, 0, 9)],
            "2d",
            &[],
            &[1, 2, 4],
        );
        // One a week: day 0 is a Monday, days 1..=7 the week before.
        check(
            &[(1, 8, 1), (2, 7, 1), (3, 3, 1), (4, 1, 1), (5, 0, 1)],
            "2w",
            &[],
            &[1, 2, 3],
        );
        // Combined: a backup kept by any rule stays.
        check(
            &[
                (1, 30, 1),
                (2, 10, 1),
                (3, 2, 1),
                (4, 1, 1),
                (5, 1, 2),
                (6, 0, 1),
            ],
            "1,2d,2w",
            &[],
            &[1, 2, 3, 4],
        );
        // The newest stays even when no rule reaches it; a pinned one stays too.
        check(&[(1, 40, 1), (2, 30, 1)], "1d", &[], &[1]);
        check(&[(1, 40, 1), (2, 30, 1)], "1d", &[1], &[]);
        // Order of the input does not matter; ties at one time go by id.
        check(&[(3, 0, 1), (1, 0, 1), (2, 0, 1)], "1", &[], &[1, 2]);
    }
}
