//! Backups of application data as tasks: taking one (the release's `pre_backup` hook, a
//! snapshot of its backup paths, the blobs the server lacks uploaded, then the backup
//! recorded), and restoring one (a backup of the data it replaces first, then the blobs the
//! cache lacks fetched, then each path restored beside its place and exchanged into it).

use std::collections::HashSet;

use anyhow::{bail, Context};
use ferry_api::{AgentBackup, AppBackup, BackupReason, BlobHashes};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::Manifest;
use ferry_cas::scan::BlobLocation;

use super::Agent;
use crate::app_backup::{restore, take};
use crate::layout::{staging_dir, AppLayout};
use crate::lock::AppLock;

/// Hashes asked for per fetch request.
const HASHES_PER_FETCH: usize = 20_000;
/// The bytes asked for per fetch request: what the server sends in one answer.
const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Fetch requests at once (see `fetch_all`, which joins this many).
const BATCHES_IN_FLIGHT: usize = 3;

/// What a restore task asks for.
pub(super) struct RestoreAsked<'a> {
    pub backup: i64,
    pub digest: &'a str,
    pub manifest_blob: &'a str,
    pub paths: &'a [String],
    pub path: Option<&'a str>,
}

impl Agent {
    /// Takes a backup of `app` and records it with the server; returns it.
    pub(super) async fn back_up(
        &self,
        app: &str,
        reason: BackupReason,
        task: Option<i64>,
    ) -> anyhow::Result<AppBackup> {
        let (root, name, env) = (self.root.clone(), app.to_owned(), self.state.env.clone());
        let hook = match reason {
            BackupReason::BeforeRestore => take::PreBackup::Skip,
            _ => take::PreBackup::Run,
        };
        // The pre_backup hook gets the configuration of the release served, as other hooks do.
        let served = crate::layout::current_installed(&self.root, app).map_or(0, |i| i.config);
        let values = self.config_values(app, served).await?;
        let commands_as = self.commands_as(app);
        let taken = tokio::task::spawn_blocking(move || {
            take::take(&root, &name, &env, &values, hook, &commands_as)
        })
        .await??;
        self.send_backup(app, reason, task, taken).await
    }

    /// Uploads what the server lacks of a backup taken on this target (its manifest too)
    /// and records it; returns it.
    pub(super) async fn send_backup(
        &self,
        app: &str,
        reason: BackupReason,
        task: Option<i64>,
        taken: take::Taken,
    ) -> anyhow::Result<AppBackup> {
        let manifest = &taken.snapshot.manifest;
        let stored = manifest.to_blob();
        let manifest_blob = ContentHash::of(&stored);
        // The manifest goes up as one more blob, from a file like the others.
        let scratch = staging_dir(&self.root);
        std::fs::create_dir_all(&scratch).with_context(|| scratch.display().to_string())?;
        let file = scratch.join(format!("backup-{app}-{manifest_blob}.manifest"));
        std::fs::write(&file, &stored).with_context(|| file.display().to_string())?;
        let mut blobs = taken.snapshot.blobs.clone();
        blobs.push((
            manifest_blob,
            BlobLocation {
                path: file.clone(),
                offset: 0,
                len: stored.len() as u64,
            },
        ));
        let uploaded = self.upload_blobs(app, blobs).await;
        let _ = std::fs::remove_file(&file);
        let uploaded = uploaded?;
        let report = AgentBackup {
            app: app.to_owned(),
            reason,
            task,
            version: Some(taken.version.clone()),
            paths: taken.paths.clone(),
            digest: manifest.digest().to_hex(),
            manifest_blob: manifest_blob.to_hex(),
            new_bytes: uploaded.bytes,
        };
        Ok(self
            .link
            .post("/api/v1/agent/backups", &report)
            .await?
            .json()
            .await?)
    }

    /// The task of backing up `app`: the backup, as a message and a detail naming it.
    pub(super) async fn back_up_task(
        &self,
        app: &str,
        reason: BackupReason,
        task: i64,
    ) -> anyhow::Result<(String, Option<serde_json::Value>)> {
        let backup = self.back_up(app, reason, Some(task)).await?;
        Ok((
            format!(
                "backup {} of {app}: {} file(s), {} bytes, {} bytes new",
                backup.id, backup.files, backup.bytes, backup.new_bytes
            ),
            Some(serde_json::to_value(&backup)?),
        ))
    }

    /// The task of restoring a backup of `app`: a backup of what it replaces first, then
    /// the restore.
    pub(super) async fn restore_task(
        &self,
        app: &str,
        asked: RestoreAsked<'_>,
    ) -> anyhow::Result<(String, Option<serde_json::Value>)> {
        let safety = self
            .back_up(app, BackupReason::BeforeRestore, None)
            .await
            .context("the data a restore would replace could not be backed up first, so nothing was restored")?;
        let digest = ContentHash::from_hex(asked.digest)
            .with_context(|| format!("{:?} is not a hash", asked.digest))?;
        let manifest_blob = ContentHash::from_hex(asked.manifest_blob)
            .with_context(|| format!("{:?} is not a hash", asked.manifest_blob))?;
        self.fetch_all(&[(manifest_blob, 0)]).await?;
        let stored = self.cache.read(&manifest_blob)?;
        let manifest = Manifest::from_blob(&stored, &digest)?;
        manifest.validate_data()?;
        let needed: Vec<(ContentHash, u64)> =
            manifest.blobs().iter().map(|c| (c.hash, c.size)).collect();
        self.fetch_all(&needed).await?;
        let layout = AppLayout::new(&self.root, app)?;
        let (root, name, cache) = (self.root.clone(), app.to_owned(), self.cache.clone());
        let (paths, only) = (asked.paths.to_vec(), asked.path.map(str::to_owned));
        // Restored data is the application's, as the data it replaces was.
        let account = self.commands_as(app).ok().flatten();
        let report = tokio::task::spawn_blocking(move || {
            let _lock = AppLock::acquire(&root, &name)?;
            restore(
                &layout.shared_dir(),
                &manifest,
                &paths,
                only.as_deref(),
                &cache,
                account.as_ref(),
            )
        })
        .await??;
        let what = match asked.path {
            Some(path) => path.to_owned(),
            None => asked.paths.join(", "),
        };
        Ok((
            format!(
                "restored {what} of {app} from backup {} ({} file(s), {} bytes); the data it \
                 replaced is backup {}",
                asked.backup, report.files, report.bytes, safety.id
            ),
            Some(serde_json::json!({
                "backup": asked.backup,
                "safety_backup": safety.id,
                "restored": report.restored,
                "removed": report.removed,
                "files": report.files,
                "bytes": report.bytes,
            })),
        ))
    }

    /// Fetches those of `blobs` (hash and size) the cache lacks, in batches of at most
    /// [`BATCH_BYTES`] (what the server sends in one answer), [`BATCHES_IN_FLIGHT`] at once
    /// so the server reads one while the cache writes another.
    async fn fetch_all(&self, blobs: &[(ContentHash, u64)]) -> anyhow::Result<()> {
        let mut seen = HashSet::new();
        let mut pending: Vec<(ContentHash, u64)> = blobs
            .iter()
            .filter(|(hash, _)| seen.insert(*hash) && !self.cache.contains(hash))
            .copied()
            .collect();
        while !pending.is_empty() {
            let mut batches: Vec<BlobHashes> = Vec::new();
            let mut bytes = u64::MAX;
            for (hash, size) in &pending {
                let full = batches
                    .last()
                    .is_none_or(|b| b.hashes.len() >= HASHES_PER_FETCH);
                if full || bytes.saturating_add(*size) > BATCH_BYTES {
                    batches.push(BlobHashes { hashes: Vec::new() });
                    bytes = 0;
                }
                bytes += size;
                batches
                    .last_mut()
                    .expect("one was pushed")
                    .hashes
                    .push(hash.to_hex());
            }
            let mut received = HashSet::new();
            for window in batches.chunks(BATCHES_IN_FLIGHT) {
                let (a, b, c) = tokio::join!(
                    self.fetch_some(window.first()),
                    self.fetch_some(window.get(1)),
                    self.fetch_some(window.get(2)),
                );
                received.extend(a?);
                received.extend(b?);
                received.extend(c?);
            }
            if received.is_empty() {
                bail!("the server sent no content");
            }
            pending.retain(|(hash, _)| !received.contains(hash));
        }
        Ok(())
    }

    /// One batch, if there is one.
    async fn fetch_some(&self, ask: Option<&BlobHashes>) -> anyhow::Result<HashSet<ContentHash>> {
        match ask {
            Some(ask) => self.fetch_batch(ask).await,
            None => Ok(HashSet::new()),
        }
    }
}
