//! At start, a server checks that the release content its database speaks of is where this
//! server keeps content. Servers sharing a database must share one blob storage: a second
//! server started with a folder of its own would answer every agent that reaches it "blob
//! missing" for the releases made through the first. The check reads the manifests of the
//! releases deployed most recently: when none of them is there, the server refuses to start
//! and says what to give `--blobs`; when only some are missing (content lost or
//! quarantined), it warns and points to `ferry server fsck`.

use ferry_cas::hash::ContentHash;
use ferry_store::Store;

use crate::blob_storage::{BlobLocation, BlobStorage};

/// The releases deployed most recently whose manifests are looked for.
const SAMPLED: usize = 5;

/// Checks that `blobs`, kept in `location`, holds the content the store's recent
/// deployments need.
pub async fn check(
    store: &dyn Store,
    blobs: &dyn BlobStorage,
    location: &BlobLocation,
) -> anyhow::Result<()> {
    let mut live = store.live_deployments().await?;
    live.sort_by_key(|deployment| std::cmp::Reverse(deployment.id));
    // One release may run in several environments: each is looked for once.
    let mut recent: Vec<(&str, &str)> = Vec::new();
    for deployment in &live {
        let release = (deployment.app.as_str(), deployment.version.as_str());
        if !recent.contains(&release) {
            recent.push(release);
        }
    }
    let mut sampled = Vec::new();
    for (app, version) in recent.into_iter().take(SAMPLED) {
        if let Some(release) = store.release(app, version).await? {
            sampled.push(release);
        }
    }
    let mut missing = Vec::new();
    for release in &sampled {
        let stored = match ContentHash::from_hex(&release.manifest_blob) {
            Some(hash) => blobs.contains(hash).await?,
            None => false,
        };
        if !stored {
            missing.push(format!("{} {}", release.app, release.version));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if missing.len() == sampled.len() {
        anyhow::bail!(
            "release content is kept in {location}, but the releases deployed most recently ({}) are not there: servers sharing a database share one blob storage, so start this server with the same --blobs as the others (an s3:// bucket, or a folder every server mounts); after `ferry server migrate --blobs URL`, give that URL; if no other server keeps it, the content was lost: restore it from a backup",
            missing.join(", ")
        );
    }
    tracing::warn!(
        "the manifests of {} are missing from {location}: their content was lost or quarantined; `ferry server fsck` says more, and `ferry release create` of the same content stores it again",
        missing.join(", ")
    );
    Ok(())
}
