//! Splitting file content into blobs: small files whole, large files by content-defined
//! chunking (FastCDC), so an edit inside a large file changes only the chunks around it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{CasError, CasResult};
use crate::hash::ContentHash;
use crate::manifest::Chunk;

/// Files larger than this are chunked.
pub const CHUNKING_THRESHOLD: u64 = 1024 * 1024;
/// FastCDC bounds: small enough that a 1 MB edit stores little more than 1 MB, large
/// enough that a 500 MB file is a few thousand blobs.
const MIN_CHUNK: u32 = 64 * 1024;
const AVG_CHUNK: u32 = 256 * 1024;
const MAX_CHUNK: u32 = 1024 * 1024;

/// A file's content address and, for a large file, its chunks with their offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileContent {
    pub hash: ContentHash,
    pub size: u64,
    /// Empty for a file stored as one blob.
    pub chunks: Vec<(Chunk, u64)>,
}

/// Hashes (and, when large, chunks) the file at `path`.
pub fn hash_file(path: &Path) -> CasResult<FileContent> {
    let mut file = File::open(path).map_err(|e| CasError::io(path, e))?;
    let size = file.metadata().map_err(|e| CasError::io(path, e))?.len();
    if size <= CHUNKING_THRESHOLD {
        let mut content = Vec::with_capacity(size as usize);
        file.read_to_end(&mut content)
            .map_err(|e| CasError::io(path, e))?;
        return Ok(FileContent {
            hash: ContentHash::of(&content),
            size: content.len() as u64,
            chunks: Vec::new(),
        });
    }
    let mut whole = blake3::Hasher::new();
    let mut chunks = Vec::new();
    let mut total = 0;
    for chunk in fastcdc::v2020::StreamCDC::new(file, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK) {
        let chunk = chunk.map_err(|e| CasError::io(path, std::io::Error::other(e.to_string())))?;
        whole.update(&chunk.data);
        let hash = ContentHash::of(&chunk.data);
        chunks.push((
            Chunk {
                hash,
                size: chunk.length as u64,
            },
            chunk.offset,
        ));
        total += chunk.length as u64;
    }
    Ok(FileContent {
        hash: whole.finalize().into(),
        size: total,
        chunks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random bytes, so chunk boundaries are content-defined.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn small_files_are_one_blob() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let content = hash_file(&path).unwrap();
        assert_eq!(content.hash, ContentHash::of(b"hello"));
        assert!(content.chunks.is_empty());
    }

    #[test]
    fn an_edit_in_a_large_file_changes_only_nearby_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut data = noise(16 * 1024 * 1024, 7);
        std::fs::write(&path, &data).unwrap();
        let before = hash_file(&path).unwrap();
        assert_eq!(before.hash, ContentHash::of(&data));
        assert_eq!(
            before.chunks.iter().map(|(c, _)| c.size).sum::<u64>(),
            data.len() as u64
        );

        // Overwrite 1 MiB in the middle and insert a few bytes: only chunks near it change.
        let middle = data.len() / 2;
        data[middle..middle + 1024 * 1024].copy_from_slice(&noise(1024 * 1024, 8));
        data.splice(middle..middle, *b"inserted");
        std::fs::write(&path, &data).unwrap();
        let after = hash_file(&path).unwrap();
        let old: std::collections::HashSet<_> = before.chunks.iter().map(|(c, _)| c.hash).collect();
        let new_bytes: u64 = after
            .chunks
            .iter()
            .filter(|(c, _)| !old.contains(&c.hash))
            .map(|(c, _)| c.size)
            .sum();
        assert!(
            new_bytes < 3 * 1024 * 1024,
            "{new_bytes} new bytes for a 1 MiB edit"
        );
        let (chunk, offset) = after.chunks[3];
        assert_eq!(
            ContentHash::of(&data[offset as usize..(offset + chunk.size) as usize]),
            chunk.hash
        );
    }
}
