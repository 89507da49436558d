//! Blobs in a folder on this machine: `ferry_cas::blobs::BlobStore`, one read-only file per
//! blob, each batch made durable with one `syncfs`. Its calls block, so each runs on
//! tokio's blocking threads; a batch is one call, not one per blob.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use ferry_cas::blobs::{BlobHealth, BlobStore, StoredBlob};
use ferry_cas::hash::ContentHash;
use tokio::sync::mpsc;

use super::{BlobError, BlobResult, BlobStorage, READ_AHEAD};

/// Blobs in a folder.
pub struct LocalBlobs {
    store: Arc<BlobStore>,
}

impl LocalBlobs {
    /// Opens (creating) the folder `root`.
    pub async fn open(root: PathBuf) -> BlobResult<LocalBlobs> {
        let store = blocking(move || Ok(BlobStore::open(&root)?)).await?;
        Ok(LocalBlobs {
            store: Arc::new(store),
        })
    }

    /// Runs `work` on the store, off the async workers.
    async fn with_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&BlobStore) -> BlobResult<T> + Send + 'static,
    ) -> BlobResult<T> {
        let store = self.store.clone();
        blocking(move || work(&store)).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> BlobResult<T> + Send + 'static,
) -> BlobResult<T> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(BlobError::Folder(ferry_cas::CasError::io(
            std::path::Path::new("blob store task"),
            std::io::Error::other(e.to_string()),
        )))
    })
}

#[async_trait]
impl BlobStorage for LocalBlobs {
    async fn sizes(&self, hashes: Vec<ContentHash>) -> BlobResult<Vec<Option<u64>>> {
        self.with_store(move |store| Ok(hashes.iter().map(|hash| store.size(hash)).collect()))
            .await
    }

    async fn put_batch(&self, blobs: Vec<(ContentHash, Bytes)>) -> BlobResult<()> {
        self.with_store(move |store| {
            let batch: Vec<(ContentHash, &[u8])> = blobs
                .iter()
                .map(|(hash, data)| (*hash, &data[..]))
                .collect();
            match store.put_batch(&batch) {
                Ok(_) => Ok(()),
                Err(error) if error.is_bad_input() => Err(mismatch(&batch)),
                Err(error) => Err(error.into()),
            }
        })
        .await
    }

    async fn read(&self, hash: ContentHash) -> BlobResult<Bytes> {
        self.with_store(move |store| read(store, &hash)).await
    }

    fn read_in_order(
        self: Arc<Self>,
        hashes: Vec<ContentHash>,
    ) -> mpsc::Receiver<BlobResult<(ContentHash, Bytes)>> {
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            for hash in hashes {
                let read = read(&store, &hash).map(|data| (hash, data));
                let failed = read.is_err();
                if sender.blocking_send(read).is_err() || failed {
                    return; // the receiver went away, or was told why reading stopped
                }
            }
        });
        receiver
    }

    async fn stored(&self) -> BlobResult<Vec<StoredBlob>> {
        self.with_store(|store| Ok(store.stored()?)).await
    }

    async fn check(&self, hash: ContentHash) -> BlobResult<BlobHealth> {
        self.with_store(move |store| Ok(store.check(&hash)?)).await
    }

    async fn remove(&self, hash: ContentHash) -> BlobResult<()> {
        self.with_store(move |store| Ok(store.remove(&hash).map(drop)?))
            .await
    }

    async fn quarantine(&self, hash: ContentHash) -> BlobResult<()> {
        self.with_store(move |store| Ok(store.quarantine(&hash)?))
            .await
    }
}

/// One blob, checked; a missing one is [`BlobError::Missing`] (a corrupt one is the store's
/// error, which says so and names the file).
fn read(store: &BlobStore, hash: &ContentHash) -> BlobResult<Bytes> {
    match store.read(hash) {
        Ok(data) => Ok(Bytes::from(data)),
        Err(_) if !store.contains(hash) => Err(BlobError::Missing(*hash)),
        Err(error) => Err(error.into()),
    }
}

/// The first blob of a batch the store refused that does not match its hash.
fn mismatch(batch: &[(ContentHash, &[u8])]) -> BlobError {
    let first = batch
        .iter()
        .find(|(hash, data)| ContentHash::of(data) != *hash)
        .map_or(batch[0].0, |(hash, _)| *hash);
    BlobError::Mismatch(first)
}
