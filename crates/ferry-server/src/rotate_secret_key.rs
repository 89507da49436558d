//! `ferry server rotate-secret-key`: a new secret key, and every stored secret sealed again
//! under it, in one transaction. The new key is written beside the old one first
//! (`secret-key.next`), so a rotation stopped at any point leaves a key that opens every
//! secret: before the transaction the old one, after it the next one, which the next start
//! puts in place (`secret_key::load_or_create`). The old key is kept as
//! `secret-key.retired-ID` for server backups made before, until its owner removes it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ferry_domain::audit_event::{AuditAction, ConfigReseal};
use ferry_store::ConfigRevision;

use crate::bootstrap::SERVER_ACTOR;
use crate::clock::{Clock, SystemClock};
use crate::database::{Database, OpenStore};
use crate::files::{load_or_create_audit_key, sync_dir, write_new_key};
use crate::secret_key::{self, SecretKey};

/// What a rotation did.
#[derive(Clone, Debug)]
pub struct Rotation {
    /// Revisions whose secrets were sealed again.
    pub revisions: u64,
    pub previous_key_id: String,
    pub key_id: String,
    /// The key's file, which holds the new key.
    pub key_file: PathBuf,
    /// Where the old key was kept.
    pub retired: PathBuf,
}

/// Rotates the secret key of the installation in `data_dir` on `database`. On SQLite no
/// server may run on the data directory; on PostgreSQL the caller stops every server
/// first (they hold the old key in memory) and copies the new key file to each.
pub async fn rotate_secret_key(
    data_dir: &Path,
    database: &Database,
    audit_key_file: Option<&Path>,
    secret_key_file: Option<&Path>,
) -> anyhow::Result<Rotation> {
    let _alone = match database {
        Database::Sqlite(_) => Some(crate::running::hold_alone(data_dir)?.with_context(|| {
            format!(
                "a server is running on {}: stop it, rotate the key, then start it again",
                data_dir.display()
            )
        })?),
        Database::Postgres(_) => None,
    };
    if !database.exists().await? {
        bail!(
            "{} holds no ferry installation: nothing to rotate",
            database.describe()
        );
    }
    let audit_key = load_or_create_audit_key(data_dir, audit_key_file, true)?;
    let opened = OpenStore::open(database, audit_key).await?;
    let rotated = rotate(&opened, data_dir, secret_key_file).await;
    opened.close().await;
    rotated
}

async fn rotate(
    opened: &OpenStore,
    data_dir: &Path,
    secret_key_file: Option<&Path>,
) -> anyhow::Result<Rotation> {
    let store = opened.store();
    let key_file = secret_key::key_path(data_dir, secret_key_file);
    let needed = store.secret_key_id().await?;
    let old = secret_key::load_or_create(&key_file, needed.as_deref())?;
    if needed.is_none() {
        store.claim_secret_key(old.id()).await?;
    }
    let next_file = secret_key::next_key_path(&key_file);
    let next = SecretKey::from_bytes(write_new_key(&next_file)?);
    let sealed = store.sealed_config_revisions().await?;
    let resealed = sealed
        .iter()
        .map(|revision| reseal(revision, &old, &next))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let record = AuditAction::ConfigReseal(ConfigReseal {
        revisions: resealed.len() as u64,
        key_id: next.id().to_owned(),
        previous_key_id: Some(old.id().to_owned()),
    })
    .record(SystemClock.now_ms(), SERVER_ACTOR, String::new(), None);
    store
        .reseal_config(old.id(), next.id(), resealed.clone(), record)
        .await
        .context("sealing the secrets under the new key (nothing was changed)")?;
    let mut retired_name = key_file.file_name().unwrap_or_default().to_owned();
    retired_name.push(format!(".retired-{}", old.id()));
    let retired = key_file.with_file_name(retired_name);
    fs::rename(&key_file, &retired)
        .with_context(|| format!("keeping the old key as {}", retired.display()))?;
    fs::rename(&next_file, &key_file)
        .with_context(|| format!("putting the new key in {}", key_file.display()))?;
    sync_dir(key_file.parent().unwrap_or(Path::new(".")))?;
    Ok(Rotation {
        revisions: resealed.len() as u64,
        previous_key_id: old.id().to_owned(),
        key_id: next.id().to_owned(),
        key_file,
        retired,
    })
}

/// `revision` with each secret opened with `old` and sealed with `next`.
fn reseal(
    revision: &ConfigRevision,
    old: &SecretKey,
    next: &SecretKey,
) -> anyhow::Result<ConfigRevision> {
    let settings = old.open_all(revision).map_err(anyhow::Error::msg)?;
    Ok(ConfigRevision {
        entries: next.seal_all(&revision.app, &settings)?,
        sealed_with: Some(next.id().to_owned()),
        ..revision.clone()
    })
}
