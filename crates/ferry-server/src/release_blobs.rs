//! Which blobs each application's releases hold, per application, folded in once per
//! release. Asking whether an application holds a blob used to read the manifest of every
//! release of it for each blob it lacked, so creating a release cost as much as the
//! application's whole history (and its decompression buffers kept the server's memory
//! growing). Releases never change once created: each one's blobs are added once, when a
//! question first finds it listed. A release that went (retention, or an application
//! removed and created again under its name) starts the application's set over, so the set
//! is always exactly that of the releases listed. It costs about 50 bytes per distinct
//! blob of each application's releases.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use ferry_cas::hash::ContentHash;
use ferry_store::Release;

/// One release, as it was created: a version name may come back after its release went.
type ReleaseKey = (String, i64, String);

fn key(release: &Release) -> ReleaseKey {
    (
        release.version.clone(),
        release.created_ms,
        release.digest.clone(),
    )
}

/// The blobs of the releases of each application, as far as they were folded in.
#[derive(Default)]
pub struct ReleaseBlobs {
    apps: Mutex<HashMap<String, Folded>>,
}

#[derive(Default)]
struct Folded {
    releases: HashSet<ReleaseKey>,
    blobs: HashSet<ContentHash>,
}

impl ReleaseBlobs {
    /// Of `listed`, the releases of `app` now, those whose blobs are not folded in yet. When
    /// a folded release is no longer listed, the application's set starts over and every
    /// listed release is returned.
    pub fn unfolded<'a>(&self, app: &str, listed: &'a [Release]) -> Vec<&'a Release> {
        let mut apps = self.apps.lock().expect("the lock is never poisoned");
        let folded = apps.entry(app.to_owned()).or_default();
        let now: HashSet<ReleaseKey> = listed.iter().map(key).collect();
        if !folded.releases.is_subset(&now) {
            *folded = Folded::default();
        }
        listed
            .iter()
            .filter(|release| !folded.releases.contains(&key(release)))
            .collect()
    }

    /// Adds the blobs of `release` of `app`.
    pub fn fold(&self, app: &str, release: &Release, blobs: &HashSet<ContentHash>) {
        let mut apps = self.apps.lock().expect("the lock is never poisoned");
        let folded = apps.entry(app.to_owned()).or_default();
        if folded.releases.insert(key(release)) {
            folded.blobs.extend(blobs);
        }
    }

    /// Which of `hashes` the folded releases of `app` hold.
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

    fn release(version: &str, created_ms: i64) -> Release {
        Release {
            app: "web".into(),
            version: version.into(),
            digest: format!("digest-{version}"),
            manifest_blob: String::new(),
            files: 0,
            bytes: 0,
            source: String::new(),
            notes: None,
            created_ms,
            created_by: "ci".into(),
            hotfix_of: None,
            incident: None,
        }
    }

    fn hash(n: u8) -> ContentHash {
        ContentHash::of(&[n])
    }

    fn set(hashes: &[u8]) -> HashSet<ContentHash> {
        hashes.iter().map(|n| hash(*n)).collect()
    }

    #[test]
    fn each_release_is_folded_once_and_a_release_gone_starts_over() {
        let cache = ReleaseBlobs::default();
        let (one, two) = (release("1.0", 1), release("2.0", 2));
        let listed = vec![one.clone()];
        assert_eq!(cache.unfolded("web", &listed).len(), 1);
        cache.fold("web", &one, &set(&[1, 2]));
        assert!(cache.unfolded("web", &listed).is_empty());
        assert_eq!(cache.held("web", &[hash(1), hash(3)]), set(&[1]));
        assert!(cache.held("blog", &[hash(1)]).is_empty());

        let listed = vec![two.clone(), one.clone()];
        let unfolded = cache.unfolded("web", &listed);
        assert_eq!(unfolded.len(), 1);
        assert_eq!(unfolded[0].version, "2.0");
        cache.fold("web", &two, &set(&[3]));
        assert_eq!(cache.held("web", &[hash(1), hash(3)]), set(&[1, 3]));

        // 1.0 went: what only it held is no longer the application's.
        let listed = vec![two.clone()];
        assert_eq!(cache.unfolded("web", &listed).len(), 1);
        assert!(cache.held("web", &[hash(1)]).is_empty());
        cache.fold("web", &two, &set(&[3]));
        assert_eq!(cache.held("web", &[hash(1), hash(3)]), set(&[3]));

        // The application removed and created again: a release of the same version, made
        // later, is another release.
        let again = vec![release("2.0", 9)];
        assert_eq!(cache.unfolded("web", &again).len(), 1);
        assert!(cache.held("web", &[hash(3)]).is_empty());
    }
}
