//! What each file of a staged release looked like right after staging: mode, inode, size,
//! modification and change times, with the content's hash. A file that still looks exactly
//! the same is trusted without being read again, the way rsync and git trust unchanged
//! files. Anything else is not: staging never hard-links it into another release, and the
//! check before a switch re-creates it. The drift check uses the index too, and re-hashes
//! only what it does not vouch for ([`crate::drift`] says why that is enough).
//!
//! The change time (ctime) is what catches an edit whose author put the modification time
//! back; no one can set it. But the agent's own links and unlinks change it too (a hard
//! link changes the link count of the inode every release sharing it sees):
//! [`crate::link_changes`] carries those changes into the indexes, so that only changes
//! made by someone else make a file untrusted.
//!
//! Staging builds the index from what it learnt while placing each file (no second pass
//! over the tree): `lstat` of a file once linked, or `fstat` of a written file once it has
//! its content and mode. An index only ever describes the tree it was recorded for: staging
//! forgets the old one before a tree takes the release's name.
//!
//! On disk (`ROOT/.ferry/index/APP/VERSION.json`, a name kept from the days it was JSON)
//! it is a small binary file, all integers little-endian:
//!
//! ```text
//! magic "FERRYIDX", format version: u32, number of entries: u64
//! per entry: path length: u32, path (UTF-8), mode: u32, ino: u64, size: u64,
//!            mtime_ns: i128, ctime_ns: i128, hash: 32 bytes
//! BLAKE3 of everything before it: 32 bytes
//! ```
//!
//! Anything else (missing, unreadable, an older format, truncated, corrupt) loads as an
//! empty index, which trusts nothing and only costs re-hashing. Losing an index costs the
//! same, so it is written to a temporary file and renamed, without a sync.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_cas::hash::ContentHash;

use crate::fsutil::permission_bits;
use crate::index_file::{self, ENTRY_FIXED_LEN};
#[cfg(test)]
use crate::index_file::{CHECKSUM_LEN, HEADER_LEN};
use crate::layout::{state_dir, AppLayout, Installed};

const MAGIC: &[u8; 8] = b"FERRYIDX";
/// 2 added the change time: an index of format 1 loads empty, and trusts nothing.
const FORMAT_VERSION: u32 = 2;

/// The facts of one file that change when its content or mode is changed, and the
/// content's hash when they were taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// Permission bits.
    pub mode: u32,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    /// The inode's change time: any write, `chmod`, `touch` or link changes it.
    pub ctime_ns: i128,
    pub hash: ContentHash,
}

impl FileStat {
    /// The facts of a file whose content has hash `hash`.
    pub fn of(metadata: &Metadata, hash: ContentHash) -> FileStat {
        let ns = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
        FileStat {
            mode: permission_bits(metadata),
            ino: metadata.ino(),
            size: metadata.len(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
            hash,
        }
    }

    /// Whether `metadata` shows the file exactly as it was when these facts were taken.
    pub fn describes(&self, metadata: &Metadata) -> bool {
        *self == FileStat::of(metadata, self.hash)
    }

    /// Whether both describe the same inode in the same state (content hashes aside).
    pub fn same_state(&self, other: &FileStat) -> bool {
        FileStat {
            hash: other.hash,
            ..*self
        } == *other
    }

    /// Whether `after` can be this inode after nothing but a change of its link count: the
    /// same inode, content size, modification time and mode (only the change time moved).
    pub fn only_relinked_to(&self, after: &FileStat) -> bool {
        FileStat {
            ctime_ns: after.ctime_ns,
            hash: after.hash,
            ..*self
        } == *after
    }
}

/// The stat index of one release: its files sorted by path, their paths in one buffer (an
/// index is read on every deploy; ten thousand small allocations would be most of it).
#[derive(Debug, Default)]
pub struct StatIndex {
    paths: String,
    /// Sorted by path, each path once.
    files: Vec<Recorded>,
    /// Where the next lookup probably is: files are mostly looked up in manifest order,
    /// which is the index's order. Only a hint (shared by threads), checked before use.
    next: AtomicUsize,
}

impl Clone for StatIndex {
    fn clone(&self) -> StatIndex {
        StatIndex {
            paths: self.paths.clone(),
            files: self.files.clone(),
            next: AtomicUsize::new(0),
        }
    }
}

impl PartialEq for StatIndex {
    fn eq(&self, other: &StatIndex) -> bool {
        self.files.len() == other.files.len()
            && self
                .files
                .iter()
                .zip(&other.files)
                .all(|(a, b)| self.path_of(a) == other.path_of(b) && a.stat == b.stat)
    }
}

impl Eq for StatIndex {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Recorded {
    /// Where the path is in `paths`.
    start: usize,
    end: usize,
    stat: FileStat,
}

fn index_path(layout: &AppLayout, installed: &Installed) -> PathBuf {
    state_dir(layout.root())
        .join("index")
        .join(layout.app())
        .join(format!("{}.json", installed.dir_name()))
}

impl StatIndex {
    /// An index of the given files (a path given twice keeps its last facts).
    pub fn from_files<P: AsRef<str>>(files: impl IntoIterator<Item = (P, FileStat)>) -> StatIndex {
        let mut files: Vec<(P, FileStat)> = files.into_iter().collect();
        // Stable: of equal paths the last given stays last, and is kept.
        files.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut index = StatIndex::default();
        for (i, (path, stat)) in files.iter().enumerate() {
            let path = path.as_ref();
            if files
                .get(i + 1)
                .is_none_or(|(next, _)| next.as_ref() != path)
            {
                index.push(path, *stat);
            }
        }
        index
    }

    /// Appends a file; paths must come sorted.
    fn push(&mut self, path: &str, stat: FileStat) {
        let start = self.paths.len();
        self.paths.push_str(path);
        self.files.push(Recorded {
            start,
            end: self.paths.len(),
            stat,
        });
    }

    fn path_of(&self, recorded: &Recorded) -> &str {
        &self.paths[recorded.start..recorded.end]
    }

    /// The index of `version`; empty (trusting nothing) when there is none or it is
    /// unreadable.
    pub fn load(layout: &AppLayout, version: &Installed) -> StatIndex {
        fs::read(index_path(layout, version))
            .ok()
            .and_then(|bytes| StatIndex::decode(&bytes))
            .unwrap_or_default()
    }

    /// Writes the index of the staged release `version`. Best effort: a failure leaves
    /// no index, which only costs a re-hash later.
    pub fn save(&self, layout: &AppLayout, version: &Installed) {
        let path = index_path(layout, version);
        let tmp = path.with_extension("json.tmp");
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| fs::write(&tmp, self.encode()))
            .and_then(|_| fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Forgets the index of a release that is removed or replaced.
    pub fn forget(layout: &AppLayout, version: &Installed) {
        let _ = fs::remove_file(index_path(layout, version));
    }

    /// What was recorded for the file at `path`.
    pub fn get(&self, path: &str) -> Option<&FileStat> {
        let hint = self.next.load(Ordering::Relaxed);
        let at = match self.files.get(hint) {
            Some(recorded) if self.path_of(recorded) == path => hint,
            _ => self
                .files
                .binary_search_by(|recorded| self.path_of(recorded).cmp(path))
                .ok()?,
        };
        self.next.store(at + 1, Ordering::Relaxed);
        Some(&self.files[at].stat)
    }

    /// Whether the file at `path` of the release still looks exactly as it did when it was
    /// staged with content `hash`.
    pub fn vouches_for(&self, path: &str, metadata: &Metadata, hash: &ContentHash) -> bool {
        self.get(path)
            .is_some_and(|recorded| recorded.hash == *hash && recorded.describes(metadata))
    }

    /// Every recorded file with its facts, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FileStat)> {
        self.files
            .iter()
            .map(|recorded| (self.path_of(recorded), &recorded.stat))
    }

    /// Lets `change` rewrite the facts of each file (given its path); returns whether any
    /// changed.
    pub fn update(&mut self, mut change: impl FnMut(&str, &mut FileStat)) -> bool {
        let mut changed = false;
        for recorded in &mut self.files {
            let before = recorded.stat;
            change(
                &self.paths[recorded.start..recorded.end],
                &mut recorded.stat,
            );
            changed |= recorded.stat != before;
        }
        changed
    }

    /// Number of files recorded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is recorded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The on-disk form, in path order (so equal indexes give equal bytes).
    fn encode(&self) -> Vec<u8> {
        let capacity = index_file::HEADER_LEN
            + self.paths.len()
            + self.files.len() * ENTRY_FIXED_LEN
            + index_file::CHECKSUM_LEN;
        let mut out = index_file::begin(MAGIC, FORMAT_VERSION, self.files.len(), capacity);
        for recorded in &self.files {
            index_file::put_entry(&mut out, self.path_of(recorded), &recorded.stat);
        }
        index_file::seal(out)
    }

    /// Reads the on-disk form; `None` for anything but a complete, intact index of this
    /// format.
    fn decode(bytes: &[u8]) -> Option<StatIndex> {
        let (count, mut reader) = index_file::open(bytes, MAGIC, FORMAT_VERSION, ENTRY_FIXED_LEN)?;
        let mut index = StatIndex {
            paths: String::with_capacity(reader.remaining() - count * ENTRY_FIXED_LEN),
            files: Vec::with_capacity(count),
            next: AtomicUsize::new(0),
        };
        for _ in 0..count {
            let (path, stat) = reader.entry()?;
            // Sorted and unique, as written: what lookups rely on.
            if index
                .files
                .last()
                .is_some_and(|last| index.path_of(last) >= path)
            {
                return None;
            }
            index.push(path, stat);
        }
        (reader.remaining() == 0).then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> Installed {
        Installed::new("1.0", 0)
    }

    fn sample() -> StatIndex {
        StatIndex::from_files((0..50u64).map(|i| {
            (
                format!("dir{}/file-é{i}.dat", i % 7),
                FileStat {
                    mode: 0o644 + (i as u32 % 2) * 0o111,
                    ino: 1_000_000 + i,
                    size: i * 4096,
                    mtime_ns: 1_700_000_000_123_456_789 + i128::from(i) - 5,
                    ctime_ns: 1_700_000_001_123_456_789 + i128::from(i),
                    hash: ContentHash::of(&i.to_le_bytes()),
                },
            )
        }))
    }

    #[test]
    fn the_index_survives_a_round_trip_through_its_file() {
        let root = tempfile::tempdir().unwrap();
        let layout = AppLayout::new(root.path(), "shop").unwrap();
        let index = sample();
        index.save(&layout, &one());
        assert_eq!(StatIndex::load(&layout, &one()), index);
        assert_eq!(StatIndex::decode(&index.encode()), Some(index.clone()));
        // Negative modification times (before 1970) and the extremes survive too.
        let odd = StatIndex::from_files([(
            "a".to_owned(),
            FileStat {
                mode: 0o7777,
                ino: u64::MAX,
                size: 0,
                mtime_ns: -1_500_000_001,
                ctime_ns: i128::MIN,
                hash: ContentHash::of(b""),
            },
        )]);
        assert_eq!(StatIndex::decode(&odd.encode()), Some(odd));
        // A path given twice keeps its last facts; lookups work in any order.
        let stat = |ino| FileStat {
            ino,
            ..index.files[0].stat
        };
        let twice = StatIndex::from_files([
            ("b".to_owned(), stat(1)),
            ("a".to_owned(), stat(2)),
            ("b".to_owned(), stat(3)),
        ]);
        assert_eq!(twice.len(), 2);
        for (path, ino) in [("b", 3), ("a", 2), ("a", 2), ("b", 3)] {
            assert_eq!(twice.get(path).map(|s| s.ino), Some(ino));
        }
        assert!(twice.get("c").is_none() && twice.get("").is_none());
        let empty = StatIndex::default();
        assert_eq!(StatIndex::decode(&empty.encode()), Some(empty));
        // No temporary file is left behind.
        let dir = index_path(&layout, &one()).parent().unwrap().to_owned();
        assert_eq!(fs::read_dir(dir).unwrap().count(), 1);
        StatIndex::forget(&layout, &one());
        assert!(StatIndex::load(&layout, &one()).is_empty());
    }

    #[test]
    fn a_corrupt_truncated_or_old_index_loads_empty() {
        let root = tempfile::tempdir().unwrap();
        let layout = AppLayout::new(root.path(), "shop").unwrap();
        let bytes = sample().encode();
        let path = index_path(&layout, &one());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let loads_empty = |content: &[u8]| {
            fs::write(&path, content).unwrap();
            StatIndex::load(&layout, &one()).is_empty()
        };
        assert!(!loads_empty(&bytes));
        for cut in [
            0,
            1,
            8,
            HEADER_LEN,
            HEADER_LEN + 3,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            assert!(loads_empty(&bytes[..cut]), "truncated at {cut}");
        }
        for flip in [0, 9, HEADER_LEN + 2, bytes.len() / 2, bytes.len() - 1] {
            let mut corrupt = bytes.clone();
            corrupt[flip] ^= 0x40;
            assert!(loads_empty(&corrupt), "byte {flip} flipped");
        }
        // The JSON of earlier versions, and a later format version.
        assert!(loads_empty(
            br#"{"a":{"ino":1,"size":1,"mtime_ns":1,"hash":"00"}}"#
        ));
        // Another format version: the one before (no change times) or a later one.
        for version in [FORMAT_VERSION - 1, FORMAT_VERSION + 1] {
            let mut other = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
            other[8..12].copy_from_slice(&version.to_le_bytes());
            let checksum = *blake3::hash(&other).as_bytes();
            other.extend_from_slice(&checksum);
            assert!(loads_empty(&other), "format {version}");
        }
        // Entries out of order or given twice (lookups rely on sorted, unique paths).
        let stat = sample().files[0].stat;
        for paths in [["b", "a"], ["a", "a"]] {
            let mut raw = MAGIC.to_vec();
            raw.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            raw.extend_from_slice(&2u64.to_le_bytes());
            for path in paths {
                let one = StatIndex::from_files([(path.to_owned(), stat)]).encode();
                raw.extend_from_slice(&one[HEADER_LEN..one.len() - CHECKSUM_LEN]);
            }
            let checksum = *blake3::hash(&raw).as_bytes();
            raw.extend_from_slice(&checksum);
            assert!(loads_empty(&raw), "{paths:?}");
        }
        // A well-formed file whose count does not match its entries.
        let mut lying = bytes[..bytes.len() - CHECKSUM_LEN].to_vec();
        lying[12..20].copy_from_slice(&49u64.to_le_bytes());
        let checksum = *blake3::hash(&lying).as_bytes();
        lying.extend_from_slice(&checksum);
        assert!(loads_empty(&lying));
    }

    #[test]
    fn only_an_unchanged_file_with_the_recorded_hash_is_vouched_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"content").unwrap();
        let hash = ContentHash::of(b"content");
        let metadata = fs::symlink_metadata(&path).unwrap();
        let index = StatIndex::from_files([("f".to_owned(), FileStat::of(&metadata, hash))]);
        assert!(index.vouches_for("f", &metadata, &hash));
        assert!(!index.vouches_for("f", &metadata, &ContentHash::of(b"other")));
        assert!(!index.vouches_for("g", &metadata, &hash));
        // Rewritten with the same size, its modification time put back: only the change
        // time tells.
        let modified = metadata.modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(&path, b"CONTENT").unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let restored = fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            (restored.len(), restored.modified().unwrap()),
            (metadata.len(), modified)
        );
        assert!(!index.vouches_for("f", &restored, &hash));
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let chmodded = fs::symlink_metadata(&path).unwrap();
        if permission_bits(&chmodded) != permission_bits(&metadata) {
            assert!(!index.vouches_for("f", &chmodded, &hash));
        }
    }
}
