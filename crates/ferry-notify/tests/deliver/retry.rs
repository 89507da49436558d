//! The retry schedule.

use ferry_notify::{retry_delay_ms, MAX_ATTEMPTS};

#[test]
fn retry_schedule() {
    let cases = [
        (0, None),
        (1, Some(1_000)),
        (2, Some(5_000)),
        (3, Some(30_000)),
        (4, Some(120_000)),
        (5, Some(600_000)),
        (6, None),
        (7, None),
        (u32::MAX, None),
    ];
    for (attempt, expect) in cases {
        assert_eq!(retry_delay_ms(attempt), expect, "retry {attempt}");
    }
    // The first attempt plus one per scheduled retry.
    let n_retries = (1..).take_while(|a| retry_delay_ms(*a).is_some()).count() as u32;
    assert_eq!(1 + n_retries, MAX_ATTEMPTS);
}
