//! Long-polls waiting per agent credential, bounded: one agent holds one at a time (two
//! while it reconnects), so more than a few means the credential is used by several
//! processes, and each would hold a connection and a task on the server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::services::{ServiceError, ServiceResult};

/// The most long-polls one target's credential may have waiting at once.
pub const MAX_PER_TARGET: usize = 4;

/// How many long-polls wait, per target.
#[derive(Clone, Default)]
pub struct LongPolls {
    waiting: Arc<Mutex<HashMap<String, usize>>>,
}

/// A long-poll's place, given back when it is dropped.
pub struct Waiting {
    polls: LongPolls,
    target: String,
}

impl LongPolls {
    /// A place for one more long-poll of `target`, or 429 when it has its most.
    pub fn enter(&self, target: &str) -> ServiceResult<Waiting> {
        let mut waiting = self.lock();
        let count = waiting.entry(target.to_owned()).or_default();
        if *count >= MAX_PER_TARGET {
            return Err(ServiceError::too_many(format!(
                "target {target} has {MAX_PER_TARGET} long-polls waiting already: its \
                 credential is used by more than one agent; run one agent per target"
            )));
        }
        *count += 1;
        Ok(Waiting {
            polls: self.clone(),
            target: target.to_owned(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.waiting
            .lock()
            .expect("the long-poll count is never poisoned")
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut waiting = self.polls.lock();
        if let Some(count) = waiting.get_mut(&self.target) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.target);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_target_gets_its_most_and_places_come_back() {
        let polls = LongPolls::default();
        let held: Vec<_> = (0..MAX_PER_TARGET)
            .map(|_| polls.enter("web-1").unwrap())
            .collect();
        assert!(polls.enter("web-1").is_err());
        let other = polls.enter("web-2").unwrap();
        drop(held);
        drop(other);
        assert!(polls.lock().is_empty());
        assert!(polls.enter("web-1").is_ok());
    }
}
