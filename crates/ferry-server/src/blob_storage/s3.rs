//! Blobs in a bucket of an S3-compatible service, through the `object_store` crate: blob
//! `abcd…` is the object `PREFIX/ab/abcd…` (the folder's layout), a quarantined one
//! `PREFIX/quarantine/abcd…`. Credentials, region and endpoint come from the usual AWS
//! environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`; without keys, the instance's
//! role). An `http://` endpoint is allowed, for a service on this machine or network.
//!
//! Each blob is one `PUT` of checked bytes, which S3 stores whole or not at all, so a
//! failure part-way through a batch leaves whole blobs or none, never a torn one. Requests
//! run a few at a time ([`IN_FLIGHT`]); a failed request is retried a few times within
//! seconds, then reported, so an upload fails fast and clearly when the service is down.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::body::Bytes;
use ferry_cas::blobs::{BlobHealth, StoredBlob};
use ferry_cas::hash::ContentHash;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientConfigKey, ObjectStore, PutPayload, RetryConfig};
use tokio::sync::mpsc;

use super::{hash_matches, BlobError, BlobLocation, BlobResult, BlobStorage, READ_AHEAD};

/// Requests to the service at once, for one batch.
const IN_FLIGHT: usize = 16;
/// From this many blobs on, sizes are read from listings of their shards rather than one
/// `HEAD` per blob.
const LISTED_FROM: usize = 64;

/// How finely S3 keeps an object's last-modified time.
const LAST_MODIFIED_PRECISION: Duration = Duration::from_secs(1);

/// Blobs in a bucket.
pub struct S3Blobs {
    bucket_name: String,
    bucket: AmazonS3,
    /// The key prefix, without a trailing slash; empty for the bucket's root.
    prefix: String,
}

impl S3Blobs {
    /// Connects to the bucket `location` names and lists it once, so that wrong
    /// credentials, a missing bucket or a service that does not answer stop the server at
    /// start.
    pub async fn open(bucket: &str, prefix: &str) -> BlobResult<S3Blobs> {
        let location = BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        };
        let client = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_allow_http(true)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            })
            // Set one by one: `with_client_options` would drop those from the environment.
            .with_config(
                AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                "5s",
            )
            .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s")
            .build()
            .map_err(|error| BlobError::Unavailable {
                doing: "configuring the S3 client (from the AWS_* environment variables)"
                    .to_owned(),
                location: location.to_string(),
                cause: error.to_string(),
            })?;
        let blobs = S3Blobs {
            bucket_name: bucket.to_owned(),
            prefix: prefix.to_owned(),
            bucket: client,
        };
        blobs
            .bucket
            .list_with_delimiter(blobs.root().as_ref())
            .await
            .map_err(|error| blobs.failed("listing the bucket", error))?;
        Ok(blobs)
    }

    /// Where the blobs are, as `--blobs` names it.
    fn location(&self) -> BlobLocation {
        BlobLocation::S3 {
            bucket: self.bucket_name.clone(),
            prefix: self.prefix.clone(),
        }
    }

    /// The prefix as a key, `None` for the bucket's root.
    fn root(&self) -> Option<Key> {
        (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()))
    }

    fn key(&self, folder: &str, name: &str) -> Key {
        match self.prefix.as_str() {
            "" => Key::from(format!("{folder}/{name}")),
            prefix => Key::from(format!("{prefix}/{folder}/{name}")),
        }
    }

    /// Where blob `hash` is stored.
    fn blob_key(&self, hash: &ContentHash) -> Key {
        let hex = hash.to_hex();
        self.key(&hex[..2], &hex)
    }

    /// The blob a key names, if it names one (`PREFIX/ab/abcd…`).
    fn blob_of(&self, key: &Key) -> Option<ContentHash> {
        let relative = match self.prefix.as_str() {
            "" => key.as_ref(),
            prefix => key.as_ref().strip_prefix(prefix)?.strip_prefix('/')?,
        };
        let (shard, hex) = relative.split_once('/')?;
        ContentHash::from_hex(hex).filter(|_| hex.starts_with(shard) && shard.len() == 2)
    }

    /// A failed request, named with the innermost reason the client gave.
    fn failed(&self, doing: impl Into<String>, error: object_store::Error) -> BlobError {
        let mut cause: &dyn std::error::Error = &error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        BlobError::Unavailable {
            doing: doing.into(),
            location: self.location().to_string(),
            cause: cause.to_string(),
        }
    }

    /// The blob's bytes as stored, unchecked; `None` when there is no such object.
    async fn get(&self, hash: &ContentHash) -> BlobResult<Option<Bytes>> {
        let doing = || format!("reading blob {hash}");
        match self.bucket.get(&self.blob_key(hash)).await {
            Ok(object) => object
                .bytes()
                .await
                .map(Some)
                .map_err(|error| self.failed(doing(), error)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.failed(doing(), error)),
        }
    }
}

#[async_trait]
impl BlobStorage for S3Blobs {
    async fn sizes(&self, hashes: Vec<ContentHash>) -> BlobResult<Vec<Option<u64>>> {
        if hashes.len() >= LISTED_FROM {
            return self.sizes_listed(hashes).await;
        }
        futures::stream::iter(hashes)
            .map(|hash| async move {
                match self.bucket.head(&self.blob_key(&hash)).await {
                    Ok(meta) => Ok(Some(meta.size)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(error) => Err(self.failed(format!("looking up blob {hash}"), error)),
                }
            })
            .buffered(IN_FLIGHT)
            .try_collect()
            .await
    }

    async fn put_batch(&self, blobs: Vec<(ContentHash, Bytes)>) -> BlobResult<()> {
        let mut unique = Vec::with_capacity(blobs.len());
        let mut seen = std::collections::HashSet::new();
        for (hash, data) in blobs {
            if !hash_matches(hash, &data).await {
                return Err(BlobError::Mismatch(hash));
            }
            if seen.insert(hash) {
                unique.push((hash, data));
            }
        }
        futures::stream::iter(unique)
            .map(|(hash, data)| async move {
                self.bucket
                    .put(&self.blob_key(&hash), PutPayload::from(data))
                    .await
                    .map(drop)
                    .map_err(|error| self.failed(format!("writing blob {hash}"), error))
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    async fn read(&self, hash: ContentHash) -> BlobResult<Bytes> {
        let data = self.get(&hash).await?.ok_or(BlobError::Missing(hash))?;
        if hash_matches(hash, &data).await {
            Ok(data)
        } else {
            Err(BlobError::Corrupt {
                hash,
                location: format!("s3://{}/{}", self.bucket_name, self.blob_key(&hash)),
            })
        }
    }

    fn read_in_order(
        self: Arc<Self>,
        hashes: Vec<ContentHash>,
    ) -> mpsc::Receiver<BlobResult<(ContentHash, Bytes)>> {
        let (sender, receiver) = mpsc::channel(READ_AHEAD);
        tokio::spawn(async move {
            let mut reads = futures::stream::iter(hashes)
                .map(|hash| {
                    let blobs = self.clone();
                    async move { blobs.read(hash).await.map(|data| (hash, data)) }
                })
                .buffered(READ_AHEAD);
            while let Some(read) = reads.next().await {
                let failed = read.is_err();
                if sender.send(read).await.is_err() || failed {
                    return; // the receiver went away, or was told why reading stopped
                }
            }
        });
        receiver
    }

    async fn stored(&self) -> BlobResult<Vec<StoredBlob>> {
        let mut stored = Vec::new();
        let mut listing = self.bucket.list(self.root().as_ref());
        while let Some(object) = listing.next().await {
            let object = object.map_err(|error| self.failed("listing the bucket", error))?;
            if let Some(hash) = self.blob_of(&object.location) {
                stored.push(StoredBlob {
                    hash,
                    size: object.size,
                    // S3 keeps the time to the second, rounded down: the object may be up
                    // to a second younger, and garbage collection must never take it for
                    // older than it is.
                    written: SystemTime::from(object.last_modified) + LAST_MODIFIED_PRECISION,
                });
            }
        }
        stored.sort_by_key(|blob| blob.hash);
        Ok(stored)
    }

    async fn check(&self, hash: ContentHash) -> BlobResult<BlobHealth> {
        Ok(match self.get(&hash).await? {
            None => BlobHealth::Missing,
            Some(data) if hash_matches(hash, &data).await => BlobHealth::Intact,
            Some(_) => BlobHealth::Corrupt,
        })
    }

    async fn remove(&self, hash: ContentHash) -> BlobResult<()> {
        match self.bucket.delete(&self.blob_key(&hash)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.failed(format!("removing blob {hash}"), error)),
        }
    }

    async fn quarantine(&self, hash: ContentHash) -> BlobResult<()> {
        let aside = self.key("quarantine", &hash.to_hex());
        self.bucket
            .copy(&self.blob_key(&hash), &aside)
            .await
            .map_err(|error| self.failed(format!("moving blob {hash} to {aside}"), error))?;
        self.remove(hash).await
    }
}

impl S3Blobs {
    /// The sizes of many blobs, from listings of the shards they are in (`PREFIX/ab/`, up to
    /// 1,000 keys a request) instead of one `HEAD` each: 10,000 blobs cost at most 256
    /// listings of small shards, where they cost 10,000 requests.
    async fn sizes_listed(&self, hashes: Vec<ContentHash>) -> BlobResult<Vec<Option<u64>>> {
        let shards: std::collections::BTreeSet<String> = hashes
            .iter()
            .map(|hash| hash.to_hex()[..2].to_owned())
            .collect();
        let listed: Vec<Vec<(ContentHash, u64)>> = futures::stream::iter(shards)
            .map(|shard| async move {
                let prefix = match self.prefix.as_str() {
                    "" => Key::from(shard),
                    prefix => Key::from(format!("{prefix}/{shard}")),
                };
                let mut found = Vec::new();
                let mut listing = self.bucket.list(Some(&prefix));
                while let Some(object) = listing.next().await {
                    let object =
                        object.map_err(|error| self.failed("listing the bucket", error))?;
                    if let Some(hash) = self.blob_of(&object.location) {
                        found.push((hash, object.size));
                    }
                }
                Ok::<_, BlobError>(found)
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect()
            .await?;
        let sizes: std::collections::HashMap<ContentHash, u64> =
            listed.into_iter().flatten().collect();
        Ok(hashes.iter().map(|hash| sizes.get(hash).copied()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_folder_layout_under_the_prefix() {
        let hash = ContentHash::of(b"x");
        let hex = hash.to_hex();
        for prefix in ["", "ferry", "prod/ferry"] {
            let blobs = S3Blobs {
                bucket_name: "bucket".to_owned(),
                bucket: AmazonS3Builder::new()
                    .with_bucket_name("bucket")
                    .with_region("us-east-1")
                    .build()
                    .unwrap(),
                prefix: prefix.to_owned(),
            };
            let key = blobs.blob_key(&hash);
            let expected = format!("{prefix}/{}/{hex}", &hex[..2]);
            assert_eq!(key.as_ref(), expected.trim_start_matches('/'));
            assert_eq!(blobs.blob_of(&key), Some(hash));
            let aside = blobs.key("quarantine", &hex);
            assert_eq!(blobs.blob_of(&aside), None, "{aside}");
            assert_eq!(
                blobs.blob_of(&Key::from(format!("{prefix}x/{}/{hex}", &hex[..2]))),
                None
            );
        }
    }
}
