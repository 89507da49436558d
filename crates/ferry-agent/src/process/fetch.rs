//! Fetching the blobs a release needs and the cache lacks: in batches, each streamed,
//! its blobs checked and stored by writer threads as soon as each is whole, so a dropped
//! connection loses at most the blob in flight and the disk writes while the rest arrives.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::bail;
use ferry_api::BlobHashes;
use ferry_cas::blobs::BlobStore;
use ferry_cas::frames::FrameReader;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;

use super::Agent;
use crate::layout::{AppLayout, Installed};
use crate::stage::{blobs_needed_with, PreviousCheck};

/// Hashes asked for per fetch request.
const HASHES_PER_FETCH: usize = 20_000;
/// The longest a blob batch may take to arrive.
const FETCH_LIMIT: Duration = Duration::from_secs(3600);
/// The longest the server may stay silent while a blob batch arrives.
const FETCH_IDLE: Duration = Duration::from_secs(60);

/// Threads writing fetched blobs into the cache: creating ten thousand small files is most
/// of a first deploy, and it goes faster from more than one thread.
fn writer_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(2, 4))
}

/// Checks and stores blobs as they arrive until the sender is done; returns their hashes.
/// The first that cannot be stored stops this writer (the others stop at the closed channel).
fn store_arriving(
    cache: &BlobStore,
    arriving: &Mutex<tokio::sync::mpsc::Receiver<(ContentHash, Vec<u8>)>>,
) -> anyhow::Result<HashSet<ContentHash>> {
    let mut received = HashSet::new();
    loop {
        let next = arriving
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some((hash, data)) = next else {
            return Ok(received);
        };
        if let Err(error) = cache.put_unsynced(&hash, &data) {
            arriving
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .close();
            return Err(error.into());
        }
        received.insert(hash);
    }
}

impl Agent {
    /// Fetches, in batches, the blobs of `manifest` the cache lacks. Each blob is checked
    /// against its hash and stored as soon as it has arrived whole, so a dropped connection
    /// loses at most the blob in flight. `check` says how files of the previous release are
    /// judged reusable (see [`PreviousCheck`]).
    pub(super) async fn fetch_missing(
        &self,
        app: &str,
        version: &Installed,
        manifest: &Manifest,
        check: PreviousCheck,
    ) -> anyhow::Result<usize> {
        let layout = AppLayout::new(&self.root, app)?;
        let previous = layout.current();
        // Only the blobs fetched for this release are vouched for without a second read.
        self.cache.forget_written();
        let needed = blobs_needed_with(
            &layout,
            version,
            manifest,
            previous.as_ref(),
            &self.cache,
            check,
        );
        let mut pending: Vec<ContentHash> = needed.iter().map(|c| c.hash).collect();
        let n_needed = pending.len();
        while !pending.is_empty() {
            let ask = BlobHashes {
                hashes: pending
                    .iter()
                    .take(HASHES_PER_FETCH)
                    .map(ContentHash::to_hex)
                    .collect(),
            };
            let received = self.fetch_batch(&ask).await?;
            if received.is_empty() {
                bail!("the server sent no content");
            }
            pending.retain(|h| !received.contains(h));
            // The disk writes this batch while the next one arrives (after the last one,
            // staging syncs: a flush then would only hold up its links).
            if !pending.is_empty() {
                self.cache.start_flush();
            }
        }
        Ok(n_needed)
    }

    /// Fetches one batch of blobs: while the response streams in, writer threads check and
    /// write each whole blob into the cache. Returns the hashes received; an error leaves
    /// what was stored before it in the cache.
    pub(super) async fn fetch_batch(
        &self,
        ask: &BlobHashes,
    ) -> anyhow::Result<HashSet<ContentHash>> {
        let path = "/api/v1/agent/blobs/fetch";
        // A batch takes as long as the link needs; only a silent server is given up on.
        let request = self.link.post_request(path, ask).timeout(FETCH_LIMIT);
        let mut response = self.link.send(path, request).await?;
        let (blobs, arriving) = tokio::sync::mpsc::channel::<(ContentHash, Vec<u8>)>(64);
        let arriving = Arc::new(Mutex::new(arriving));
        let writers: Vec<_> = (0..writer_threads())
            .map(|_| {
                let (cache, arriving) = (Arc::clone(&self.cache), Arc::clone(&arriving));
                tokio::task::spawn_blocking(move || store_arriving(&cache, &arriving))
            })
            .collect();
        let mut frames = FrameReader::default();
        let streamed: anyhow::Result<()> = async {
            loop {
                let piece = tokio::time::timeout(FETCH_IDLE, response.chunk())
                    .await
                    .map_err(|_| anyhow::anyhow!("the server sent nothing for {FETCH_IDLE:?}"))??;
                let Some(piece) = piece else {
                    return Ok(frames.finish()?);
                };
                frames.push(&piece);
                while let Some(blob) = frames.next_frame()? {
                    if blobs.send(blob).await.is_err() {
                        // The writers stopped; their error says why.
                        return Ok(());
                    }
                }
            }
        }
        .await;
        drop(blobs);
        let mut received = HashSet::new();
        for writer in writers {
            received.extend(writer.await??);
        }
        streamed?;
        Ok(received)
    }
}
