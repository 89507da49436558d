//! Where a release's file content comes from on a target: a file of a release on disk
//! (the one before, or the release itself while it is repaired), a blob of the cache, or
//! the cache's blobs written out. Every file taken from any of them is checked against the
//! manifest's hash first: hashed again, or, for a file of a release that looks exactly as
//! it did when staged, vouched for by that release's stat index. Only a file its index
//! vouches for is hard-linked from a release; one that changed in any way since (even back
//! to the right content) is copied, so an inode someone touched never spreads further.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferry_cas::blobs::{BlobHealth, BlobStore, BLOB_MODE};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Chunk, Entry, EntryKind};

use crate::error::{AgentError, AgentResult};
use crate::fsutil::{hash_file, permission_bits};
use crate::layout::{AppLayout, Installed};
use crate::link_changes::LinkChanges;
use crate::modes::placed_mode;
use crate::stat_index::{FileStat, StatIndex};
use ferry_cas::release_config::ReleaseConfig;

/// What the manifest says about one regular file, and the mode it has on the target.
#[derive(Clone, Copy, Debug)]
pub struct FileFacts<'e> {
    pub path: &'e str,
    /// The mode on the target: the manifest's, read-only unless the application writes
    /// the path itself (see [`crate::modes`]).
    pub mode: u32,
    /// The size the manifest declares: compared with files, never trusted for allocation.
    pub size: u64,
    pub hash: ContentHash,
    /// Empty for a file stored as one blob.
    pub chunks: &'e [Chunk],
}

impl<'e> FileFacts<'e> {
    /// The facts of a file entry of a release with `config`; `None` for directories and
    /// symlinks.
    pub fn of(entry: &'e Entry, config: &ReleaseConfig) -> Option<FileFacts<'e>> {
        match &entry.kind {
            EntryKind::File {
                mode,
                size,
                hash,
                chunks,
            } => Some(FileFacts {
                path: &entry.path,
                mode: placed_mode(*mode, config.is_written_by_application(&entry.path)),
                size: *size,
                hash: *hash,
                chunks,
            }),
            _ => None,
        }
    }

    /// The facts of the file at `path`, read before it was hashed, when it is exactly this
    /// one: regular, same mode, same size, and (read again) same hash.
    pub fn check_at(&self, path: &Path) -> Option<FileStat> {
        let metadata = fs::symlink_metadata(path).ok()?;
        (self.looks_like(&metadata) && hash_file(path).is_ok_and(|hash| hash == self.hash))
            .then(|| FileStat::of(&metadata, self.hash))
    }

    /// Whether `metadata` is of a regular file with this mode and size.
    fn looks_like(&self, metadata: &Metadata) -> bool {
        metadata.is_file() && permission_bits(metadata) == self.mode && metadata.len() == self.size
    }

    /// The blobs holding the content, with their sizes.
    pub fn blobs(&self) -> Vec<Chunk> {
        if self.chunks.is_empty() {
            vec![Chunk {
                hash: self.hash,
                size: self.size,
            }]
        } else {
            self.chunks.to_vec()
        }
    }
}

/// A file found on disk with exactly the content and mode wanted, to hard link, and its
/// facts as read when it was checked.
#[derive(Clone, Debug)]
pub struct Found {
    pub path: PathBuf,
    pub stat: FileStat,
}

/// A release on disk whose files can be taken, with what its stat index recorded.
struct SourceRelease {
    dir: PathBuf,
    index: StatIndex,
}

/// The places content can come from for one release being staged. Shared by the workers
/// that fill a release.
pub struct ContentSources<'a> {
    /// The releases on disk files may be taken from, in the order they are tried.
    releases: Vec<SourceRelease>,
    cache: &'a BlobStore,
    /// The links made from any of them, to carry into the stat indexes.
    changes: LinkChanges,
}

impl<'a> ContentSources<'a> {
    /// Sources for a release whose files may come from the releases `versions` of `layout`
    /// (those on disk; each once); reads their stat indexes.
    pub fn new(
        layout: &AppLayout,
        versions: &[Option<&Installed>],
        cache: &'a BlobStore,
    ) -> ContentSources<'a> {
        let mut seen: Vec<&Installed> = Vec::new();
        let mut releases = Vec::new();
        for version in versions.iter().flatten() {
            if seen.contains(version) || version.check().is_err() {
                continue;
            }
            seen.push(version);
            if layout.has_release(version) {
                releases.push(SourceRelease {
                    dir: layout.release_dir(version),
                    index: StatIndex::load(layout, version),
                });
            }
        }
        ContentSources {
            releases,
            cache,
            changes: LinkChanges::default(),
        }
    }

    /// The links made so far.
    pub fn changes(&self) -> &LinkChanges {
        &self.changes
    }

    /// What the releases' stat indexes alone say about taking `file` from them, without
    /// looking at the files: `Some(true)` when one recorded the same content, mode and
    /// size at this path, `Some(false)` when they recorded something else there, `None`
    /// when none recorded anything there (or there is no release to take from). A file
    /// changed by hand since it was staged is not noticed: staging checks again.
    pub fn recorded_in_releases(&self, file: &FileFacts) -> Option<bool> {
        let mut recorded_any = false;
        for release in &self.releases {
            if let Some(recorded) = release.index.get(file.path) {
                if recorded.hash == file.hash
                    && recorded.mode == file.mode
                    && recorded.size == file.size
                {
                    return Some(true);
                }
                recorded_any = true;
            }
        }
        recorded_any.then_some(false)
    }

    /// A release's identical file that its stat index vouches for (it looks exactly as it
    /// did when staged, apart from the agent's own links), to hard link. Nothing is read.
    pub fn vouched_in_releases(&self, file: &FileFacts) -> Option<Found> {
        self.releases.iter().find_map(|release| {
            let recorded = release.index.get(file.path)?;
            if recorded.hash != file.hash {
                return None;
            }
            let candidate = release.dir.join(file.path);
            let metadata = fs::symlink_metadata(&candidate).ok()?;
            (file.looks_like(&metadata) && self.changes.expected(recorded).describes(&metadata))
                .then(|| Found {
                    stat: FileStat::of(&metadata, file.hash),
                    path: candidate,
                })
        })
    }

    /// Whether a release on disk can provide `file`: vouched for by its index, or holding
    /// the right content (read and hashed) to copy.
    pub fn available_in_releases(&self, file: &FileFacts) -> bool {
        self.vouched_in_releases(file).is_some() || self.held_in_releases(file).is_some()
    }

    /// A regular file of a release with the right size whose content hashes to `file`'s.
    fn held_in_releases(&self, file: &FileFacts) -> Option<PathBuf> {
        self.releases.iter().find_map(|release| {
            let candidate = release.dir.join(file.path);
            let plausible =
                fs::symlink_metadata(&candidate).is_ok_and(|m| m.is_file() && m.len() == file.size);
            (plausible && hash_file(&candidate).is_ok_and(|hash| hash == file.hash))
                .then_some(candidate)
        })
    }

    /// The cache's blob file when it is the whole file with the right mode, to hard link.
    /// A hard link shares the inode and so its mode: a file whose mode differs from the
    /// blob's must be copied instead.
    /// A blob no release holds (one link) is linked when it hashes right, or without being
    /// read again when the cache itself just wrote it (checked against its hash then) and
    /// it still looks exactly as written. A blob releases already hold is linked only as
    /// this staging's own links left it: otherwise its inode is a release's file, which
    /// may have been touched since (it is linked from that release when its index vouches
    /// for it, else written from the blob as a copy).
    pub fn in_cache(&self, file: &FileFacts) -> Option<Found> {
        if !file.chunks.is_empty() {
            return None;
        }
        let candidate = self.cache.path_of(&file.hash);
        let mut metadata = fs::symlink_metadata(&candidate).ok()?;
        if metadata.nlink() == 1 && permission_bits(&metadata) == BLOB_MODE | 0o200 {
            // Stored before blobs were read-only: made so, once, while no release holds it.
            fs::set_permissions(&candidate, fs::Permissions::from_mode(BLOB_MODE)).ok()?;
            metadata = fs::symlink_metadata(&candidate).ok()?;
        }
        if !file.looks_like(&metadata) {
            return None;
        }
        let now = FileStat::of(&metadata, file.hash);
        let stat = if metadata.nlink() > 1 {
            self.changes.left_as(&now).then_some(now)?
        } else if self.cache.wrote_as(&file.hash, &metadata) {
            now
        } else {
            file.check_at(&candidate)?
        };
        Some(Found {
            path: candidate,
            stat,
        })
    }

    /// Hard-links `found` at `dest` and returns the file's facts after the link (which
    /// changed its change time), recording the link. `None` when the link cannot be made
    /// (another filesystem, too many links, protected_hardlinks) or the inode changed
    /// otherwise meanwhile (then `dest` is removed again).
    pub fn link(&self, found: &Found, dest: &Path) -> Option<FileStat> {
        fs::hard_link(&found.path, dest).ok()?;
        let after = fs::symlink_metadata(dest)
            .ok()
            .map(|metadata| FileStat::of(&metadata, found.stat.hash))
            .filter(|after| found.stat.only_relinked_to(after));
        match after {
            Some(after) => {
                self.changes.record(&found.stat, &after);
                Some(after)
            }
            None => {
                let _ = fs::remove_file(dest);
                None
            }
        }
    }

    /// Writes the file at `dest` (which must not exist) from the cache's blobs, checks
    /// the whole against the manifest's hash, and gives it its mode. Returns its facts as
    /// they are then (`fstat` of the written file). A blob missing from the cache is
    /// `AgentError::Missing`, and `dest` is removed again.
    pub fn write_from_cache(&self, file: &FileFacts, dest: &Path) -> AgentResult<FileStat> {
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| AgentError::io(dest, e))?;
        let written = self.fill_from_cache(file, dest, out);
        if written.is_err() {
            let _ = fs::remove_file(dest);
        }
        written
    }

    fn fill_from_cache(
        &self,
        file: &FileFacts,
        dest: &Path,
        mut out: File,
    ) -> AgentResult<FileStat> {
        let mut hasher = blake3::Hasher::new();
        for blob in file.blobs() {
            let data = read_blob(self.cache, file.path, &blob.hash)?;
            hasher.update(&data);
            out.write_all(&data).map_err(|e| AgentError::io(dest, e))?;
        }
        finish_file(file, dest, &out, &hasher)
    }

    /// Copies the file from a release on disk that holds its content (hashing what is
    /// copied), for a file no index vouches for and no blob provides. `None` when no
    /// release holds it.
    pub fn copy_from_releases(
        &self,
        file: &FileFacts,
        dest: &Path,
    ) -> AgentResult<Option<FileStat>> {
        for release in &self.releases {
            let source = release.dir.join(file.path);
            let plausible =
                fs::symlink_metadata(&source).is_ok_and(|m| m.is_file() && m.len() == file.size);
            let Some(input) = plausible.then(|| File::open(&source).ok()).flatten() else {
                continue;
            };
            let out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dest)
                .map_err(|e| AgentError::io(dest, e))?;
            match copy_hashing(input, out, file, dest) {
                Ok(stat) => return Ok(Some(stat)),
                Err(_) => {
                    fs::remove_file(dest).map_err(|e| AgentError::io(dest, e))?;
                }
            }
        }
        Ok(None)
    }

    /// The file's blobs that are not in the cache.
    pub fn missing_blobs(&self, file: &FileFacts) -> Vec<Chunk> {
        file.blobs()
            .into_iter()
            .filter(|blob| !self.cache.contains(&blob.hash))
            .collect()
    }
}

/// Copies `input` into `out` while hashing it; the copy counts only if it is `file`.
fn copy_hashing(
    mut input: File,
    mut out: File,
    file: &FileFacts,
    dest: &Path,
) -> AgentResult<FileStat> {
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = input
            .read(&mut buffer)
            .map_err(|e| AgentError::io(dest, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        out.write_all(&buffer[..n])
            .map_err(|e| AgentError::io(dest, e))?;
    }
    finish_file(file, dest, &out, &hasher)
}

/// Checks what was written to `out` is `file`'s content (its hash, and the size the
/// manifest declares), gives it its mode, and returns its facts (`fstat`).
fn finish_file(
    file: &FileFacts,
    dest: &Path,
    out: &File,
    hasher: &blake3::Hasher,
) -> AgentResult<FileStat> {
    if ContentHash::from(hasher.finalize()) != file.hash {
        return Err(AgentError::corrupt(
            dest,
            "the content written does not match the manifest's hash",
        ));
    }
    if hasher.count() != file.size {
        return Err(AgentError::corrupt(
            dest,
            format!(
                "the manifest says the file holds {} bytes, but its content has {}: the release's manifest is wrong",
                file.size,
                hasher.count()
            ),
        ));
    }
    out.set_permissions(fs::Permissions::from_mode(file.mode))
        .map_err(|e| AgentError::io(dest, e))?;
    let metadata = out.metadata().map_err(|e| AgentError::io(dest, e))?;
    Ok(FileStat::of(&metadata, file.hash))
}

/// The whole content of a small file of at most `max_bytes` (a release's `ferry.toml`):
/// from the first of the release directories `dirs` that holds it, else from the cache;
/// checked against the manifest's hash either way. A size over `max_bytes` is refused
/// before anything is read; the size the manifest declares is never used to allocate.
pub fn read_small_file(
    dirs: &[PathBuf],
    file: &FileFacts,
    cache: &BlobStore,
    max_bytes: u64,
) -> AgentResult<Vec<u8>> {
    if file.size > max_bytes {
        return Err(AgentError::Refused(format!(
            "{}: the manifest says it holds {} bytes, more than the {max_bytes} bytes it may have",
            file.path, file.size
        )));
    }
    for dir in dirs {
        let path = dir.join(file.path);
        // Only a regular file of the right size is read (never a FIFO left in its place).
        let plausible =
            fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == file.size);
        if let Some(data) = plausible.then(|| fs::read(&path).ok()).flatten() {
            if ContentHash::of(&data) == file.hash {
                return Ok(data);
            }
        }
    }
    let mut data = Vec::new();
    for blob in file.blobs() {
        data.extend_from_slice(&read_blob(cache, file.path, &blob.hash)?);
        if data.len() as u64 > file.size {
            break;
        }
    }
    if ContentHash::of(&data) != file.hash || data.len() as u64 != file.size {
        return Err(AgentError::Corrupt {
            path: file.path.to_owned(),
            reason: "the cached content does not match the manifest's hash and size".into(),
        });
    }
    Ok(data)
}

/// A blob from the cache. A corrupt one is quarantined and reported missing, so the agent
/// fetches it again instead of failing every deploy that needs it (also when another
/// worker moved it aside first).
fn read_blob(cache: &BlobStore, path: &str, hash: &ContentHash) -> AgentResult<Vec<u8>> {
    let missing = || AgentError::Missing {
        path: path.to_owned(),
        hash: *hash,
    };
    if !cache.contains(hash) {
        return Err(missing());
    }
    match cache.read(hash) {
        Ok(data) => Ok(data),
        Err(error) => match cache.check(hash)? {
            BlobHealth::Corrupt => match cache.quarantine(hash) {
                Ok(()) => Err(missing()),
                Err(_) if !cache.contains(hash) => Err(missing()),
                Err(error) => Err(error.into()),
            },
            BlobHealth::Missing => Err(missing()),
            BlobHealth::Intact => Err(error.into()),
        },
    }
}
