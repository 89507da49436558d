//! Blobs on disk, one file per blob under `ROOT/ab/abcdef…`, written so a crash leaves a
//! blob whole or absent: every batch is written to temp files, made durable with one
//! `syncfs`, renamed into place, and made durable again. One sync per batch instead of one
//! per file keeps uploading ten thousand small files fast.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{CasError, CasResult};
use crate::hash::ContentHash;

/// The mode of every blob file: readable by all, writable by no one.
pub const BLOB_MODE: u32 = 0o444;

/// A directory of blobs.
pub struct BlobStore {
    root: PathBuf,
    next_temp: AtomicU64,
    /// How each blob stored by [`BlobStore::put_unsynced`] looked when written, so that a
    /// caller using it right after can trust it without reading it again.
    written: Mutex<HashMap<ContentHash, WrittenAs>>,
    /// The shard directories (by a hash's first byte) known to exist.
    shards_made: [AtomicBool; 256],
    /// Whether a [`BlobStore::start_flush`] is running.
    flushing: Arc<AtomicBool>,
}

/// The facts of a blob file that any change to it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WrittenAs {
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl WrittenAs {
    fn of(metadata: &fs::Metadata) -> WrittenAs {
        let ns = |secs: i64, nsecs: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsecs);
        WrittenAs {
            ino: metadata.ino(),
            size: metadata.len(),
            mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// What an integrity check found for one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobHealth {
    Intact,
    Missing,
    /// The bytes on disk no longer hash to the blob's address.
    Corrupt,
}

impl BlobStore {
    /// Opens (creating) the store at `root`, clearing temp files a crash left behind.
    pub fn open(root: &Path) -> CasResult<BlobStore> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|e| CasError::io(&tmp, e))?;
        for leftover in fs::read_dir(&tmp).map_err(|e| CasError::io(&tmp, e))? {
            let leftover = leftover.map_err(|e| CasError::io(&tmp, e))?.path();
            fs::remove_file(&leftover).map_err(|e| CasError::io(&leftover, e))?;
        }
        Ok(BlobStore {
            root: root.to_owned(),
            next_temp: AtomicU64::new(0),
            written: Mutex::new(HashMap::new()),
            shards_made: std::array::from_fn(|_| AtomicBool::new(false)),
            flushing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Where the blob `hash` lives.
    pub fn path_of(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Whether the blob is stored.
    pub fn contains(&self, hash: &ContentHash) -> bool {
        self.path_of(hash).is_file()
    }

    /// The size of the blob as stored, if it is stored.
    pub fn size(&self, hash: &ContentHash) -> Option<u64> {
        fs::metadata(self.path_of(hash))
            .ok()
            .filter(fs::Metadata::is_file)
            .map(|m| m.len())
    }

    /// Stores a batch of blobs, each checked against its hash first; a mismatch refuses the
    /// whole batch. Returns the bytes newly stored (blobs already present cost nothing).
    pub fn put_batch(&self, blobs: &[(ContentHash, &[u8])]) -> CasResult<u64> {
        for (hash, data) in blobs {
            check_hash(hash, data)?;
        }
        let mut written = Vec::new();
        let stored = self.write_and_place(blobs, &mut written);
        if stored.is_err() {
            // A failed batch (a full disk, say) leaves no temp file behind to fill it further.
            for (_, temp, _) in &written {
                let _ = fs::remove_file(temp);
            }
        }
        stored
    }

    /// [`BlobStore::put_batch`]'s work: every new blob written to a temp file (listed in
    /// `written`), synced, then renamed into place.
    fn write_and_place(
        &self,
        blobs: &[(ContentHash, &[u8])],
        written: &mut Vec<(ContentHash, PathBuf, u64)>,
    ) -> CasResult<u64> {
        let mut seen = std::collections::HashSet::new();
        for (hash, data) in blobs {
            if !seen.insert(*hash) || self.contains(hash) {
                continue;
            }
            let (temp, _) = self.write_temp(hash, data)?;
            written.push((*hash, temp, data.len() as u64));
        }
        if written.is_empty() {
            return Ok(0);
        }
        self.sync()?;
        let mut n_bytes = 0;
        for (hash, temp, len) in written.iter() {
            self.rename_into_place(temp, hash)?;
            n_bytes += len;
        }
        self.sync()?;
        Ok(n_bytes)
    }

    /// Stores one blob, checked against its hash, without waiting for the disk: for a cache
    /// whose blobs are checked again whenever they are used, so that one a crash left
    /// incomplete is found then and fetched again (and the filesystem is synced anyway
    /// before anything made from it counts). Returns whether it was stored now (false when
    /// it was there already).
    pub fn put_unsynced(&self, hash: &ContentHash, data: &[u8]) -> CasResult<bool> {
        check_hash(hash, data)?;
        if self.contains(hash) {
            return Ok(false);
        }
        let (temp, file) = self.write_temp(hash, data)?;
        self.rename_into_place(&temp, hash)?;
        // Taken after the rename, which changes the file's change time.
        let metadata = file.metadata().map_err(|e| CasError::io(&temp, e))?;
        self.written_lock().insert(*hash, WrittenAs::of(&metadata));
        Ok(true)
    }

    /// Whether this store wrote blob `hash` with [`BlobStore::put_unsynced`] (checked against
    /// its hash then) since [`BlobStore::forget_written`], and `metadata` (of its file now)
    /// shows it exactly as written: same inode, size, modification and change times.
    pub fn wrote_as(&self, hash: &ContentHash, metadata: &fs::Metadata) -> bool {
        self.written_lock().get(hash) == Some(&WrittenAs::of(metadata))
    }

    /// Forgets what [`BlobStore::wrote_as`] vouches for.
    pub fn forget_written(&self) {
        self.written_lock().clear();
    }

    fn written_lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContentHash, WrittenAs>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `data` to a new temp file for blob `hash`, read-only (whatever the umask):
    /// a blob never changes, and an agent hard-links cache blobs into read-only releases,
    /// which needs the same mode.
    fn write_temp(&self, hash: &ContentHash, data: &[u8]) -> CasResult<(PathBuf, File)> {
        let temp = self.root.join("tmp").join(format!(
            "{}.{}.{}",
            hash.to_hex(),
            std::process::id(),
            self.next_temp.fetch_add(1, Ordering::Relaxed)
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(BLOB_MODE)
            .open(&temp)
            .map_err(|e| CasError::io(&temp, e))?;
        let filled = file
            .write_all(data)
            .and_then(|()| file.set_permissions(fs::Permissions::from_mode(BLOB_MODE)));
        if let Err(e) = filled {
            // Half a blob on a full disk would only keep it full.
            let _ = fs::remove_file(&temp);
            return Err(CasError::io(&temp, e));
        }
        Ok((temp, file))
    }

    /// Renames a written temp file to blob `hash`'s place.
    fn rename_into_place(&self, temp: &Path, hash: &ContentHash) -> CasResult<()> {
        let target = self.path_of(hash);
        let shard = target.parent().expect("blob paths have a shard directory");
        let shard_made = &self.shards_made[usize::from(hash.0[0])];
        if !shard_made.load(Ordering::Relaxed) {
            fs::create_dir_all(shard).map_err(|e| CasError::io(shard, e))?;
            shard_made.store(true, Ordering::Relaxed);
        }
        match fs::rename(temp, &target) {
            // The shard was removed behind the store's back: make it again.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !shard.is_dir() => {
                fs::create_dir_all(shard).map_err(|e| CasError::io(shard, e))?;
                fs::rename(temp, &target)
            }
            renamed => renamed,
        }
        .map_err(|e| CasError::io(&target, e))
    }

    /// Starts writing what [`BlobStore::put_unsynced`] stored out to the disk in the
    /// background, so that a sync waited for later (staging's) finds little left to do.
    /// Nothing is promised about when it is done; at most one such flush runs at a time.
    pub fn start_flush(&self) {
        if self.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (root, flushing) = (self.root.clone(), Arc::clone(&self.flushing));
        std::thread::spawn(move || {
            if let Ok(dir) = File::open(&root) {
                let _ = rustix::fs::syncfs(&dir);
            }
            flushing.store(false, Ordering::Release);
        });
    }

    /// Flushes everything written under the root (file data and directory entries).
    fn sync(&self) -> CasResult<()> {
        let dir = File::open(&self.root).map_err(|e| CasError::io(&self.root, e))?;
        rustix::fs::syncfs(&dir).map_err(|e| CasError::io(&self.root, e.into()))
    }

    /// The blob's bytes, checked against its hash.
    pub fn read(&self, hash: &ContentHash) -> CasResult<Vec<u8>> {
        let path = self.path_of(hash);
        let mut data = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|e| CasError::io(&path, e))?;
        if ContentHash::of(&data) != *hash {
            return Err(CasError::io(
                &path,
                std::io::Error::other("the blob is corrupt: its content does not match its hash; run `ferry server fsck`"),
            ));
        }
        Ok(data)
    }

    /// Removes a blob; returns whether it was there.
    pub fn remove(&self, hash: &ContentHash) -> CasResult<bool> {
        let path = self.path_of(hash);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CasError::io(&path, e)),
        }
    }

    /// Re-hashes one blob.
    pub fn check(&self, hash: &ContentHash) -> CasResult<BlobHealth> {
        let path = self.path_of(hash);
        match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BlobHealth::Missing),
            Err(e) => Err(CasError::io(&path, e)),
            Ok(file) => {
                let mut hasher = blake3::Hasher::new();
                hasher
                    .update_reader(file)
                    .map_err(|e| CasError::io(&path, e))?;
                Ok(if ContentHash::from(hasher.finalize()) == *hash {
                    BlobHealth::Intact
                } else {
                    BlobHealth::Corrupt
                })
            }
        }
    }

    /// Moves a corrupt blob aside (to `ROOT/quarantine`), so it reads as missing and the
    /// next upload of the same content stores it again.
    pub fn quarantine(&self, hash: &ContentHash) -> CasResult<()> {
        let dir = self.root.join("quarantine");
        fs::create_dir_all(&dir).map_err(|e| CasError::io(&dir, e))?;
        let target = dir.join(hash.to_hex());
        fs::rename(self.path_of(hash), &target).map_err(|e| CasError::io(&target, e))
    }

    /// Every blob on disk, with its size and when it was written (garbage collection
    /// keeps young ones: they may belong to an upload whose release is not created yet).
    pub fn stored(&self) -> CasResult<Vec<StoredBlob>> {
        let mut stored: Vec<StoredBlob> = self
            .files()?
            .into_iter()
            .filter_map(|file| match file.kind {
                StoreFileKind::Blob(hash) => Some(StoredBlob {
                    hash,
                    size: file.size,
                    written: file.modified,
                }),
                StoreFileKind::Quarantined | StoreFileKind::Temp => None,
            })
            .collect();
        stored.sort_by_key(|blob| blob.hash);
        Ok(stored)
    }

    /// Every file in the store's directory, unordered: its blobs, the blobs moved aside as
    /// corrupt, and temp files (of writes under way, or left by a crash), each with what
    /// deciding whether it can go needs. A file removed while the directory is read is left
    /// out.
    pub fn files(&self) -> CasResult<Vec<StoreFile>> {
        let mut files = Vec::new();
        for dir in fs::read_dir(&self.root).map_err(|e| CasError::io(&self.root, e))? {
            let dir = dir.map_err(|e| CasError::io(&self.root, e))?.path();
            if !dir.is_dir() {
                continue;
            }
            let name = dir.file_name().unwrap_or_default();
            // Shards hold blobs named by their hash; the other two, files of any name.
            let kind_of = |file: &str| match name.to_str() {
                Some("tmp") => Some(StoreFileKind::Temp),
                Some("quarantine") => Some(StoreFileKind::Quarantined),
                _ => ContentHash::from_hex(file).map(StoreFileKind::Blob),
            };
            for file in fs::read_dir(&dir).map_err(|e| CasError::io(&dir, e))? {
                let file = file.map_err(|e| CasError::io(&dir, e))?;
                let Some(kind) = file.file_name().to_str().and_then(kind_of) else {
                    continue;
                };
                let path = file.path();
                let metadata = match fs::symlink_metadata(&path) {
                    Ok(metadata) => metadata,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(CasError::io(&path, e)),
                };
                files.push(StoreFile {
                    kind,
                    size: metadata.len(),
                    links: metadata.nlink(),
                    modified: metadata.modified().map_err(|e| CasError::io(&path, e))?,
                    path,
                });
            }
        }
        Ok(files)
    }
}

/// A file in a blob store's directory, as [`BlobStore::files`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreFile {
    pub path: PathBuf,
    pub kind: StoreFileKind,
    pub size: u64,
    /// The hard links to its inode: more than one when something outside the store links
    /// it (an agent's release does).
    pub links: u64,
    /// Its modification time: when it was written.
    pub modified: std::time::SystemTime,
}

/// What a file in a blob store's directory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFileKind {
    Blob(ContentHash),
    /// A blob moved aside by [`BlobStore::quarantine`].
    Quarantined,
    /// A blob being written, or one a crash left half-written.
    Temp,
}

/// A blob as its store lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    pub hash: ContentHash,
    pub size: u64,
    /// When it was last written: its file's modification time, an object's last-modified.
    pub written: std::time::SystemTime,
}

/// Refuses content that does not hash to its address.
fn check_hash(hash: &ContentHash, data: &[u8]) -> CasResult<()> {
    if ContentHash::of(data) != *hash {
        return Err(CasError::rejected(
            hash.to_hex(),
            "the content does not match its hash (corrupted in transit?)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes over a (read-only) blob file, as someone with a shell on the machine might.
    fn overwrite(path: &Path, content: &[u8]) {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(path, content).unwrap();
    }

    #[test]
    fn blob_files_are_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (a, b) = (ContentHash::of(b"a"), ContentHash::of(b"b"));
        store.put_batch(&[(a, b"a")]).unwrap();
        store.put_unsynced(&b, b"b").unwrap();
        for hash in [a, b] {
            let mode = fs::metadata(store.path_of(&hash))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o7777, BLOB_MODE);
        }
    }

    #[test]
    fn blobs_round_trip_and_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = (ContentHash::of(b"alpha"), &b"alpha"[..]);
        let b = (ContentHash::of(b"beta"), &b"beta"[..]);
        assert_eq!(store.put_batch(&[a, b, a]).unwrap(), 9);
        assert_eq!(store.put_batch(&[a]).unwrap(), 0);
        assert_eq!(store.read(&a.0).unwrap(), b"alpha");
        assert_eq!(store.stored().unwrap().len(), 2);
        assert!(store.remove(&b.0).unwrap());
        assert!(!store.contains(&b.0));
        assert_eq!(store.check(&b.0).unwrap(), BlobHealth::Missing);
    }

    #[test]
    fn a_blob_stored_unsynced_is_vouched_for_only_while_it_looks_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let hash = ContentHash::of(b"content");
        let bad = store.put_unsynced(&hash, b"c0ntent").unwrap_err();
        assert!(bad.is_bad_input() && !store.contains(&hash));
        assert!(store.put_unsynced(&hash, b"content").unwrap());
        assert!(!store.put_unsynced(&hash, b"content").unwrap());
        assert_eq!(store.read(&hash).unwrap(), b"content");
        let now = || fs::metadata(store.path_of(&hash)).unwrap();
        assert!(store.wrote_as(&hash, &now()));
        assert!(!store.wrote_as(&ContentHash::of(b"other"), &now()));
        // Rewritten in place (even with the same size): no longer vouched for.
        std::thread::sleep(std::time::Duration::from_millis(10));
        overwrite(&store.path_of(&hash), b"c0ntent");
        assert!(!store.wrote_as(&hash, &now()));
        store.quarantine(&hash).unwrap();
        assert!(store.put_unsynced(&hash, b"content").unwrap());
        assert!(store.wrote_as(&hash, &now()));
        store.forget_written();
        assert!(!store.wrote_as(&hash, &now()));
    }

    #[test]
    fn a_mismatched_blob_refuses_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let good = (ContentHash::of(b"good"), &b"good"[..]);
        let bad = (ContentHash::of(b"expected"), &b"tampered"[..]);
        let error = store.put_batch(&[good, bad]).unwrap_err();
        assert!(error.is_bad_input() && error.to_string().contains("does not match its hash"));
        assert!(store.stored().unwrap().is_empty());
    }

    #[test]
    fn corruption_on_disk_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let hash = ContentHash::of(b"content");
        store.put_batch(&[(hash, b"content")]).unwrap();
        assert_eq!(store.check(&hash).unwrap(), BlobHealth::Intact);
        overwrite(&store.path_of(&hash), b"c0ntent");
        assert_eq!(store.check(&hash).unwrap(), BlobHealth::Corrupt);
        assert!(store.read(&hash).is_err());
    }

    #[test]
    fn stored_blobs_are_listed_with_their_size_and_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let before = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
        let (a, b) = (ContentHash::of(b"a"), ContentHash::of(b"bb"));
        store.put_batch(&[(a, b"a"), (b, b"bb")]).unwrap();
        let stored = store.stored().unwrap();
        let mut expected = vec![(a, 1), (b, 2)];
        expected.sort();
        let listed: Vec<(ContentHash, u64)> = stored.iter().map(|s| (s.hash, s.size)).collect();
        assert_eq!(listed, expected);
        assert!(stored.iter().all(|s| s.written > before));
    }

    #[test]
    fn quarantined_blobs_read_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let hash = ContentHash::of(b"x");
        store.put_batch(&[(hash, b"x")]).unwrap();
        store.quarantine(&hash).unwrap();
        assert!(!store.contains(&hash));
        assert!(store.stored().unwrap().is_empty());
    }

    #[test]
    fn every_file_is_listed_with_its_kind_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let (kept, corrupt) = (ContentHash::of(b"kept"), ContentHash::of(b"corrupt"));
        store
            .put_batch(&[(kept, b"kept"), (corrupt, b"corrupt")])
            .unwrap();
        store.quarantine(&corrupt).unwrap();
        fs::hard_link(store.path_of(&kept), dir.path().join("linked")).unwrap();
        fs::write(dir.path().join("tmp/half-written"), b"x").unwrap();
        let mut listed: Vec<(StoreFileKind, u64, u64)> = store
            .files()
            .unwrap()
            .iter()
            .map(|file| (file.kind, file.size, file.links))
            .collect();
        listed.sort_by_key(|(kind, ..)| format!("{kind:?}"));
        assert_eq!(
            listed,
            [
                (StoreFileKind::Blob(kept), 4, 2),
                (StoreFileKind::Quarantined, 7, 1),
                (StoreFileKind::Temp, 1, 1),
            ]
        );
    }

    #[test]
    fn leftover_temp_files_are_cleared_on_open() {
        let dir = tempfile::tempdir().unwrap();
        BlobStore::open(dir.path()).unwrap();
        fs::write(dir.path().join("tmp/half-written"), b"x").unwrap();
        BlobStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
