//! Sending content to the server: blobs of an application its target runs (hand edits the
//! agent captures, data it backs up). The agent asks which the server lacks and uploads only
//! those, in batches read back from where they were found and checked against their hashes
//! as they go (`ferry_cas::upload`, as the client does for a release).

use ferry_api::{BlobHashes, MissingBlobs, StoredBlobs};
use ferry_cas::hash::ContentHash;
use ferry_cas::scan::BlobLocation;
use ferry_cas::upload::{read_batch, upload_batches, HASHES_PER_QUESTION, UPLOADS_IN_FLIGHT};
use tokio::task::JoinSet;

use super::Agent;

/// What an upload sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Blobs the server lacked, which were sent.
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Agent {
    /// Uploads those of `blobs` (content of `app`) the server lacks.
    pub(super) async fn upload_blobs(
        &self,
        app: &str,
        blobs: Vec<(ContentHash, BlobLocation)>,
    ) -> anyhow::Result<Uploaded> {
        let mut wanted = std::collections::HashSet::new();
        for group in blobs.chunks(HASHES_PER_QUESTION) {
            let question = BlobHashes {
                hashes: group.iter().map(|(hash, _)| hash.to_hex()).collect(),
            };
            let path = format!("/api/v1/agent/apps/{app}/blobs/missing");
            let answer: MissingBlobs = self.link.post(&path, &question).await?.json().await?;
            wanted.extend(answer.missing);
        }
        let missing: Vec<(ContentHash, BlobLocation)> = blobs
            .into_iter()
            .filter(|(hash, _)| wanted.contains(&hash.to_hex()))
            .collect();
        let sent = Uploaded {
            blobs: missing.len() as u64,
            bytes: missing.iter().map(|(_, at)| at.len).sum(),
        };
        let path = format!("/api/v1/agent/apps/{app}/blobs");
        let mut in_flight = JoinSet::new();
        for batch in upload_batches(missing) {
            if in_flight.len() >= UPLOADS_IN_FLIGHT {
                in_flight
                    .join_next()
                    .await
                    .expect("a batch is in flight")??;
            }
            let (link, path) = (self.link.clone(), path.clone());
            in_flight.spawn(async move {
                let body = tokio::task::spawn_blocking(move || read_batch(&batch)).await??;
                let request = link
                    .http
                    .post(link.url(&path))
                    .header("content-type", "application/octet-stream")
                    .body(body);
                let _: StoredBlobs = link.send(&path, request).await?.json().await?;
                anyhow::Ok(())
            });
        }
        while let Some(done) = in_flight.join_next().await {
            done??;
        }
        Ok(sent)
    }
}
