//! Storing a snapshot's blobs in a blob store on this machine: what the server does with
//! the blobs an agent sends, without the network between (tests and the benchmark of the
//! backup engine use it).

use std::fs::File;
use std::os::unix::fs::FileExt;

use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::scan::BlobLocation;

use super::parallel::on_all_cores;
use crate::error::{AgentError, AgentResult};

/// Blobs read and stored together: one sync per batch, not per blob.
const BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// Stores the blobs `store` lacks, each read from its location and checked against its hash
/// (a file changed since the snapshot refuses its batch), batches on all cores. Returns the
/// bytes newly stored.
pub fn store_missing(store: &BlobStore, blobs: &[(ContentHash, BlobLocation)]) -> AgentResult<u64> {
    let missing: Vec<&(ContentHash, BlobLocation)> = blobs
        .iter()
        .filter(|(hash, _)| !store.contains(hash))
        .collect();
    let mut batches: Vec<Vec<&(ContentHash, BlobLocation)>> = vec![Vec::new()];
    let mut batch_bytes = 0;
    for blob in missing {
        if batch_bytes + blob.1.len > BATCH_BYTES && !batches.last().unwrap().is_empty() {
            batches.push(Vec::new());
            batch_bytes = 0;
        }
        batch_bytes += blob.1.len;
        batches.last_mut().unwrap().push(blob);
    }
    let stored = on_all_cores(&batches, |batch| store_batch(store, batch))?;
    Ok(stored.into_iter().sum())
}

fn store_batch(store: &BlobStore, batch: &[&(ContentHash, BlobLocation)]) -> AgentResult<u64> {
    let mut data = Vec::with_capacity(batch.len());
    for (hash, location) in batch {
        data.push((*hash, read_location(location, hash)?));
    }
    let blobs: Vec<(ContentHash, &[u8])> = data
        .iter()
        .map(|(hash, bytes)| (*hash, bytes.as_slice()))
        .collect();
    Ok(store.put_batch(&blobs)?)
}

/// The bytes of blob `hash` where a snapshot found them, checked against the hash: a file
/// changed since the snapshot is refused, naming it.
pub fn read_location(location: &BlobLocation, hash: &ContentHash) -> AgentResult<Vec<u8>> {
    let file = File::open(&location.path).map_err(|e| AgentError::io(&location.path, e))?;
    let mut bytes = vec![0; location.len as usize];
    file.read_exact_at(&mut bytes, location.offset)
        .map_err(|e| AgentError::io(&location.path, e))?;
    if ContentHash::of(&bytes) != *hash {
        return Err(AgentError::Refused(format!(
            "{}: the file changed while it was backed up; give the application a consistent \
             copy to back up (a `pre_backup` hook), or try again",
            location.path.display()
        )));
    }
    Ok(bytes)
}
