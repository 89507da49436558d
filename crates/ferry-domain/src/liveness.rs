//! Whether a target's agent is there: agents send a heartbeat every interval (their
//! long-poll for what to run answers at least that often, and a busy agent sends one of its
//! own), and a target whose agent missed [`MISSED_BEATS`] of them in a row is offline. A new
//! deployment is not sent to an offline target, and a target that goes offline during a
//! deployment fails its step then, not after the much longer silent-target timeout.

use std::time::Duration;

use crate::duration::format_duration;
use crate::freeze::format_utc;
use crate::vocabulary::vocabulary;

/// Heartbeats missed in a row before a target counts as offline.
pub const MISSED_BEATS: i64 = 3;

/// How often agents send a heartbeat unless the server says otherwise.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

vocabulary! {
    /// How a target looks to the server.
    pub enum Health ("target health") {
        /// Its agent was heard from within the last three heartbeats.
        Online = "online",
        /// Its agent has been silent for three heartbeats or more.
        Offline = "offline",
        /// No agent has enrolled as the target yet.
        NotEnrolled = "not_enrolled",
    }
}

/// What a server does with a heartbeat, from when the store last saw the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Seen within the interval: nothing to write yet.
    Known,
    /// Seen one to two intervals ago: due, and safe to write with others a moment later,
    /// since the target stays online for another interval at least.
    Queue,
    /// Never seen, seen two intervals ago or more (the agent is late, the target near
    /// offline), or seen after now (the clock went back): written at once.
    WriteNow,
}

/// The heartbeat agents keep, and what follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Liveness {
    /// How often an agent sends a heartbeat.
    pub heartbeat: Duration,
}

impl Default for Liveness {
    fn default() -> Liveness {
        Liveness {
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

impl Liveness {
    /// The silence after which a target is offline: [`MISSED_BEATS`] heartbeats.
    pub fn offline_after_ms(self) -> i64 {
        MISSED_BEATS * self.heartbeat.as_millis() as i64
    }

    /// The health of a target enrolled at `enrolled_ms` and last heard from at
    /// `last_seen_ms`, at `now_ms`.
    pub fn health(
        self,
        enrolled_ms: Option<i64>,
        last_seen_ms: Option<i64>,
        now_ms: i64,
    ) -> Health {
        match (enrolled_ms, last_seen_ms) {
            (None, _) => Health::NotEnrolled,
            (Some(_), Some(seen)) if now_ms - seen < self.offline_after_ms() => Health::Online,
            _ => Health::Offline,
        }
    }

    /// What to do with a heartbeat heard at `now_ms` from a target the store last saw at
    /// `last_seen_ms`.
    pub fn beat(self, last_seen_ms: Option<i64>, now_ms: i64) -> Beat {
        let every = self.heartbeat.as_millis() as i64;
        match last_seen_ms.map(|seen| now_ms - seen) {
            Some(ago) if (0..every).contains(&ago) => Beat::Known,
            Some(ago) if (every..2 * every).contains(&ago) => Beat::Queue,
            _ => Beat::WriteNow,
        }
    }

    /// When a target last heard from at `last_seen_ms` was last seen, and how long ago at
    /// `now_ms`, for messages about an offline target.
    pub fn last_seen(self, last_seen_ms: Option<i64>, now_ms: i64) -> String {
        match last_seen_ms {
            Some(seen) => {
                let ago = Duration::from_secs((now_ms - seen).max(0) as u64 / 1000);
                format!(
                    "last seen {} ({} ago)",
                    format_utc(seen),
                    format_duration(ago)
                )
            }
            None => "never seen: no agent has enrolled as it yet".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_offline_after_three_missed_heartbeats() {
        let liveness = Liveness {
            heartbeat: Duration::from_secs(5),
        };
        assert_eq!(liveness.offline_after_ms(), 15_000);
        let seen = Some(100_000);
        for (now, health) in [
            (100_000, Health::Online),
            (114_999, Health::Online),
            (115_000, Health::Offline),
            (900_000, Health::Offline),
        ] {
            assert_eq!(liveness.health(Some(1), seen, now), health, "{now}");
        }
        assert_eq!(liveness.health(None, None, 0), Health::NotEnrolled);
        assert_eq!(liveness.health(Some(1), None, 0), Health::Offline);
    }

    #[test]
    fn a_heartbeat_is_written_at_once_only_when_it_changes_how_the_target_looks() {
        let liveness = Liveness {
            heartbeat: Duration::from_secs(5),
        };
        let seen = 100_000;
        for (last_seen, now, beat) in [
            (None, seen, Beat::WriteNow),
            (Some(seen), seen, Beat::Known),
            (Some(seen), seen + 4_999, Beat::Known),
            (Some(seen), seen + 5_000, Beat::Queue),
            (Some(seen), seen + 9_999, Beat::Queue),
            (Some(seen), seen + 10_000, Beat::WriteNow),
            (Some(seen), seen + 60_000, Beat::WriteNow),
            (Some(seen), seen - 1, Beat::WriteNow),
        ] {
            assert_eq!(liveness.beat(last_seen, now), beat, "{last_seen:?} {now}");
        }
        // A queued heartbeat is written a fifth of an interval later at most: the target
        // it was due for is still online then.
        let queued_at = seen + 9_999;
        assert_eq!(
            liveness.health(Some(1), Some(seen), queued_at + 1_000),
            Health::Online
        );
    }

    #[test]
    fn last_seen_says_when_and_how_long_ago() {
        let liveness = Liveness::default();
        let seen = 1_709_316_000_000; // 2024-03-01 18:00 UTC
        assert_eq!(
            liveness.last_seen(Some(seen), seen + 95_000),
            "last seen 2024-03-01 18:00 UTC (1m35s ago)"
        );
        assert!(liveness
            .last_seen(None, 0)
            .contains("no agent has enrolled"));
    }
}
