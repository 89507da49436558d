//! Blobs each user uploaded recently, per application: what "which blobs do you lack?"
//! may answer as present besides the application's releases. The blob store is shared by
//! every application, so that question must not tell one team whether another team's
//! content exists; answering "missing" costs only an upload.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ferry_cas::hash::ContentHash;

/// Hashes remembered at most, over all users; past it the memory starts over (uploads are
/// then asked for again, never lost).
const MAX_REMEMBERED: usize = 1_000_000;
/// How often uploads too old to count are forgotten.
const FORGET_EVERY_MS: u64 = 60_000;

/// Who uploaded what, for how long.
#[derive(Default)]
pub struct RecentUploads {
    entries: Mutex<Uploads>,
}

#[derive(Default)]
struct Uploads {
    by_uploader: HashMap<(String, String), HashMap<ContentHash, i64>>,
    count: usize,
    forgot_ms: i64,
}

impl Uploads {
    /// Forgets every upload made before `before_ms`.
    fn forget_before(&mut self, before_ms: i64) {
        self.by_uploader.retain(|_, mine| {
            mine.retain(|_, at| *at >= before_ms);
            !mine.is_empty()
        });
        self.count = self.by_uploader.values().map(HashMap::len).sum();
    }
}

impl RecentUploads {
    /// Remembers that `user` uploaded `hashes` for `app` at `now_ms`; uploads made before
    /// `forget_before_ms` no longer count, and are forgotten now and then.
    pub fn remember(
        &self,
        user: &str,
        app: &str,
        hashes: &[ContentHash],
        now_ms: i64,
        forget_before_ms: i64,
    ) {
        let mut uploads = self.entries.lock().expect("uploads lock");
        // Either way: a clock set back must not put forgetting off.
        if now_ms.abs_diff(uploads.forgot_ms) >= FORGET_EVERY_MS {
            uploads.forget_before(forget_before_ms);
            uploads.forgot_ms = now_ms;
        }
        if uploads.count + hashes.len() > MAX_REMEMBERED {
            *uploads = Uploads::default();
        }
        let mine = uploads
            .by_uploader
            .entry((user.to_owned(), app.to_owned()))
            .or_default();
        let before = mine.len();
        for hash in hashes {
            mine.insert(*hash, now_ms);
        }
        let added = mine.len() - before;
        uploads.count += added;
    }

    /// Which of `hashes` `user` uploaded for `app` since `since_ms`.
    pub fn uploaded_since(
        &self,
        user: &str,
        app: &str,
        hashes: &[ContentHash],
        since_ms: i64,
    ) -> HashSet<ContentHash> {
        let uploads = self.entries.lock().expect("uploads lock");
        let Some(mine) = uploads.by_uploader.get(&(user.to_owned(), app.to_owned())) else {
            return HashSet::new();
        };
        hashes
            .iter()
            .filter(|hash| mine.get(hash).is_some_and(|at| *at >= since_ms))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_is_known_only_to_its_uploader_for_its_application_and_while_recent() {
        let uploads = RecentUploads::default();
        let (a, b) = (ContentHash::of(b"a"), ContentHash::of(b"b"));
        uploads.remember("dana", "web", &[a], 100, 0);
        let known =
            |user: &str, app: &str, since: i64| uploads.uploaded_since(user, app, &[a, b], since);
        assert_eq!(known("dana", "web", 50), HashSet::from([a]));
        assert_eq!(known("dana", "web", 101), HashSet::new(), "too old");
        assert_eq!(known("eve", "web", 50), HashSet::new(), "another user");
        assert_eq!(
            known("dana", "api", 50),
            HashSet::new(),
            "another application"
        );
    }

    #[test]
    fn uploads_too_old_to_count_are_forgotten() {
        let uploads = RecentUploads::default();
        let (a, b) = (ContentHash::of(b"a"), ContentHash::of(b"b"));
        uploads.remember("dana", "web", &[a], 1_000_000, 0);
        uploads.remember("eve", "api", &[b], 1_000_000, 0);
        assert_eq!(uploads.entries.lock().unwrap().count, 2);
        // Within a minute of the last time it forgot, nothing is forgotten yet.
        uploads.remember("dana", "web", &[b], 1_030_000, 1_000_001);
        assert_eq!(uploads.entries.lock().unwrap().count, 3);
        // A minute later, what came before the window goes, and uploaders left with nothing.
        uploads.remember("dana", "web", &[b], 1_070_000, 1_000_001);
        let entries = uploads.entries.lock().unwrap();
        assert_eq!(entries.count, 1);
        assert_eq!(
            entries.by_uploader.len(),
            1,
            "eve's uploads are all forgotten"
        );
    }
}
