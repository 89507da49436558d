//! What every request handler shares.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;
use ferry_store::Store;

use crate::clock::Clock;

/// The server's shared state.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Keys the audit chain; read from `DATA/audit-key`.
    pub audit_key: [u8; 32],
    /// Seals configuration secrets; read from `DATA/secret-key` or `--secret-key`.
    pub secret_key: Arc<crate::secret_key::SecretKey>,
    pub clock: Arc<dyn Clock>,
    /// Release content: in `DATA/blobs`, or where `--blobs` says.
    pub blobs: Arc<dyn crate::blob_storage::BlobStorage>,
    /// How old an unreferenced blob must be before garbage collection removes it, so an
    /// upload whose release is not created yet is safe.
    pub gc_grace: Duration,
    /// Manifests read recently, by manifest blob.
    pub manifests: Arc<ManifestCache>,
    /// The blobs each application's releases hold.
    pub release_blobs: Arc<crate::held_blobs::HeldBlobs>,
    /// The blobs each application's backups hold.
    pub backup_blobs: Arc<crate::held_blobs::HeldBlobs>,
    /// Blob batches and manifests served to agents recently.
    pub served: Arc<crate::served::Served>,
    /// Blobs each user uploaded recently, per application.
    pub uploads: Arc<crate::uploads::RecentUploads>,
    /// Blob batches read or written at once, at most: each may hold up to 64 MiB.
    pub batch_slots: Arc<tokio::sync::Semaphore>,
    /// Applies the reports of one deployment reaching this server one after the other.
    pub turns: Arc<crate::turns::DeploymentTurns>,
    /// Tells the dashboard's overviews that what they show changed.
    pub pulse: Arc<crate::dashboard::pulse::OverviewPulse>,
    /// Deployments the dashboard's browsers watch live.
    pub live: Arc<crate::dashboard::live::LiveDeployments>,
    /// Failed dashboard logins, per address and user name, and failed enrollments per
    /// address.
    pub throttles: Arc<crate::services::throttles::Throttles>,
    /// Agents' long-polls waiting, per target.
    pub long_polls: crate::held_open::HeldOpen,
    /// Live dashboard streams open, per user.
    pub live_streams: crate::held_open::HeldOpen,
    /// Agents' heartbeats heard and not yet written.
    pub heartbeats: Arc<crate::heartbeats::Heartbeats>,
    /// Wakes agents and serialises deployment progress.
    pub wakeups: Arc<dyn crate::wakeups::Wakeups>,
    /// The status document built last, kept while the store's status revision stays.
    pub status: Arc<crate::services::status::StatusCache>,
    /// The SHA-256 fingerprint of the server's CA certificate when it serves HTTPS;
    /// enrollment tokens carry it so agents can pin it.
    pub tls_fingerprint: Option<String>,
    /// How often agents send a heartbeat, and so when a target counts as offline.
    pub liveness: ferry_domain::liveness::Liveness,
    /// Becomes true when the server starts shutting down: streams that never end by
    /// themselves (the dashboard's live pages) end then, so the shutdown does not wait on them.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// Resolves once the server is shutting down.
    pub fn until_stopping(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stopping = self.stopping.subscribe();
        async move {
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }
}

/// Blob batches read or written at once, at most (each up to 64 MiB in memory).
pub const BATCHES_AT_ONCE: usize = 8;

/// A few parsed manifests with the set of blobs each references, by the hash of their
/// blob. Manifests are immutable, so an entry is never stale; when full, the cache starts
/// over.
#[derive(Default)]
pub struct ManifestCache {
    entries: std::sync::Mutex<HashMap<String, CachedManifest>>,
}

/// A parsed manifest and the set of blobs it references.
pub type CachedManifest = (Arc<Manifest>, Arc<HashSet<ContentHash>>);

/// Manifests kept at most (a 10,000-file manifest takes a few MB).
const MANIFESTS_CACHED: usize = 8;

impl ManifestCache {
    /// The cached manifest of this blob, and its blobs.
    pub fn get(&self, manifest_blob: &str) -> Option<CachedManifest> {
        self.entries
            .lock()
            .expect("the cache lock is never poisoned")
            .get(manifest_blob)
            .cloned()
    }

    /// Remembers a manifest, working out its set of blobs once, and returns both.
    pub fn insert(&self, manifest_blob: String, manifest: Arc<Manifest>) -> CachedManifest {
        let blobs: Arc<HashSet<ContentHash>> =
            Arc::new(manifest.blobs().iter().map(|c| c.hash).collect());
        let mut entries = self
            .entries
            .lock()
            .expect("the cache lock is never poisoned");
        if entries.len() >= MANIFESTS_CACHED {
            entries.clear();
        }
        entries.insert(manifest_blob, (manifest.clone(), blobs.clone()));
        (manifest, blobs)
    }
}
