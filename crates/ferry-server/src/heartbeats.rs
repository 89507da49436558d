//! Heartbeats written to the store together. At rest every agent's long-poll answer is a
//! heartbeat, so 1,000 agents make about 200 a second; written one by one, each would cost
//! a commit of its own (an fsync on SQLite). Routine ones are queued here and written in
//! one transaction every [`flush_every`] of the heartbeat interval; one that changes how
//! the target looks (its first, or one from an agent already late) is written at once, so a
//! target comes online without waiting and is never counted offline while its heartbeat
//! waits in a queue ([`Liveness::beat`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferry_domain::liveness::{Beat, Liveness};
use ferry_store::{Store, StoreResult};

use crate::state::AppState;

/// Heartbeats heard and not yet written, by target: the latest of each.
#[derive(Default)]
pub struct Heartbeats {
    pending: Mutex<HashMap<String, i64>>,
}

impl Heartbeats {
    /// Records that `target`'s agent, last seen at `last_seen_ms` as the store says, was
    /// heard at `now_ms`: written now, queued, or not needed yet.
    pub async fn heard(
        &self,
        store: &dyn Store,
        liveness: Liveness,
        target: &str,
        last_seen_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<()> {
        match liveness.beat(last_seen_ms, now_ms) {
            Beat::Known => Ok(()),
            Beat::Queue => {
                self.pending().insert(target.to_owned(), now_ms);
                Ok(())
            }
            Beat::WriteNow => {
                self.pending().remove(target);
                store.touch_targets(&[(target.to_owned(), now_ms)]).await
            }
        }
    }

    /// Writes the queued heartbeats in one transaction; those that fail to be written are
    /// queued again unless a newer one came meanwhile.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<()> {
        let beats: Vec<(String, i64)> = self.pending().drain().collect();
        if beats.is_empty() {
            return Ok(());
        }
        let written = store.touch_targets(&beats).await;
        if written.is_err() {
            let mut pending = self.pending();
            for (target, heard_ms) in beats {
                pending.entry(target).or_insert(heard_ms);
            }
        }
        written
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.pending
            .lock()
            .expect("the heartbeat queue's lock is never poisoned")
    }
}

/// How often queued heartbeats are written: a fifth of the interval, at most a second. A
/// queued heartbeat is one the store already counts as online for another interval at
/// least, so it is written long before the target could look offline.
pub fn flush_every(liveness: Liveness) -> Duration {
    (liveness.heartbeat / 5).min(Duration::from_secs(1))
}

/// Writes the queued heartbeats every [`flush_every`], for as long as the server runs.
pub async fn run_flushes(state: AppState) {
    let mut ticks = tokio::time::interval(flush_every(state.liveness));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = state.heartbeats.flush(state.store.as_ref()).await {
            tracing::warn!("writing heartbeats: {e}; trying again in a moment");
        }
    }
}
