//! The retry schedule the server follows after a retryable [`crate::DeliveryError`].

/// Attempts in all (the first one and its retries) before a delivery is given up.
pub const MAX_ATTEMPTS: u32 = 6;

/// Short first steps catch a receiver that is restarting; the long tail outlasts a deploy.
const SCHEDULE_MS: [i64; (MAX_ATTEMPTS - 1) as usize] = [1_000, 5_000, 30_000, 120_000, 600_000];

/// The longest delay [`retry_delay_ms`] gives: no retry is scheduled further ahead.
pub const LONGEST_RETRY_DELAY_MS: i64 = SCHEDULE_MS[SCHEDULE_MS.len() - 1];

/// Delay before retry number `attempt` (1-based: retry 1 follows the first failed attempt),
/// in milliseconds: 1 s, 5 s, 30 s, 2 min, 10 min; `None` once [`MAX_ATTEMPTS`] attempts
/// have been made (and for `attempt` 0, which is no retry), meaning give up.
pub fn retry_delay_ms(attempt: u32) -> Option<i64> {
    let retry_idx = attempt.checked_sub(1)?;
    SCHEDULE_MS.get(retry_idx as usize).copied()
}
