//! `ferry server migrate`: moves an installation's state from SQLite in a data directory to
//! an empty PostgreSQL database, history and audit chain included, and proves the chain
//! whole on both sides.

use std::path::Path;

use anyhow::Context;
use ferry_domain::audit::verify_chain;
use ferry_store::{AuditTrail, StoreError};
use ferry_store_postgres::{from_sqlite, PostgresStore};
use ferry_store_sqlite::SqliteStore;

use crate::blob_storage::{self, BlobLocation};
use serde::Serialize;

/// What a move did.
#[derive(Debug, Serialize)]
pub struct Migration {
    /// Rows moved per table.
    pub rows: std::collections::BTreeMap<&'static str, u64>,
    /// Audit events moved, verified with the audit key in PostgreSQL.
    pub audit_events: u64,
    /// Blobs copied to `--blobs` (those already there are not copied again), and their
    /// bytes; `None` without `--blobs`.
    pub blobs_copied: Option<(u64, u64)>,
}

/// Bytes of blobs read and written at once while copying content.
const COPY_BATCH_BYTES: u64 = 32 << 20;

/// Why a move did not happen.
#[derive(Debug)]
pub enum MigrateError {
    /// Refused before anything was written: the target is in use, or the source is not a
    /// data directory.
    Refused(String),
    /// Failed on the way; the target holds nothing of it (the copy is one transaction).
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for MigrateError {
    fn from(error: E) -> MigrateError {
        MigrateError::Failed(error.into())
    }
}

/// Moves the state in `data_dir` (keyed by its audit key, or `audit_key_file`) into the
/// empty PostgreSQL database at `url`. The server on `data_dir` must be stopped.
pub async fn migrate(
    data_dir: &Path,
    audit_key_file: Option<&Path>,
    url: &str,
    blobs: Option<&BlobLocation>,
) -> Result<Migration, MigrateError> {
    if !crate::database::is_postgres_url(url) {
        return Err(MigrateError::Refused(
            "--to is not a PostgreSQL URL: give postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                .to_owned(),
        ));
    }
    let sqlite_path = data_dir.join("ferry.db");
    if moved_name(&sqlite_path).is_file() && !sqlite_path.exists() {
        return Err(MigrateError::Refused(format!(
            "{} was moved to PostgreSQL already ({} is the database as it was then): start the servers with --database, or rename that file back to ferry.db to move it again",
            data_dir.display(),
            moved_name(&sqlite_path).display()
        )));
    }
    if !sqlite_path.is_file() {
        return Err(MigrateError::Refused(format!(
            "{} holds no ferry database (ferry.db): name the data directory of the server to move with --from",
            data_dir.display()
        )));
    }
    let _alone = crate::running::hold_alone(data_dir)?.ok_or_else(|| {
        MigrateError::Refused(format!(
            "a server is running on {}: stop it (and every server sharing the directory) first, so that no change made during the move is lost",
            data_dir.display()
        ))
    })?;
    let audit_key = crate::files::load_or_create_audit_key(data_dir, audit_key_file, true)?;
    // Brings the SQLite database to the latest migration, and refuses a broken trail: a
    // move must not carry a cut or altered trail into a database that would then vouch
    // for it.
    let sqlite = SqliteStore::open(&sqlite_path, audit_key)
        .await
        .with_context(|| format!("opening {}", sqlite_path.display()))?;
    let chain = sqlite.audit_chain().await?;
    sqlite.close().await;
    let events = verify_chain(&audit_key, &chain.events, chain.head.as_ref()).map_err(|b| {
        anyhow::anyhow!(
            "the audit trail in {} does not verify (event {}: {}); nothing was moved: run `ferry audit verify` and restore the data directory from a backup first",
            sqlite_path.display(),
            b.seq,
            b.reason
        )
    })?;
    // Content first: copying it again is harmless, so a move that fails later can simply be
    // run again, while the database's copy is the step that cannot be repeated.
    let blobs_copied = match blobs {
        Some(to) => Some(copy_blobs(&data_dir.join("blobs"), to).await?),
        None => None,
    };
    let rows = from_sqlite::copy(&sqlite_path, url, audit_key)
        .await
        .map_err(|e| match e {
            StoreError::Refused(why) => MigrateError::Refused(why),
            other => MigrateError::Failed(other.into()),
        })?;
    let postgres = PostgresStore::open(url, audit_key).await?;
    let chain = postgres.audit_chain().await?;
    postgres.close().await;
    let moved = verify_chain(&audit_key, &chain.events, chain.head.as_ref()).map_err(|b| {
        anyhow::anyhow!(
            "the audit trail does not verify in PostgreSQL after the move (event {}: {}); do not start servers on it: drop the database and move again",
            b.seq,
            b.reason
        )
    })?;
    if moved != events {
        return Err(anyhow::anyhow!("{events} audit events in SQLite but {moved} in PostgreSQL after the move; do not start servers on it: drop the database and move again").into());
    }
    set_aside(&sqlite_path).await?;
    Ok(Migration {
        rows,
        audit_events: moved,
        blobs_copied,
    })
}

/// Copies every blob of the folder `from` that `to` lacks, each checked against its hash
/// when read and stored whole; returns the blobs and bytes copied.
async fn copy_blobs(from: &Path, to: &BlobLocation) -> anyhow::Result<(u64, u64)> {
    let source = blob_storage::open(&BlobLocation::Folder(from.to_owned())).await?;
    let target = blob_storage::open(to).await?;
    let stored = source.stored().await?;
    let present = target
        .sizes(stored.iter().map(|blob| blob.hash).collect())
        .await?;
    let missing: Vec<_> = stored
        .iter()
        .zip(present)
        .filter(|(_, size)| size.is_none())
        .map(|(blob, _)| blob)
        .collect();
    let mut batch = Vec::new();
    let mut batch_bytes = 0;
    for blob in &missing {
        batch.push((blob.hash, source.read(blob.hash).await?));
        batch_bytes += blob.size;
        if batch_bytes >= COPY_BATCH_BYTES {
            target.put_batch(std::mem::take(&mut batch)).await?;
            batch_bytes = 0;
        }
    }
    if !batch.is_empty() {
        target.put_batch(batch).await?;
    }
    let bytes = missing.iter().map(|blob| blob.size).sum();
    let blobs = missing.len() as u64;
    Ok((blobs, bytes))
}

/// The name the SQLite database takes once its state has moved: a server started on the
/// data directory without `--database` then refuses, instead of serving the old state
/// (and telling agents to go back to it).
pub fn moved_name(sqlite_path: &Path) -> std::path::PathBuf {
    with_suffix(sqlite_path, ".moved-to-postgresql")
}

/// The renames that undo a move: the set-aside database back to `sqlite_path`, and its
/// write-ahead log too where a move by an earlier ferry left one beside it.
pub fn way_back(sqlite_path: &Path) -> String {
    JOURNAL_SUFFIXES
        .iter()
        .map(|suffix| {
            (
                with_suffix(&moved_name(sqlite_path), suffix),
                with_suffix(sqlite_path, suffix),
            )
        })
        .filter(|(moved, _)| moved.exists())
        .map(|(moved, back)| format!("{} to {}", moved.display(), back.display()))
        .collect::<Vec<_>>()
        .join(", and ")
}

/// The database file and its journal files: `ferry.db`, `ferry.db-wal`, `ferry.db-shm`.
const JOURNAL_SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Sets the SQLite database aside as [`moved_name`]: the whole state in one file (what the
/// write-ahead log held included), so that renaming that one file back is the whole way
/// back; then the database and its journal files go.
async fn set_aside(sqlite_path: &Path) -> anyhow::Result<()> {
    let moved = moved_name(sqlite_path);
    SqliteStore::copy_into_one_file(sqlite_path, &moved)
        .await
        .with_context(|| format!("writing {} to {}", sqlite_path.display(), moved.display()))?;
    let directory = sqlite_path.parent().unwrap_or(Path::new("."));
    crate::files::sync_dir(directory)?;
    for suffix in JOURNAL_SUFFIXES {
        let file = with_suffix(sqlite_path, suffix);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", file.display()))
            }
            _ => {}
        }
    }
    crate::files::sync_dir(directory)
}
