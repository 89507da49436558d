//! How long ago stored times were, judged on a clock that does not jump.
//!
//! The times ferry stores are wall-clock milliseconds: they are shown to people and shared
//! between servers. Subtracting one from the wall clock's "now" to time something out goes
//! wrong when the machine's clock is set: forward, every target looks silent and every
//! running deployment fails at once; back, every timeout waits out the jump. So a watcher
//! reads a stored time's age off the wall clock once, when it first sees the time (or sees
//! it change), and from then on lets it grow with the steady (monotonic) clock alone. A jump
//! between two passes of the watcher moves nothing it has seen.

use std::collections::HashMap;
use std::hash::Hash;

/// One reading of both clocks: the wall clock, which people set and which may jump, and
/// the steady clock, which only moves forward at the pace of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Milliseconds since some fixed point of this process.
    pub steady_ms: i64,
}

/// A difference between the two clocks' progress smaller than this is the wall clock being
/// slewed or the reader being slow, not a jump.
pub const JUMP_TOLERANCE_MS: i64 = 1_000;

/// How far the wall clock jumped between two readings (negative: back), if it moved more
/// than [`JUMP_TOLERANCE_MS`] off the steady clock's pace.
pub fn jump(before: Now, after: Now) -> Option<i64> {
    let off = (after.wall_ms - before.wall_ms) - (after.steady_ms - before.steady_ms);
    (off.abs() > JUMP_TOLERANCE_MS).then_some(off)
}

/// The ages of the stored times a watcher looks at in passes, each under a key of its own.
#[derive(Debug)]
pub struct Ages<K> {
    sightings: HashMap<K, Sighting>,
    pass: u64,
}

/// When a stored time was first seen as it is.
#[derive(Clone, Copy, Debug)]
struct Sighting {
    stored_ms: i64,
    /// Its age then, by the wall clock (never negative: a time from the future is new).
    age_ms: i64,
    steady_ms: i64,
    /// The last pass that asked about it.
    pass: u64,
}

impl<K: Eq + Hash> Default for Ages<K> {
    fn default() -> Self {
        Ages {
            sightings: HashMap::new(),
            pass: 0,
        }
    }
}

impl<K: Eq + Hash> Ages<K> {
    /// How long ago `stored_ms`, the time kept under `key`, was at `now`: by the wall clock
    /// when it is new to the watcher, plus the steady clock's progress since.
    pub fn age_ms(&mut self, key: K, stored_ms: i64, now: Now) -> i64 {
        let pass = self.pass;
        let sighting = self
            .sightings
            .entry(key)
            .and_modify(|seen| {
                if seen.stored_ms != stored_ms {
                    *seen = Sighting::new(stored_ms, now, pass);
                }
                seen.pass = pass;
            })
            .or_insert_with(|| Sighting::new(stored_ms, now, pass));
        sighting.age_ms + (now.steady_ms - sighting.steady_ms)
    }

    /// `stored_ms` plus its age: the "now" to judge it by, for rules that take a stored time
    /// and the time it is.
    pub fn now_for(&mut self, key: K, stored_ms: i64, now: Now) -> i64 {
        stored_ms + self.age_ms(key, stored_ms, now)
    }

    /// Ends a pass that looked at everything it watches: what it did not ask about is gone
    /// (a finished deployment, a removed target) and is forgotten.
    pub fn end_pass(&mut self) {
        let pass = self.pass;
        self.sightings.retain(|_, seen| seen.pass == pass);
        self.pass += 1;
    }

    /// How many stored times are remembered.
    pub fn len(&self) -> usize {
        self.sightings.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.sightings.is_empty()
    }
}

impl Sighting {
    fn new(stored_ms: i64, now: Now, pass: u64) -> Sighting {
        Sighting {
            stored_ms,
            age_ms: (now.wall_ms - stored_ms).max(0),
            steady_ms: now.steady_ms,
            pass,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn at(wall_ms: i64, steady_ms: i64) -> Now {
        Now { wall_ms, steady_ms }
    }

    #[test]
    fn an_age_is_read_off_the_wall_clock_once_then_grows_with_the_steady_clock() {
        // (wall, steady) readings of one watcher asking about a time stored at 10_000, and
        // the age it answers.
        for (case, readings, expected) in [
            (
                "no jump",
                vec![at(12_000, 0), at(13_000, 1_000), at(20_000, 8_000)],
                vec![2_000, 3_000, 10_000],
            ),
            (
                "forward an hour",
                vec![
                    at(12_000, 0),
                    at(12_000 + HOUR, 1_000),
                    at(14_000 + HOUR, 3_000),
                ],
                vec![2_000, 3_000, 5_000],
            ),
            (
                "back an hour",
                vec![
                    at(12_000, 0),
                    at(13_000 - HOUR, 1_000),
                    at(15_000 - HOUR, 3_000),
                ],
                vec![2_000, 3_000, 5_000],
            ),
            (
                "stored in the future",
                vec![at(9_000, 0), at(9_500, 500)],
                vec![0, 500],
            ),
        ] {
            let mut ages = Ages::default();
            let answered: Vec<i64> = readings
                .into_iter()
                .map(|now| ages.age_ms("target", 10_000, now))
                .collect();
            assert_eq!(answered, expected, "{case}");
        }
    }

    #[test]
    fn a_stored_time_that_changes_is_seen_anew() {
        let mut ages = Ages::default();
        assert_eq!(ages.age_ms("t", 10_000, at(12_000, 0)), 2_000);
        // The clock jumped an hour forward; the next heartbeat is stored by the new clock.
        assert_eq!(ages.age_ms("t", 10_000, at(13_000 + HOUR, 1_000)), 3_000);
        assert_eq!(
            ages.age_ms("t", 12_500 + HOUR, at(13_000 + HOUR, 1_000)),
            500
        );
        assert_eq!(
            ages.now_for("t", 12_500 + HOUR, at(14_000 + HOUR, 2_000)),
            14_000 + HOUR
        );
        // Keys are independent.
        assert_eq!(
            ages.age_ms("u", 10_000, at(14_000 + HOUR, 2_000)),
            HOUR + 4_000
        );
    }

    #[test]
    fn a_pass_forgets_what_it_did_not_ask_about() {
        let mut ages = Ages::default();
        ages.age_ms(1, 0, at(0, 0));
        ages.age_ms(2, 0, at(0, 0));
        ages.end_pass();
        assert_eq!(ages.len(), 2);
        ages.age_ms(1, 0, at(HOUR, 1_000));
        ages.end_pass();
        assert_eq!(ages.len(), 1);
        // Still the first sighting: the jump in between moved nothing.
        assert_eq!(ages.age_ms(1, 0, at(HOUR, 2_000)), 2_000);
        ages.end_pass();
        ages.end_pass();
        assert!(ages.is_empty());
    }

    #[test]
    fn a_jump_is_the_wall_clock_leaving_the_steady_clocks_pace() {
        for (before, after, jumped) in [
            (at(0, 0), at(1_000, 1_000), None),
            (at(0, 0), at(1_900, 1_000), None),
            (at(0, 0), at(0, 1_000), None),
            (at(0, 0), at(HOUR, 1_000), Some(HOUR - 1_000)),
            (at(HOUR, 0), at(0, 1_000), Some(-HOUR - 1_000)),
            (at(0, 0), at(3_001, 1_000), Some(2_001)),
        ] {
            assert_eq!(jump(before, after), jumped, "{before:?} {after:?}");
        }
    }
}
