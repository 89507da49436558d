//! Freeze windows (`CRON DURATION`) and one-off freezes, as `ferry env set --freeze`,
//! `ferry env freeze --for/--until` and the API give them, evaluated the way every
//! deployment is judged: at a time from the first eight bytes (any time from 1970 to 9999),
//! each following line a window, `for TEXT` or `until TEXT` a one-off freeze. A window
//! printed parses back to itself; a freeze in force ends after now; the chain of freezes
//! agrees with the refusal.
#![no_main]

use ferry_domain::freeze::{
    check_freeze, format_until, frozen_until, FreezeEnd, FreezeWindow, Freezes, FrozenNow,
    OneOffFreeze,
};
use libfuzzer_sys::fuzz_target;

/// The end of the year 9999, in ms since the epoch: times the server's clock can give.
const LATEST_MS: u64 = 253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    let Some((clock, text)) = data.split_first_chunk::<8>() else {
        return;
    };
    let now_ms = (u64::from_le_bytes(*clock) % LATEST_MS) as i64;
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let mut freezes = Freezes::default();
    for line in text.lines() {
        if let Some(end) = one_off_end(line) {
            freezes.one_off = OneOffFreeze::new(now_ms, end, "fuzzed", "fuzz").ok();
            continue;
        }
        let Ok(window) = FreezeWindow::parse(line) else {
            continue;
        };
        let shown = window.to_string();
        assert_eq!(
            FreezeWindow::parse(&shown),
            Ok(window),
            "{line:?} is shown as {shown:?}, which reads otherwise"
        );
        if let Some(end) = window.active_at(now_ms) {
            assert!(
                end > now_ms,
                "{line:?} at {now_ms} ends at {end}, not after now"
            );
            let lasts = i64::try_from(window.duration().as_millis()).expect("at most 31 days");
            assert!(
                end - now_ms <= lasts,
                "{line:?} at {now_ms} ends at {end}, past its duration"
            );
        }
        freezes.windows.push(window);
    }
    let frozen = frozen_until(&freezes, now_ms);
    assert_eq!(
        frozen.is_some(),
        check_freeze("env", &freezes, now_ms).is_err()
    );
    if let Some(frozen) = &frozen {
        let _ = frozen.describe(now_ms);
        if let FrozenNow::Until { until_ms, .. } = frozen {
            assert!(*until_ms > now_ms, "frozen at {now_ms} until {until_ms}");
            let _ = format_until(*until_ms, now_ms);
        }
    }
});

fn one_off_end(line: &str) -> Option<FreezeEnd> {
    if let Some(text) = line.strip_prefix("for ") {
        return FreezeEnd::parse_for(text).ok();
    }
    FreezeEnd::parse_until(line.strip_prefix("until ")?).ok()
}
