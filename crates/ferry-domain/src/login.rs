//! Logging in to the dashboard: how someone proved who they are, how long a session lasts,
//! and how many failed attempts are let through before an address or a user name must wait.

use std::collections::HashMap;
use std::hash::Hash;

use crate::vocabulary::vocabulary;

vocabulary! {
    /// How someone proved who they are when they logged in.
    pub enum LoginMethod ("login method") {
        /// Their user name and dashboard password (`ferry user set-password`).
        Password = "password",
        /// Their API token, as the command line uses it.
        Token = "token",
    }
}

/// How long a dashboard session lasts from its login: a working day, then log in again.
pub const SESSION_LIFETIME_MS: i64 = 12 * 60 * 60 * 1000;

/// Failed attempts within [`WINDOW_MS`] let through per key; the next must wait.
pub const ATTEMPTS: usize = 10;

/// The window failed attempts are counted in.
pub const WINDOW_MS: i64 = 60 * 1000;

/// Keys (an address, a user name) a throttle tracks at most; when full, the ones whose
/// failures all left the window are forgotten, then the oldest.
const KEYS_KEPT: usize = 10_000;

/// Counts failed logins per key over a sliding window: at most [`ATTEMPTS`] failures per
/// [`WINDOW_MS`] each. Time arrives as milliseconds; nothing here reads a clock.
#[derive(Debug)]
pub struct Throttle<K> {
    failures: HashMap<K, Vec<i64>>,
}

impl<K> Default for Throttle<K> {
    fn default() -> Self {
        Throttle {
            failures: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// `None` when `key` may try now; else how many milliseconds until it may.
    pub fn wait(&self, key: &K, now_ms: i64) -> Option<i64> {
        let failures = self.failures.get(key)?;
        let recent: Vec<i64> = failures
            .iter()
            .copied()
            .filter(|&at| at > now_ms - WINDOW_MS)
            .collect();
        if recent.len() < ATTEMPTS {
            return None;
        }
        // Once the oldest counted failure leaves the window, one more attempt is let through.
        let oldest = recent[recent.len() - ATTEMPTS];
        Some(oldest + WINDOW_MS - now_ms)
    }

    /// Counts a failed attempt of `key` at `now_ms`.
    pub fn failed(&mut self, key: K, now_ms: i64) {
        if self.failures.len() >= KEYS_KEPT && !self.failures.contains_key(&key) {
            self.forget_before(now_ms - WINDOW_MS);
            if self.failures.len() >= KEYS_KEPT {
                self.failures.clear();
            }
        }
        let failures = self.failures.entry(key).or_default();
        failures.retain(|&at| at > now_ms - WINDOW_MS);
        failures.push(now_ms);
    }

    /// Forgets `key`'s failures: it logged in.
    pub fn succeeded(&mut self, key: &K) {
        self.failures.remove(key);
    }

    /// Forgets every key whose failures all happened at or before `cutoff_ms`.
    fn forget_before(&mut self, cutoff_ms: i64) {
        self.failures
            .retain(|_, failures| failures.iter().any(|&at| at > cutoff_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (failures at these times, asked at, expected wait)
    const CASES: &[(&[i64], i64, Option<i64>)] = &[
        (&[], 0, None),
        (&[0, 1, 2, 3, 4, 5, 6, 7, 8], 10, None),
        (&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 10, Some(WINDOW_MS - 10)),
        // The oldest leaves the window: one more is let through.
        (&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], WINDOW_MS, None),
        (&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], WINDOW_MS - 1, Some(1)),
        // Old failures do not count.
        (
            &[0, 1, 2, 3, 4, WINDOW_MS + 1, WINDOW_MS + 2],
            WINDOW_MS + 3,
            None,
        ),
        // More than the limit: the wait runs until enough have left the window.
        (
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            12,
            Some(WINDOW_MS + 2 - 12),
        ),
    ];

    #[test]
    fn failures_within_the_window_make_a_key_wait() {
        for (failures, now, expected) in CASES {
            let mut throttle = Throttle::default();
            for &at in *failures {
                throttle.failed("10.0.0.1", at);
            }
            assert_eq!(
                throttle.wait(&"10.0.0.1", *now),
                *expected,
                "{failures:?} at {now}"
            );
            assert_eq!(throttle.wait(&"10.0.0.2", *now), None, "another key");
        }
    }

    #[test]
    fn a_login_forgets_the_failures() {
        let mut throttle = Throttle::default();
        for at in 0..ATTEMPTS as i64 {
            throttle.failed("dana", at);
        }
        assert!(throttle.wait(&"dana", 20).is_some());
        throttle.succeeded(&"dana");
        assert_eq!(throttle.wait(&"dana", 20), None);
    }

    #[test]
    fn the_keys_kept_are_bounded() {
        let mut throttle = Throttle::default();
        for key in 0..KEYS_KEPT + 5 {
            throttle.failed(key, 0);
        }
        assert!(throttle.failures.len() <= KEYS_KEPT);
        // Once their failures left the window, the old keys make room.
        let mut throttle = Throttle::default();
        for key in 0..KEYS_KEPT {
            throttle.failed(key, 0);
        }
        throttle.failed(usize::MAX, WINDOW_MS + 1);
        assert_eq!(throttle.failures.len(), 1);
        assert!(throttle.wait(&usize::MAX, WINDOW_MS + 1).is_none());
    }

    #[test]
    fn methods_have_their_names() {
        for method in LoginMethod::ALL {
            assert_eq!(LoginMethod::parse(method.as_str()), Ok(*method));
        }
    }
}
