//! Batches of blobs on the wire: each blob as its 32-byte hash, its length as 8 bytes
//! little-endian, then its bytes. One request carries many blobs, so uploading or fetching
//! ten thousand small files takes a handful of requests, not ten thousand.

use crate::error::{CasError, CasResult};
use crate::hash::ContentHash;

const HEADER: usize = 32 + 8;

/// Appends one blob to a batch.
pub fn write_frame(batch: &mut Vec<u8>, hash: &ContentHash, data: &[u8]) {
    batch.extend_from_slice(&hash.0);
    batch.extend_from_slice(&(data.len() as u64).to_le_bytes());
    batch.extend_from_slice(data);
}

/// The hash and length at the start of a frame, if the whole header is there.
fn header(bytes: &[u8]) -> Option<(ContentHash, u64)> {
    let hash = ContentHash(bytes.get(..32)?.try_into().expect("32 bytes"));
    let len = u64::from_le_bytes(bytes.get(32..HEADER)?.try_into().expect("8 bytes"));
    Some((hash, len))
}

/// Splits a batch into its blobs (hashes are not checked here; the blob store checks them).
pub fn parse_frames(mut batch: &[u8]) -> CasResult<Vec<(ContentHash, &[u8])>> {
    let mut blobs = Vec::new();
    while !batch.is_empty() {
        if batch.len() < HEADER {
            return Err(CasError::Source(format!(
                "malformed blob batch: {} trailing bytes are too few for a blob header",
                batch.len()
            )));
        }
        let (hash, len) = header(batch).expect("a whole header");
        let rest = &batch[HEADER..];
        if len > rest.len() as u64 {
            return Err(CasError::Source(format!(
                "malformed blob batch: blob {hash} claims {len} bytes but only {} follow",
                rest.len()
            )));
        }
        let (data, next) = rest.split_at(len as usize);
        blobs.push((hash, data));
        batch = next;
    }
    Ok(blobs)
}

/// The largest blob a frame may carry: files over 1 MiB travel as chunks of at most 1 MiB,
/// so anything much larger is a broken or hostile peer, refused before it is buffered.
pub const MAX_FRAME_BYTES: u64 = 64 << 20;

/// Splits a batch arriving in pieces into its blobs, each as soon as it is complete, so a
/// receiver can store what arrived before a connection dropped.
#[derive(Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
    /// Where the unread bytes of `buffer` start.
    start: usize,
}

impl FrameReader {
    /// Adds the next bytes of the batch.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buffer.len() / 2 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete blob, if all of it has arrived.
    pub fn next_frame(&mut self) -> CasResult<Option<(ContentHash, Vec<u8>)>> {
        let unread = &self.buffer[self.start..];
        let Some((hash, len)) = header(unread) else {
            return Ok(None);
        };
        if len > MAX_FRAME_BYTES {
            return Err(CasError::Source(format!(
                "malformed blob batch: blob {hash} claims {len} bytes, more than any blob has"
            )));
        }
        let end = HEADER + len as usize;
        if unread.len() < end {
            return Ok(None);
        }
        let data = unread[HEADER..end].to_vec();
        self.start += end;
        Ok(Some((hash, data)))
    }

    /// Checks the batch ended on a blob's boundary.
    pub fn finish(&self) -> CasResult<()> {
        match self.buffer.len() - self.start {
            0 => Ok(()),
            n => Err(CasError::Source(format!(
                "malformed blob batch: it ended {n} bytes into a blob"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip() {
        let mut batch = Vec::new();
        let blobs: [&[u8]; 3] = [b"one", b"", b"three"];
        for data in blobs {
            write_frame(&mut batch, &ContentHash::of(data), data);
        }
        let parsed = parse_frames(&batch).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[2], (ContentHash::of(b"three"), &b"three"[..]));
        assert!(parse_frames(&[]).unwrap().is_empty());
    }

    #[test]
    fn a_batch_read_in_pieces_yields_each_blob_once_it_is_whole() {
        let blobs: [&[u8]; 4] = [b"one", b"", b"three", &[7u8; 1000]];
        let mut batch = Vec::new();
        for data in blobs {
            write_frame(&mut batch, &ContentHash::of(data), data);
        }
        for piece in [1, 2, 7, 39, 40, 41, 500, batch.len()] {
            let mut reader = FrameReader::default();
            let mut got = Vec::new();
            for bytes in batch.chunks(piece) {
                reader.push(bytes);
                while let Some(frame) = reader.next_frame().unwrap() {
                    got.push(frame);
                }
            }
            reader.finish().unwrap();
            let expected: Vec<(ContentHash, Vec<u8>)> = blobs
                .iter()
                .map(|d| (ContentHash::of(d), d.to_vec()))
                .collect();
            assert_eq!(got, expected, "pieces of {piece}");
        }
        // Cut anywhere inside a blob: what came before is whole, and the end is refused.
        let mut reader = FrameReader::default();
        reader.push(&batch[..batch.len() - 1]);
        let mut n = 0;
        while reader.next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 3);
        assert!(reader.finish().is_err());
        // A header claiming more than any blob has is refused before anything is buffered.
        let mut lying = batch.clone();
        lying[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut reader = FrameReader::default();
        reader.push(&lying[..40]);
        assert!(reader.next_frame().is_err());
    }

    #[test]
    fn truncated_batches_are_refused() {
        let mut batch = Vec::new();
        write_frame(&mut batch, &ContentHash::of(b"data"), b"data");
        for cut in [1, 39, 41, batch.len() - 1] {
            let error = parse_frames(&batch[..cut]).unwrap_err();
            assert!(
                error.to_string().starts_with("malformed blob batch"),
                "{cut}: {error}"
            );
        }
        let mut lying = batch.clone();
        lying[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse_frames(&lying).is_err());
    }
}
