//! Where a release's file content comes from on a target: the same file of the previous
//! release, a blob of the cache, or the cache's blobs written out. Every file taken from
//! any of them is checked against the manifest's hash first: hashed again, or, for a file
//! of the previous release that looks exactly as it did when staged, vouched for by that
//! release's stat index.

use std::fs::{self, Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ferry_cas::blobs::{BlobHealth, BlobStore};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Chunk, Entry, EntryKind};

use crate::error::{AgentError, AgentResult};
use crate::fsutil::{hash_file, permission_bits};
use crate::layout::AppLayout;
use crate::stat_index::{FileStat, StatIndex};

/// What the manifest says about one regular file.
#[derive(Clone, Copy, Debug)]
pub struct FileFacts<'e> {
    pub path: &'e str,
    pub mode: u32,
    pub size: u64,
    pub hash: ContentHash,
    /// Empty for a file stored as one blob.
    pub chunks: &'e [Chunk],
}

impl<'e> FileFacts<'e> {
    /// The facts of a file entry; `None` for directories and symlinks.
    pub fn of(entry: &'e Entry) -> Option<FileFacts<'e>> {
        match &entry.kind {
            EntryKind::File {
                mode,
                size,
                hash,
                chunks,
            } => Some(FileFacts {
                path: &entry.path,
                mode: *mode,
                size: *size,
                hash: *hash,
                chunks,
            }),
            _ => None,
        }
    }

    /// Whether the file at `path` is exactly this one: regular, same mode, same size, and
    /// (read again) same hash.
    pub fn is_at(&self, path: &Path) -> bool {
        self.check_at(path).is_some()
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
/// facts as read when it was checked (a hard link shares them).
#[derive(Clone, Debug)]
pub struct Found {
    pub path: PathBuf,
    pub stat: FileStat,
}

/// The places content can come from for one release being staged. Shared by the workers
/// that fill a release.
pub struct ContentSources<'a> {
    previous: Option<PathBuf>,
    /// How the previous release's files looked when it was staged.
    previous_index: StatIndex,
    cache: &'a BlobStore,
}

impl<'a> ContentSources<'a> {
    /// Sources for a release following `previous` (a release of `layout`, if on disk);
    /// reads the previous release's stat index.
    pub fn new(
        layout: &AppLayout,
        previous: Option<&str>,
        cache: &'a BlobStore,
    ) -> ContentSources<'a> {
        let previous = previous.filter(|v| layout.has_release(v));
        ContentSources {
            previous: previous.map(|v| layout.release_dir(v)),
            previous_index: previous
                .map_or_else(StatIndex::default, |v| StatIndex::load(layout, v)),
            cache,
        }
    }

    /// What the previous release's stat index alone says about taking `file` from it,
    /// without looking at the file: `Some(true)` when the index recorded the same content,
    /// mode and size at this path, `Some(false)` when it recorded something else there,
    /// `None` when it recorded nothing there (or there is no previous release). A file
    /// changed by hand since it was staged is not noticed: staging checks again.
    pub fn recorded_in_previous(&self, file: &FileFacts) -> Option<bool> {
        self.previous.as_ref()?;
        let recorded = self.previous_index.get(file.path)?;
        Some(recorded.hash == file.hash && recorded.mode == file.mode && recorded.size == file.size)
    }

    /// The previous release's identical file, to hard link: trusted without reading it
    /// when it looks exactly as it did when staged, else hashed again. A file that looks
    /// as it did when staged with other content is refused without being read.
    pub fn in_previous(&self, file: &FileFacts) -> Option<Found> {
        let candidate = self.previous.as_ref()?.join(file.path);
        let metadata = fs::symlink_metadata(&candidate).ok()?;
        if !file.looks_like(&metadata) {
            return None;
        }
        let same = match self.previous_index.get(file.path) {
            Some(recorded) if recorded.describes(&metadata) => recorded.hash == file.hash,
            _ => hash_file(&candidate).is_ok_and(|hash| hash == file.hash),
        };
        same.then(|| Found {
            stat: FileStat::of(&metadata, file.hash),
            path: candidate,
        })
    }

    /// The cache's blob file when it is the whole file with the right mode, to hard link.
    /// A hard link shares the inode and so its mode: a file whose mode differs from the
    /// blob's must be copied instead.
    /// A blob the cache itself just wrote (checked against its hash then) and that still
    /// looks exactly as written is not read again.
    pub fn in_cache(&self, file: &FileFacts) -> Option<Found> {
        if !file.chunks.is_empty() {
            return None;
        }
        let candidate = self.cache.path_of(&file.hash);
        let metadata = fs::symlink_metadata(&candidate).ok()?;
        let stat = if file.looks_like(&metadata) && self.cache.wrote_as(&file.hash, &metadata) {
            FileStat::of(&metadata, file.hash)
        } else {
            file.check_at(&candidate)?
        };
        Some(Found {
            path: candidate,
            stat,
        })
    }

    /// Writes the file at `dest` (which must not exist) from the cache's blobs, checks
    /// the whole against the manifest's hash, and gives it its mode. Returns its facts as
    /// they are then (`fstat` of the written file).
    pub fn write_from_cache(&self, file: &FileFacts, dest: &Path) -> AgentResult<FileStat> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| AgentError::io(dest, e))?;
        let mut hasher = blake3::Hasher::new();
        for blob in file.blobs() {
            let data = read_blob(self.cache, file.path, &blob.hash)?;
            hasher.update(&data);
            out.write_all(&data).map_err(|e| AgentError::io(dest, e))?;
        }
        if ContentHash::from(hasher.finalize()) != file.hash {
            return Err(AgentError::corrupt(
                dest,
                "the content written does not match the manifest's hash",
            ));
        }
        out.set_permissions(fs::Permissions::from_mode(file.mode))
            .map_err(|e| AgentError::io(dest, e))?;
        let metadata = out.metadata().map_err(|e| AgentError::io(dest, e))?;
        Ok(FileStat::of(&metadata, file.hash))
    }

    /// The file's blobs that are not in the cache.
    pub fn missing_blobs(&self, file: &FileFacts) -> Vec<Chunk> {
        file.blobs()
            .into_iter()
            .filter(|blob| !self.cache.contains(&blob.hash))
            .collect()
    }
}

/// The whole content of a (small) file: from the first of the release directories `dirs`
/// that holds it, else from the cache; checked against the manifest's hash either way.
pub fn read_file(dirs: &[PathBuf], file: &FileFacts, cache: &BlobStore) -> AgentResult<Vec<u8>> {
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
    let mut data = Vec::with_capacity(file.size as usize);
    for blob in file.blobs() {
        data.extend_from_slice(&read_blob(cache, file.path, &blob.hash)?);
    }
    if ContentHash::of(&data) != file.hash {
        return Err(AgentError::Corrupt {
            path: file.path.to_owned(),
            reason: "the cached content does not match the manifest's hash".into(),
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
