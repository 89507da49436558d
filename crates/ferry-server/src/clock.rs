//! Time as the server sees it, injected so tests can control it.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ferry_domain::steady::Now;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch: what times are stored and shown as.
    fn now_ms(&self) -> i64;

    /// Milliseconds since a fixed point of this process, on a clock that never jumps when
    /// the machine's clock is set: what timeouts are measured on (see
    /// [`ferry_domain::steady`]).
    fn steady_ms(&self) -> i64;

    /// Both clocks, read together.
    fn read(&self) -> Now {
        Now {
            wall_ms: self.now_ms(),
            steady_ms: self.steady_ms(),
        }
    }
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn steady_ms(&self) -> i64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_millis() as i64
    }
}

/// The machine's clocks moved by the number of milliseconds written in a file, read at
/// every use: a missing or unreadable file moves nothing. Both clocks move, as if that much
/// time had passed: for tests and drills that need it to (escalations, freeze windows,
/// timeouts), set with `ferry server --clock-offset-file`. (A clock that jumps moves the
/// wall clock alone.)
pub struct OffsetClock {
    pub file: std::path::PathBuf,
}

impl OffsetClock {
    fn offset_ms(&self) -> i64 {
        std::fs::read_to_string(&self.file)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0)
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms().saturating_add(self.offset_ms())
    }

    fn steady_ms(&self) -> i64 {
        SystemClock.steady_ms().saturating_add(self.offset_ms())
    }
}
