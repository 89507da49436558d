//! Where the server keeps release content, behind one trait, [`BlobStorage`]: a folder on
//! this machine ([`local::LocalBlobs`], `ferry_cas::blobs::BlobStore`) or a bucket of an
//! S3-compatible service ([`s3::S3Blobs`]). Everything the server does with content (asking
//! what is missing, storing uploads, serving batches and manifests, garbage collection,
//! fsck and quarantine) goes through the trait, so both behave the same; what differs is
//! only how a blob is written, read, listed and moved aside.
//!
//! Both keep the content store's rules: a blob is checked against its hash before it is
//! stored and whenever it is read; a blob is stored whole or not at all (a renamed temp file,
//! one S3 `PUT`); a failure stores nothing that counts: the upload that failed is not
//! remembered, and a release is created only after every blob it names was found.

mod error;
mod local;
mod location;
mod s3;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use ferry_cas::blobs::{BlobHealth, StoredBlob};
use ferry_cas::hash::ContentHash;
use tokio::sync::mpsc;

pub use error::{BlobError, BlobResult};
pub use location::{BadBlobLocation, BlobLocation};

/// Blobs read ahead of the one being sent while a batch streams out.
pub const READ_AHEAD: usize = 16;

/// Release content, wherever it is kept.
#[async_trait]
pub trait BlobStorage: Send + Sync {
    /// The size of each blob as stored, `None` for one not stored, in the order asked.
    async fn sizes(&self, hashes: Vec<ContentHash>) -> BlobResult<Vec<Option<u64>>>;

    /// Stores a batch of blobs, each checked against its hash first: a mismatch refuses the
    /// whole batch before anything is written. A failure part-way leaves each blob whole or
    /// absent.
    async fn put_batch(&self, blobs: Vec<(ContentHash, Bytes)>) -> BlobResult<()>;

    /// One blob's bytes, checked against its hash.
    async fn read(&self, hash: ContentHash) -> BlobResult<Bytes>;

    /// The blobs asked for, in order, each checked against its hash, sent as they are read
    /// with at most [`READ_AHEAD`] read ahead of the receiver; reading stops at the first
    /// failure (sent as the last item) or when the receiver is dropped.
    fn read_in_order(
        self: Arc<Self>,
        hashes: Vec<ContentHash>,
    ) -> mpsc::Receiver<BlobResult<(ContentHash, Bytes)>>;

    /// Every stored blob (not the quarantined ones) with its size and when it was written.
    async fn stored(&self) -> BlobResult<Vec<StoredBlob>>;

    /// Reads one blob again and says whether it is intact, corrupt or missing.
    async fn check(&self, hash: ContentHash) -> BlobResult<BlobHealth>;

    /// Removes a blob (nothing happens if it is not there).
    async fn remove(&self, hash: ContentHash) -> BlobResult<()>;

    /// Moves a blob aside (to `quarantine/`), so it reads as missing and the next upload of
    /// the same content stores it again.
    async fn quarantine(&self, hash: ContentHash) -> BlobResult<()>;

    /// Whether the blob is stored.
    async fn contains(&self, hash: ContentHash) -> BlobResult<bool> {
        Ok(self.sizes(vec![hash]).await?[0].is_some())
    }
}

/// Opens the blob storage at `location`, checking it can be reached: a folder is created if
/// need be and cleared of a crash's temp files; a bucket is listed once, so wrong
/// credentials, a missing bucket or an endpoint that does not answer stop the server at
/// start, not at the first upload.
pub async fn open(location: &BlobLocation) -> BlobResult<Arc<dyn BlobStorage>> {
    Ok(match location {
        BlobLocation::Folder(root) => Arc::new(local::LocalBlobs::open(root.clone()).await?),
        BlobLocation::S3 { bucket, prefix } => Arc::new(s3::S3Blobs::open(bucket, prefix).await?),
    })
}

/// Whether content hashes to `hash`, hashed off the async workers when it is large.
async fn hash_matches(hash: ContentHash, data: &Bytes) -> bool {
    const HASHED_INLINE: usize = 256 * 1024;
    if data.len() <= HASHED_INLINE {
        return ContentHash::of(data) == hash;
    }
    let data = data.clone();
    tokio::task::spawn_blocking(move || ContentHash::of(&data) == hash)
        .await
        .unwrap_or(false)
}
