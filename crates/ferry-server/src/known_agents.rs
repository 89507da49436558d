//! Agent credentials checked recently. During a deployment every agent makes several
//! requests a second; remembering whose credential it is for a few seconds spares each of
//! them a database lookup. An entry lives [`KNOWN_FOR`], so a target removed from the store
//! is refused soon after.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_store::Target;

/// How long a checked credential is trusted without asking the store again.
pub const KNOWN_FOR: Duration = Duration::from_secs(10);

/// Entries kept at most; when full, the cache starts over.
const KNOWN_AT_MOST: usize = 4096;

/// Targets by the hash of their agent's credential, with when each was looked up.
#[derive(Default)]
pub struct KnownAgents {
    entries: Mutex<HashMap<String, (Target, Instant)>>,
}

impl KnownAgents {
    /// The target of this credential hash, if it was looked up less than [`KNOWN_FOR`] ago.
    pub fn get(&self, credential_hash: &str) -> Option<Target> {
        let entries = self.entries.lock().expect("never poisoned");
        entries
            .get(credential_hash)
            .filter(|(_, at)| at.elapsed() < KNOWN_FOR)
            .map(|(target, _)| target.clone())
    }

    /// Remembers the target a credential hash belongs to.
    pub fn insert(&self, credential_hash: String, target: Target) {
        let mut entries = self.entries.lock().expect("never poisoned");
        if entries.len() >= KNOWN_AT_MOST {
            entries.clear();
        }
        entries.insert(credential_hash, (target, Instant::now()));
    }

    /// Records a heartbeat written for `target`, so the next requests see it.
    pub fn seen(&self, target: &str, now_ms: i64) {
        let mut entries = self.entries.lock().expect("never poisoned");
        for (known, _) in entries.values_mut().filter(|(t, _)| t.name == target) {
            known.last_seen_ms = Some(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            name: name.into(),
            env: "dev".into(),
            enrolled_ms: Some(1),
            last_seen_ms: None,
            created_ms: 1,
        }
    }

    #[test]
    fn a_known_credential_answers_its_target_and_heartbeats_update_it() {
        let known = KnownAgents::default();
        assert_eq!(known.get("h1"), None);
        known.insert("h1".into(), target("web-1"));
        known.insert("h2".into(), target("web-2"));
        assert_eq!(known.get("h1"), Some(target("web-1")));
        known.seen("web-1", 42);
        assert_eq!(known.get("h1").unwrap().last_seen_ms, Some(42));
        assert_eq!(known.get("h2").unwrap().last_seen_ms, None);
        assert_eq!(known.get("h3"), None);
    }
}
