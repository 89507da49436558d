//! Backups of an application's data: the `backup` paths its release's `ferry.toml` names
//! inside `shared/`, snapshotted content-addressed and incrementally, and restored. Not the
//! server's own backup (`ferry server backup`), which copies ferry's database.
//!
//! A backup is a manifest of those paths (relative to `shared/`, with every directory on the
//! way to them) whose blobs live in the server's blob storage, like a release's. Taking one
//! reads only what changed: [`index`] remembers how each file looked and what it hashed to,
//! so a file that still looks the same is not read again, and a large file is chunked
//! (`ferry_cas::chunking`), so a change inside it sends only the chunks around the change.
//! [`snapshot`] produces the manifest and where each blob's bytes are; the caller sends the
//! blobs the server lacks ([`local_store`] stores them into a blob store on this machine,
//! for tests and the benchmark). [`restore`] writes paths back from blobs, each beside its
//! place first and exchanged into it.

pub mod index;
pub mod local_store;
mod parallel;
pub mod restore;
pub mod snapshot;
pub mod take;

pub use restore::{restore, RestoreReport};
pub use snapshot::{snapshot, Snapshot};

use ferry_cas::release_config::is_within;

/// The backup paths to take: valid paths, each once, none inside another (the outer one
/// covers it), sorted.
pub fn outermost(paths: &[String]) -> Vec<String> {
    let mut sorted: Vec<String> = paths.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut kept: Vec<String> = Vec::new();
    for path in sorted {
        if !kept.iter().any(|outer| is_within(&path, outer)) {
            kept.push(path);
        }
    }
    kept
}

#[cfg(test)]
mod tests;
