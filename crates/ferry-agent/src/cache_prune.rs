//! Pruning the content cache, so a target's disk holds what its releases use and not every
//! release it ever ran. A blob a release holds is hard-linked into it (a whole file with
//! the blob's mode): its inode has more than one link and removing it from the cache would
//! free nothing. A blob with one link is held by no release: its release was removed by
//! cleanup, or the file was copied out of it (another mode, several chunks), or it was
//! fetched for work that has not used it yet. Such a blob goes once it is older than
//! [`GRACE`] by its modification time (when it was written), as do corrupt blobs moved
//! aside and temp files; a later deploy that needs one fetches it again.
//!
//! Why pruning never races a deploy, a task or a drift check: each of them holds the
//! cache's lock shared ([`CacheLock::shared`]) from before it looks for a blob until it
//! is done with it, and a prune takes that lock exclusively, without waiting, and only
//! when no one holds any of it ([`CacheLock::try_exclusive`]); when someone does, the
//! prune waits for a later turn. A blob therefore never disappears between being found
//! and being linked or read. The grace covers what lies between two turns of that work:
//! blobs fetched for a deploy that failed and is tried again, or for a release staged
//! ahead and switched to later, are kept for an hour whether or not anything holds them.
//!
//! Nothing else keeps blobs in the cache for later: a restore fetches its backup's blobs
//! and uses them within its task (what it did not move out goes after the grace), and
//! rendered configuration files never enter the cache (their templates are release files,
//! kept like any other).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use ferry_cas::blobs::{BlobStore, StoreFile, StoreFileKind};

use crate::error::{AgentError, AgentResult};
use crate::lock::CacheLock;

/// How old a file of the cache no release holds must be to go.
pub const GRACE: Duration = Duration::from_secs(3600);

/// Whether `file` of the cache can go at `now`: older than [`GRACE`], and, for a blob,
/// held by no release (one link). A modification time in the future is young.
pub fn prunable(file: &StoreFile, now: SystemTime) -> bool {
    let old = now
        .duration_since(file.modified)
        .is_ok_and(|age| age >= GRACE);
    match file.kind {
        StoreFileKind::Blob(_) => old && file.links < 2,
        StoreFileKind::Quarantined | StoreFileKind::Temp => old,
    }
}

/// What a prune removed and left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Blobs removed, and their bytes.
    pub blobs: u64,
    pub bytes: u64,
    /// Corrupt blobs moved aside and temp files removed, and their bytes.
    pub leftovers: u64,
    pub leftover_bytes: u64,
    /// Blobs left (held by a release, or young), and their bytes.
    pub kept: u64,
    pub kept_bytes: u64,
}

impl Pruned {
    /// Counts `file`, `removed` or not.
    pub fn count(&mut self, file: &StoreFile, removed: bool) {
        let blob = matches!(file.kind, StoreFileKind::Blob(_));
        let (n, bytes) = match (removed, blob) {
            (true, true) => (&mut self.blobs, &mut self.bytes),
            (true, false) => (&mut self.leftovers, &mut self.leftover_bytes),
            (false, true) => (&mut self.kept, &mut self.kept_bytes),
            // A leftover kept is young: work under way in another process, or nothing.
            (false, false) => return,
        };
        *n += 1;
        *bytes += file.size;
    }

    /// Whether anything was removed.
    pub fn removed_any(&self) -> bool {
        self.blobs + self.leftovers > 0
    }

    /// What the agent logs.
    pub fn sentence(&self) -> String {
        let leftovers = match self.leftovers {
            0 => String::new(),
            n => format!(", and {n} leftover file(s) ({} bytes)", self.leftover_bytes),
        };
        format!(
            "pruned the content cache: removed {} blob(s) ({} bytes) no release holds{leftovers}; \
             it keeps {} blob(s) ({} bytes)",
            self.blobs, self.bytes, self.kept, self.kept_bytes
        )
    }
}

/// Removes from the cache at `cache` (of the target at `root`) every file [`prunable`]
/// now, unless something relies on the cache: `None` then, and nothing is removed.
pub fn prune(root: &Path, cache: &BlobStore) -> AgentResult<Option<Pruned>> {
    let Some(_pruning) = CacheLock::try_exclusive(root)? else {
        return Ok(None);
    };
    let now = SystemTime::now();
    let mut pruned = Pruned::default();
    for file in cache.files()? {
        let removed = prunable(&file, now) && remove(&file.path)?;
        pruned.count(&file, removed);
    }
    Ok(Some(pruned))
}

/// Removes the file at `path`; false when it was gone already.
fn remove(path: &Path) -> AgentResult<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(AgentError::io(path, e)),
    }
}

/// When the cache is pruned: when the agent starts (an agent before this one never
/// pruned), after a cleanup removed releases (the blobs they held may be held by none
/// now), and once every [`GRACE`] anyway (blobs too young at the last prune have come of
/// age). A prune that could not run (someone relied on the cache) leaves it due.
#[derive(Clone, Copy, Debug, Default)]
pub struct PruneSchedule {
    last: Option<Instant>,
    releases_removed: bool,
}

impl PruneSchedule {
    /// Notes that a cleanup removed releases.
    pub fn releases_removed(&mut self) {
        self.releases_removed = true;
    }

    /// Whether a prune is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.releases_removed
            || self
                .last
                .is_none_or(|last| now.duration_since(last) >= GRACE)
    }

    /// Notes that the cache was pruned (or tried and failed) at `now`.
    pub fn pruned(&mut self, now: Instant) {
        self.last = Some(now);
        self.releases_removed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_cas::hash::ContentHash;
    use std::os::unix::fs::MetadataExt;

    fn file(kind: StoreFileKind, links: u64, age: Duration, now: SystemTime) -> StoreFile {
        StoreFile {
            path: "cache/ab/abc".into(),
            kind,
            size: 10,
            links,
            modified: now - age,
        }
    }

    #[test]
    fn only_old_files_no_release_holds_go() {
        let blob = StoreFileKind::Blob(ContentHash::of(b"x"));
        let (minute, hour) = (Duration::from_secs(60), GRACE);
        // (kind, links, age, prunable)
        let cases = [
            (blob, 1, hour + minute, true),
            (blob, 1, hour, true),
            (blob, 1, hour - minute, false),
            (blob, 1, Duration::ZERO, false),
            (blob, 2, hour * 24, false),
            (blob, 7, hour * 24, false),
            (StoreFileKind::Quarantined, 1, hour + minute, true),
            // Corrupt in place, so its release's file is too: the name goes all the same.
            (StoreFileKind::Quarantined, 2, hour + minute, true),
            (StoreFileKind::Quarantined, 1, minute, false),
            (StoreFileKind::Temp, 1, hour + minute, true),
            (StoreFileKind::Temp, 1, minute, false),
        ];
        let now = SystemTime::now();
        for (kind, links, age, expected) in cases {
            let file = file(kind, links, age, now);
            assert_eq!(prunable(&file, now), expected, "{kind:?} {links} {age:?}");
        }
        // Written in the future (a clock set back): young.
        let ahead = StoreFile {
            modified: now + hour,
            ..file(blob, 1, Duration::ZERO, now)
        };
        assert!(!prunable(&ahead, now));
    }

    #[test]
    fn what_was_removed_and_kept_is_counted_by_kind() {
        let now = SystemTime::now();
        let blob = StoreFileKind::Blob(ContentHash::of(b"x"));
        let mut pruned = Pruned::default();
        assert!(!pruned.removed_any());
        // (kind, removed)
        let counted = [
            (blob, true),
            (blob, true),
            (blob, false),
            (StoreFileKind::Temp, true),
            (StoreFileKind::Quarantined, false),
        ];
        for (kind, removed) in counted {
            pruned.count(&file(kind, 1, GRACE, now), removed);
        }
        let expected = Pruned {
            blobs: 2,
            bytes: 20,
            leftovers: 1,
            leftover_bytes: 10,
            kept: 1,
            kept_bytes: 10,
        };
        assert_eq!(pruned, expected);
        assert!(pruned.removed_any());
        assert_eq!(
            pruned.sentence(),
            "pruned the content cache: removed 2 blob(s) (20 bytes) no release holds, and 1 \
             leftover file(s) (10 bytes); it keeps 1 blob(s) (10 bytes)"
        );
    }

    #[test]
    fn a_prune_is_due_at_start_after_releases_went_and_every_grace() {
        let start = Instant::now();
        let mut schedule = PruneSchedule::default();
        assert!(schedule.due(start));
        schedule.pruned(start);
        assert!(!schedule.due(start + GRACE / 2));
        schedule.releases_removed();
        assert!(schedule.due(start + GRACE / 2));
        schedule.pruned(start + GRACE / 2);
        assert!(!schedule.due(start + GRACE));
        assert!(schedule.due(start + GRACE / 2 + GRACE));
    }

    /// Sets the modification time of the file at `path` back by `age`.
    fn age(path: &Path, age: Duration) {
        let file = fs::File::open(path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn a_prune_removes_old_blobs_no_release_links_and_waits_for_whoever_relies_on_them() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let cache = BlobStore::open(&crate::layout::cache_dir(root)).unwrap();
        let [held, unheld, young] = [&b"held"[..], b"unheld", b"young"].map(ContentHash::of);
        cache
            .put_batch(&[(held, b"held"), (unheld, b"unheld"), (young, b"young")])
            .unwrap();
        let release_file = root.join("release-file");
        fs::hard_link(cache.path_of(&held), &release_file).unwrap();
        for hash in [held, unheld] {
            age(&cache.path_of(&hash), GRACE * 2);
        }

        let relied_on = CacheLock::shared(root).unwrap();
        assert_eq!(prune(root, &cache).unwrap(), None);
        assert!(
            cache.contains(&unheld),
            "nothing goes while the cache is relied on"
        );
        drop(relied_on);

        let pruned = prune(root, &cache).unwrap().unwrap();
        assert_eq!((pruned.blobs, pruned.bytes), (1, 6));
        assert_eq!((pruned.kept, pruned.kept_bytes), (2, 9));
        assert!(!cache.contains(&unheld));
        assert!(cache.contains(&held) && cache.contains(&young));
        assert_eq!(fs::metadata(&release_file).unwrap().nlink(), 2);
        assert_eq!(fs::read(&release_file).unwrap(), b"held");
        // Gone from the cache, its content comes back as any missing blob does.
        cache.put_unsynced(&unheld, b"unheld").unwrap();
        assert_eq!(cache.read(&unheld).unwrap(), b"unheld");
    }
}
