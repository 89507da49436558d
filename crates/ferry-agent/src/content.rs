//! Where a release's file content comes from on a target: the same file of the previous
//! release, a blob of the cache, or the cache's blobs written out. Every file taken from
//! any of them is checked against the manifest's hash first.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ferry_cas::blobs::{BlobHealth, BlobStore};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Chunk, Entry, EntryKind};

use crate::error::{AgentError, AgentResult};
use crate::fsutil::{hash_file, permission_bits};
use crate::layout::AppLayout;
use crate::stat_index::StatIndex;

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
        fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_file() && permission_bits(&m) == self.mode && m.len() == self.size)
            && hash_file(path).is_ok_and(|hash| hash == self.hash)
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

/// The places content can come from for one release being staged.
pub struct ContentSources<'a> {
    previous: Option<PathBuf>,
    /// How the previous release's files looked when it was staged.
    previous_index: StatIndex,
    cache: &'a BlobStore,
}

impl<'a> ContentSources<'a> {
    /// Sources for a release following `previous` (a release of `layout`, if on disk).
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

    /// The previous release's identical file, to hard link: trusted without reading it
    /// when it looks exactly as it did when staged, else hashed again.
    pub fn in_previous(&self, file: &FileFacts) -> Option<PathBuf> {
        let candidate = self.previous.as_ref()?.join(file.path);
        let unchanged = fs::symlink_metadata(&candidate).is_ok_and(|m| {
            m.is_file()
                && permission_bits(&m) == file.mode
                && m.len() == file.size
                && self.previous_index.vouches_for(file.path, &m, &file.hash)
        });
        (unchanged || file.is_at(&candidate)).then_some(candidate)
    }

    /// The cache's blob file when it is the whole file with the right mode, to hard link.
    /// A hard link shares the inode and so its mode: a file whose mode differs from the
    /// blob's must be copied instead.
    pub fn in_cache(&self, file: &FileFacts) -> Option<PathBuf> {
        if !file.chunks.is_empty() {
            return None;
        }
        let candidate = self.cache.path_of(&file.hash);
        file.is_at(&candidate).then_some(candidate)
    }

    /// Writes the file at `dest` (which must not exist) from the cache's blobs, checks
    /// the whole against the manifest's hash, and gives it its mode. Returns its size.
    pub fn write_from_cache(&self, file: &FileFacts, dest: &Path) -> AgentResult<u64> {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .map_err(|e| AgentError::io(dest, e))?;
        let mut hasher = blake3::Hasher::new();
        for blob in file.blobs() {
            let data = self.read_blob(file.path, &blob.hash)?;
            hasher.update(&data);
            out.write_all(&data).map_err(|e| AgentError::io(dest, e))?;
        }
        if ContentHash::from(hasher.finalize()) != file.hash {
            return Err(AgentError::corrupt(
                dest,
                "the content written does not match the manifest's hash",
            ));
        }
        drop(out);
        fs::set_permissions(dest, fs::Permissions::from_mode(file.mode))
            .map_err(|e| AgentError::io(dest, e))?;
        Ok(file.size)
    }

    /// The whole content of a (small) file, from the previous release or the cache.
    pub fn read(&self, file: &FileFacts) -> AgentResult<Vec<u8>> {
        if let Some(previous) = self.in_previous(file) {
            let data = fs::read(&previous).map_err(|e| AgentError::io(&previous, e))?;
            if ContentHash::of(&data) == file.hash {
                return Ok(data);
            }
        }
        let mut data = Vec::with_capacity(file.size as usize);
        for blob in file.blobs() {
            data.extend_from_slice(&self.read_blob(file.path, &blob.hash)?);
        }
        if ContentHash::of(&data) != file.hash {
            return Err(AgentError::Corrupt {
                path: file.path.to_owned(),
                reason: "the cached content does not match the manifest's hash".into(),
            });
        }
        Ok(data)
    }

    /// The file's blobs that are not in the cache.
    pub fn missing_blobs(&self, file: &FileFacts) -> Vec<Chunk> {
        file.blobs()
            .into_iter()
            .filter(|blob| !self.cache.contains(&blob.hash))
            .collect()
    }

    /// A blob from the cache. A corrupt one is quarantined and reported missing, so the
    /// agent fetches it again instead of failing every deploy that needs it.
    fn read_blob(&self, path: &str, hash: &ContentHash) -> AgentResult<Vec<u8>> {
        let missing = || AgentError::Missing {
            path: path.to_owned(),
            hash: *hash,
        };
        if !self.cache.contains(hash) {
            return Err(missing());
        }
        match self.cache.read(hash) {
            Ok(data) => Ok(data),
            Err(error) => match self.cache.check(hash)? {
                BlobHealth::Corrupt => {
                    self.cache.quarantine(hash)?;
                    Err(missing())
                }
                BlobHealth::Missing => Err(missing()),
                BlobHealth::Intact => Err(error.into()),
            },
        }
    }
}
