//! Downloading a tree into a directory: a release's (`ferry release export`) or a backup's
//! (`ferry backup export`). The blobs are fetched in batches into a temporary store beside
//! the directory, then the tree is written out, every file checked against its hash.

use std::collections::HashSet;
use std::path::Path;

use ferry_api::BlobHashes;
use ferry_cas::blobs::BlobStore;
use ferry_cas::export::{export_data, export_tree};
use ferry_cas::frames::parse_frames;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;
use ferry_cas::upload::HASHES_PER_QUESTION;

use super::release::{blocking, cas_error};
use crate::client::Client;
use crate::error::{CliError, CliResult};
use crate::output::{progress, Output};

/// What a tree is, which says what its symlinks may point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeKind {
    /// A release: every symlink stays inside the tree.
    Release,
    /// A backup of application data: symlinks may point anywhere; they are written as links.
    Data,
}

/// Writes `manifest`'s tree into `dir` (new or empty), its blobs fetched from `fetch` (an
/// endpoint taking `BlobHashes` and answering frames).
pub async fn download_tree(
    client: &Client,
    output: Output,
    manifest: Manifest,
    fetch: &str,
    dir: &Path,
    kind: TreeKind,
) -> CliResult {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(CliError::refused(format!(
            "{} is not empty: export into a new or empty directory",
            dir.display()
        )));
    }
    let cache_root = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let cache = tempfile::Builder::new()
        .prefix(".ferry-export-")
        .tempdir_in(&cache_root)
        .map_err(|e| {
            CliError::failed(format!(
                "creating a temporary directory in {}: {e}",
                cache_root.display()
            ))
        })?;
    let store = BlobStore::open(cache.path()).map_err(cas_error)?;
    let needed = manifest.blobs();
    // Sizes as the manifest declares them: only shown, added up without overflowing.
    let declared = needed.iter().map(|c| c.size).fold(0, u64::saturating_add);
    let bar = progress(output, declared, "downloading");
    let mut pending: Vec<ContentHash> = needed.iter().map(|c| c.hash).collect();
    while !pending.is_empty() {
        let question = BlobHashes {
            hashes: pending
                .iter()
                .take(HASHES_PER_QUESTION)
                .map(|h| h.to_hex())
                .collect(),
        };
        let batch = client.post_for_bytes(fetch, &question).await?;
        let blobs = parse_frames(&batch).map_err(cas_error)?;
        if blobs.is_empty() {
            return Err(CliError::failed("the server sent no content; try again"));
        }
        store.put_batch(&blobs).map_err(cas_error)?;
        let received: HashSet<ContentHash> = blobs.iter().map(|(h, _)| *h).collect();
        bar.inc(blobs.iter().map(|(_, d)| d.len() as u64).sum());
        pending.retain(|h| !received.contains(h));
    }
    bar.finish_and_clear();
    let target = dir.to_owned();
    blocking(move || {
        let result = match kind {
            TreeKind::Release => export_tree(&manifest, &target, &store),
            TreeKind::Data => export_data(&manifest, &target, &store),
        };
        drop(cache);
        result
    })
    .await
}
