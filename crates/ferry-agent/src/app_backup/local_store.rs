//! Storing a snapshot's blobs in a blob store on this machine: what the server does with
//! the blobs an agent sends, without the network between (tests and the benchmark of the
//! backup engine use it).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::scan::BlobLocation;

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
    let next = AtomicUsize::new(0);
    let stored = AtomicU64::new(0);
    let first_error: Mutex<Option<AgentError>> = Mutex::new(None);
    let n_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..n_threads {
            scope.spawn(|| loop {
                let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                match store_batch(store, batch) {
                    Ok(n) => {
                        stored.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap() {
        Some(error) => Err(error),
        None => Ok(stored.into_inner()),
    }
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
