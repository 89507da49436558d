//! Why the blob storage did not do what was asked.

use ferry_cas::hash::ContentHash;
use ferry_cas::CasError;

/// A refused or failed blob operation.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Uploaded content that does not hash to its address: nothing of its batch is stored.
    #[error("blob {0}: the content does not match its hash (corrupted in transit?)")]
    Mismatch(ContentHash),
    /// A blob that should be stored and is not.
    #[error("no blob {0}")]
    Missing(ContentHash),
    /// Stored bytes that no longer hash to their address.
    #[error("blob {hash} in {location} is corrupt: its content does not match its hash; run `ferry server fsck`")]
    Corrupt { hash: ContentHash, location: String },
    /// The folder could not be read or written (the content store's own error).
    #[error(transparent)]
    Folder(#[from] CasError),
    /// The S3-compatible service failed or did not answer, after retries: `doing` names
    /// the request, `cause` the innermost reason (such as "Connection refused").
    #[error("{doing} in {location} failed: {cause}")]
    Unavailable {
        doing: String,
        location: String,
        cause: String,
    },
}

/// Shorthand for the results of blob operations.
pub type BlobResult<T> = Result<T, BlobError>;
