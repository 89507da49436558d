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

/// Who uploaded what, for how long.
#[derive(Default)]
pub struct RecentUploads {
    entries: Mutex<Uploads>,
}

#[derive(Default)]
struct Uploads {
    by_uploader: HashMap<(String, String), HashMap<ContentHash, i64>>,
    count: usize,
}

impl RecentUploads {
    /// Remembers that `user` uploaded `hashes` for `app` at `now_ms`.
    pub fn remember(&self, user: &str, app: &str, hashes: &[ContentHash], now_ms: i64) {
        let mut uploads = self.entries.lock().expect("uploads lock");
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
        uploads.remember("dana", "web", &[a], 100);
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
}
