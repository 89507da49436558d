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
        let hash = ContentHash(batch[..32].try_into().expect("32 bytes"));
        let len = u64::from_le_bytes(batch[32..HEADER].try_into().expect("8 bytes"));
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
