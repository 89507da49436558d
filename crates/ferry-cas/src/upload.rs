//! Sending blobs from a tree to the server, as the client (a release) and the agent (hand
//! edits it captures, data it backs up) both do: the blobs are grouped into batches of
//! about [`UPLOAD_BATCH_BYTES`], each read back from where the scan found it and checked
//! against its hash as it goes into the batch. The HTTP is the caller's.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use crate::frames::write_frame;
use crate::hash::ContentHash;
use crate::scan::BlobLocation;
use crate::{CasError, CasResult};

/// Blobs go up in batches of about this many bytes: few requests, bounded memory.
pub const UPLOAD_BATCH_BYTES: usize = 32 * 1024 * 1024;
/// Upload requests under way at once: the next batch is read while the last is sent.
pub const UPLOADS_IN_FLIGHT: usize = 2;
/// Hashes asked about per "which are missing?" request.
pub const HASHES_PER_QUESTION: usize = 50_000;

/// Groups blobs into upload batches of about [`UPLOAD_BATCH_BYTES`] (a bigger blob goes
/// alone).
pub fn upload_batches(
    locations: Vec<(ContentHash, BlobLocation)>,
) -> Vec<Vec<(ContentHash, BlobLocation)>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for (hash, location) in locations {
        if !batch.is_empty() && size + location.len as usize > UPLOAD_BATCH_BYTES {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += location.len as usize;
        batch.push((hash, location));
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// Reads blobs from the tree into one upload batch, checking each against its hash (a file
/// changed since it was scanned is an error, not silently wrong content).
pub fn read_batch(locations: &[(ContentHash, BlobLocation)]) -> CasResult<Vec<u8>> {
    let mut batch = Vec::new();
    for (hash, location) in locations {
        let mut data = vec![0u8; location.len as usize];
        let mut file = File::open(&location.path).map_err(|e| CasError::io(&location.path, e))?;
        file.seek(SeekFrom::Start(location.offset))
            .and_then(|_| file.read_exact(&mut data))
            .map_err(|e| CasError::io(&location.path, e))?;
        if ContentHash::of(&data) != *hash {
            return Err(CasError::Source(format!(
                "{} changed while it was being read; try again once it is no longer being written",
                location.path.display()
            )));
        }
        write_frame(&mut batch, hash, &data);
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::parse_frames;
    use std::path::PathBuf;

    fn at(len: u64) -> BlobLocation {
        BlobLocation {
            path: PathBuf::from("x"),
            offset: 0,
            len,
        }
    }

    #[test]
    fn batches_stay_near_the_batch_size_and_keep_every_blob_in_order() {
        const MB: u64 = 1024 * 1024;
        for (sizes, expected) in [
            (vec![], vec![]),
            (vec![1], vec![1]),
            (vec![16 * MB, 16 * MB, 1], vec![2, 1]),
            (vec![40 * MB, 1, 1], vec![1, 2]),
            (vec![1, 40 * MB], vec![1, 1]),
            (vec![MB; 70], vec![32, 32, 6]),
        ] {
            let blobs: Vec<(ContentHash, BlobLocation)> = sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| (ContentHash::of(&i.to_le_bytes()), at(len)))
                .collect();
            let batches = upload_batches(blobs.clone());
            let counts: Vec<usize> = batches.iter().map(Vec::len).collect();
            assert_eq!(counts, expected, "{sizes:?}");
            assert_eq!(batches.concat(), blobs);
        }
    }

    #[test]
    fn a_batch_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        std::fs::write(&path, b"hello world").unwrap();
        let part = |offset: u64, len: u64| BlobLocation {
            path: path.clone(),
            offset,
            len,
        };
        let hello = ContentHash::of(b"hello");
        let world = ContentHash::of(b"world");
        let batch = read_batch(&[(hello, part(0, 5)), (world, part(6, 5))]).unwrap();
        let frames = parse_frames(&batch).unwrap();
        assert_eq!(frames, [(hello, &b"hello"[..]), (world, &b"world"[..])]);
        // The file changed since it was scanned.
        let refused = read_batch(&[(hello, part(6, 5))]).unwrap_err();
        assert!(refused.to_string().contains("changed while"), "{refused}");
    }
}
