//! What each file of an application's backup paths looked like when the last backup read
//! it (mode, inode, size, modification and change times) with its content's hash and, for
//! a large file, its chunks: a file that still looks exactly the same is not read again,
//! the way the stat index ([`crate::stat_index`]) spares staging and the drift check.
//!
//! A file whose change time is within [`RACY_WINDOW_NS`] of the backup that read it is not
//! recorded: the filesystem's clock ticks coarsely, and a second write in the same tick
//! would leave every fact the same; such a file is simply read again next time.
//!
//! On disk (`ROOT/.ferry/backup/APP.index`), all integers little-endian:
//!
//! ```text
//! magic "FERRYBKI", format version: u32, number of entries: u64
//! per entry: path length: u32, path (UTF-8), mode: u32, ino: u64, size: u64,
//!            mtime_ns: i128, ctime_ns: i128, hash: 32 bytes,
//!            number of chunks: u32, per chunk: hash: 32 bytes, size: u64
//! BLAKE3 of everything before it: 32 bytes
//! ```
//!
//! Anything else loads as an empty index, which trusts nothing and costs only reading every
//! file once. Losing it costs the same, so it is written to a temporary file and renamed,
//! without a sync.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Chunk;

use crate::index_file;
use crate::layout::state_dir;
use crate::stat_index::FileStat;

const MAGIC: &[u8; 8] = b"FERRYBKI";
const FORMAT_VERSION: u32 = 1;
/// Everything of an entry but its path and chunks: its facts and its number of chunks.
const ENTRY_FIXED_LEN: usize = index_file::ENTRY_FIXED_LEN + 4;
/// A chunk's hash and size.
const CHUNK_LEN: usize = 32 + 8;

/// How close to the backup a file's change time may be and still be recorded: well past
/// the coarsest tick of a filesystem's clock.
pub const RACY_WINDOW_NS: i128 = 1_000_000_000;

/// Where the backup index of `app` lives.
pub fn index_path(root: &Path, app: &str) -> PathBuf {
    state_dir(root).join("backup").join(format!("{app}.index"))
}

/// A file as the last backup read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedFile {
    pub stat: FileStat,
    /// Empty for a file stored as one blob.
    pub chunks: Vec<Chunk>,
}

/// The files of one application's backup paths, by path relative to `shared/`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupIndex {
    files: HashMap<String, IndexedFile>,
}

impl BackupIndex {
    /// The index at `path`; empty when there is none or it is unreadable.
    pub fn load(path: &Path) -> BackupIndex {
        fs::read(path)
            .ok()
            .and_then(|bytes| BackupIndex::decode(&bytes))
            .unwrap_or_default()
    }

    /// Writes the index to `path`. Best effort: a failure leaves no index, which only
    /// costs reading every file once more.
    pub fn save(&self, path: &Path) {
        let tmp = path.with_extension("index.tmp");
        let written = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| fs::write(&tmp, self.encode()))
            .and_then(|_| fs::rename(&tmp, path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// What was recorded for `path`, if `metadata` shows it exactly as it was then.
    pub fn unchanged(&self, path: &str, metadata: &fs::Metadata) -> Option<&IndexedFile> {
        self.files
            .get(path)
            .filter(|file| file.stat.describes(metadata))
    }

    /// Records a file read by a backup that started at `started_ns` (wall clock), unless
    /// its change time is too close to that for its facts to be trusted later.
    pub fn record(&mut self, path: String, file: IndexedFile, started_ns: i128) {
        if file.stat.ctime_ns < started_ns - RACY_WINDOW_NS {
            self.files.insert(path, file);
        }
    }

    /// Number of files recorded.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no file is recorded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn encode(&self) -> Vec<u8> {
        let mut paths: Vec<&String> = self.files.keys().collect();
        paths.sort();
        let capacity = index_file::HEADER_LEN
            + paths.len() * (ENTRY_FIXED_LEN + 64)
            + index_file::CHECKSUM_LEN;
        let mut out = index_file::begin(MAGIC, FORMAT_VERSION, paths.len(), capacity);
        for path in paths {
            let IndexedFile { stat, chunks } = &self.files[path];
            index_file::put_entry(&mut out, path, stat);
            out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
            for chunk in chunks {
                out.extend_from_slice(&chunk.hash.0);
                out.extend_from_slice(&chunk.size.to_le_bytes());
            }
        }
        index_file::seal(out)
    }

    fn decode(bytes: &[u8]) -> Option<BackupIndex> {
        let (count, mut reader) = index_file::open(bytes, MAGIC, FORMAT_VERSION, ENTRY_FIXED_LEN)?;
        let mut files = HashMap::with_capacity(count);
        for _ in 0..count {
            let (path, stat) = reader.entry()?;
            let n_chunks = reader.u32()? as usize;
            if n_chunks > reader.remaining() / CHUNK_LEN {
                return None;
            }
            let chunks = (0..n_chunks)
                .map(|_| {
                    Some(Chunk {
                        hash: ContentHash(reader.array()?),
                        size: reader.u64()?,
                    })
                })
                .collect::<Option<Vec<Chunk>>>()?;
            files.insert(path.to_owned(), IndexedFile { stat, chunks });
        }
        (reader.remaining() == 0).then_some(BackupIndex { files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(n: u8, chunks: usize) -> IndexedFile {
        IndexedFile {
            stat: FileStat {
                mode: 0o640,
                ino: u64::from(n),
                size: 10,
                mtime_ns: 5,
                ctime_ns: 6,
                hash: ContentHash([n; 32]),
            },
            chunks: (0..chunks)
                .map(|i| Chunk {
                    hash: ContentHash([i as u8; 32]),
                    size: i as u64,
                })
                .collect(),
        }
    }

    #[test]
    fn an_index_round_trips_and_anything_damaged_loads_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup/app.index");
        let mut index = BackupIndex::default();
        index.record("a".into(), file(1, 0), 1_000_000_000_000);
        index.record("dir/big".into(), file(2, 3), 1_000_000_000_000);
        index.save(&path);
        assert_eq!(BackupIndex::load(&path), index);
        assert_eq!(index.len(), 2);

        let mut bytes = fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(BackupIndex::load(&path).is_empty(), "a flipped bit");
        fs::write(&path, &bytes[..10]).unwrap();
        assert!(BackupIndex::load(&path).is_empty(), "cut short");
        assert!(BackupIndex::load(&dir.path().join("none")).is_empty());
    }

    #[test]
    fn a_file_changed_just_before_the_backup_is_not_recorded() {
        let mut index = BackupIndex::default();
        let started = 6 + RACY_WINDOW_NS;
        index.record("racy".into(), file(1, 0), started);
        assert!(index.is_empty());
        index.record("settled".into(), file(1, 0), started + 1);
        assert_eq!(index.len(), 1);
    }
}
