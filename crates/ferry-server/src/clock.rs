//! Time as the server sees it, injected so tests can control it.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// The machine's clock moved by the number of milliseconds written in a file, read at every
/// use: a missing or unreadable file moves nothing. For tests and drills that need time to
/// pass (escalations, freeze windows), set with `ferry server --clock-offset-file`.
pub struct OffsetClock {
    pub file: std::path::PathBuf,
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        let offset = std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0);
        SystemClock.now_ms().saturating_add(offset)
    }
}
