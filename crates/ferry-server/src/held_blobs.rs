//! Which blobs each application's releases (or backups) hold, per application, folded in
//! once per release. Asking whether an application holds a blob used to read the manifest
//! of every release of it for each blob it lacked, so creating a release cost as much as
//! the application's whole history (and its decompression buffers kept the server's memory
//! growing); an agent's backup, likewise for every backup. Releases and backups never
//! change once created: each one's blobs are added once, when a question first finds it
//! listed. One that went (retention, or an application removed and created again under its
//! name) starts the application's set over, so the set is always exactly that of what is
//! listed. It costs about 50 bytes per distinct blob.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ferry_cas::hash::ContentHash;

/// One release or backup, as it was created: its name (a version may come back after its
/// release went), when it was created, and its manifest's digest.
pub type Holder = (String, i64, String);

/// The blobs of the releases (or backups) of each application, as far as they were folded
/// in.
#[derive(Default)]
pub struct HeldBlobs {
    apps: Mutex<HashMap<String, Folded>>,
}

#[derive(Default)]
struct Folded {
    holders: HashSet<Holder>,
    blobs: HashSet<ContentHash>,
}

impl HeldBlobs {
    /// Of `listed`, the releases (or backups) of `app` now, the positions of those whose
    /// blobs are not folded in yet. When a folded one is no longer listed, the
    /// application's set starts over and every listed one is returned.
    pub fn unfolded(&self, app: &str, listed: &[Holder]) -> Vec<usize> {
        let mut apps = self.apps.lock().expect("the lock is never poisoned");
        let folded = apps.entry(app.to_owned()).or_default();
        let now: HashSet<&Holder> = listed.iter().collect();
        if !folded.holders.iter().all(|holder| now.contains(holder)) {
            *folded = Folded::default();
        }
        (0..listed.len())
            .filter(|at| !folded.holders.contains(&listed[*at]))
            .collect()
    }

    /// Adds the blobs of one release (or backup) of `app`.
    pub fn fold(&self, app: &str, holder: &Holder, blobs: impl IntoIterator<Item = ContentHash>) {
        let mut apps = self.apps.lock().expect("the lock is never poisoned");
        let folded = apps.entry(app.to_owned()).or_default();
        if folded.holders.insert(holder.clone()) {
            folded.blobs.extend(blobs);
        }
    }

    /// Which of `hashes` the folded releases (or backups) of `app` hold.
    pub fn held(&self, app: &str, hashes: &[ContentHash]) -> HashSet<ContentHash> {
        let apps = self.apps.lock().expect("the lock is never poisoned");
        match apps.get(app) {
            Some(folded) => hashes
                .iter()
                .filter(|hash| folded.blobs.contains(hash))
                .copied()
                .collect(),
            None => HashSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(version: &str, created_ms: i64) -> Holder {
        (version.into(), created_ms, format!("digest-{version}"))
    }

    fn hash(n: u8) -> ContentHash {
        ContentHash::of(&[n])
    }

    fn set(hashes: &[u8]) -> HashSet<ContentHash> {
        hashes.iter().map(|n| hash(*n)).collect()
    }

    #[test]
    fn each_holder_is_folded_once_and_one_gone_starts_over() {
        let cache = HeldBlobs::default();
        let (one, two) = (holder("1.0", 1), holder("2.0", 2));
        let listed = vec![one.clone()];
        assert_eq!(cache.unfolded("web", &listed), [0]);
        cache.fold("web", &one, set(&[1, 2]));
        assert!(cache.unfolded("web", &listed).is_empty());
        assert_eq!(cache.held("web", &[hash(1), hash(3)]), set(&[1]));
        assert!(cache.held("blog", &[hash(1)]).is_empty());

        let listed = vec![two.clone(), one.clone()];
        assert_eq!(cache.unfolded("web", &listed), [0]);
        cache.fold("web", &two, set(&[3]));
        assert_eq!(cache.held("web", &[hash(1), hash(3)]), set(&[1, 3]));

        // 1.0 went: what only it held is no longer the application's.
        let listed = vec![two.clone()];
        assert_eq!(cache.unfolded("web", &listed), [0]);
        assert!(cache.held("web", &[hash(1)]).is_empty());
        cache.fold("web", &two, set(&[3]));
        assert_eq!(cache.held("web", &[hash(1), hash(3)]), set(&[3]));

        // The application removed and created again: a release of the same version, made
        // later, is another release.
        assert_eq!(cache.unfolded("web", &[holder("2.0", 9)]), [0]);
        assert!(cache.held("web", &[hash(3)]).is_empty());
    }
}
