//! `ferry server backup` and `ferry server restore`: a server's state and release content
//! in one file, taken while the server runs and takes writes, and brought back into a new
//! data directory.
//!
//! The file is a zstd-compressed tar of `ferry.db`, a consistent snapshot of the SQLite
//! database (`VACUUM INTO` reads it in one transaction beside the running server), and
//! `blobs/HASH` for every blob that snapshot references, read back from the content store
//! and checked against its hash. The audit key is never in it: it is backed up apart, and
//! both taking and restoring a backup verify the audit trail with it, so a backup that
//! restores is a trail that verifies. PostgreSQL is backed up with its own tools
//! (`pg_dump`), release content in S3 with the bucket's.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_domain::audit::verify_chain;
use ferry_store::{AuditTrail, Catalog, Configuration};
use ferry_store_sqlite::SqliteStore;
use serde::Serialize;

use crate::files::sync_dir;

/// What a backup holds, or what a restore brought back.
#[derive(Debug, Serialize)]
pub struct Backup {
    /// Audit events in the snapshot, verified with the audit key.
    pub audit_events: u64,
    /// Blobs of release content, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// The database's name in a data directory and in a backup.
const DATABASE: &str = "ferry.db";
/// Where blobs go in a backup: `blobs/HASH`.
const BLOBS: &str = "blobs/";
/// zstd's level: fast, as content is mostly compressed already.
const COMPRESSION: i32 = 3;

/// Writes a backup of the SQLite state in `data_dir` (its audit trail verified with the key
/// in `audit_key_file`, or `DATA/audit-key`) and the release content in `blobs_dir` to `out`.
pub async fn backup(
    data_dir: &Path,
    audit_key_file: Option<&Path>,
    blobs_dir: &Path,
    out: &Path,
) -> anyhow::Result<Backup> {
    let database = data_dir.join(DATABASE);
    if !database.is_file() {
        bail!(
            "{} holds no SQLite database ({DATABASE}): name the server's data directory with --data; a server on PostgreSQL is backed up with pg_dump (docs/server.md)",
            data_dir.display()
        );
    }
    let audit_key = load_audit_key(data_dir, audit_key_file)?;
    if out.exists() {
        bail!(
            "{} exists already: name a new file, so no backup is overwritten",
            out.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix(".ferry-backup-")
        .tempdir_in(parent_of(out))
        .context("creating a work directory beside the backup")?;
    let snapshot = work.path().join(DATABASE);
    SqliteStore::copy_into_one_file(&database, &snapshot)
        .await
        .with_context(|| format!("taking a snapshot of {}", database.display()))?;
    // The bytes archived are the snapshot as taken; checking it opens it as a store would.
    let database_bytes = fs::read(&snapshot)?;
    let (audit_events, referenced, _) = check_snapshot(&snapshot, audit_key).await?;

    let content = BlobStore::open(blobs_dir)
        .with_context(|| format!("opening the release content in {}", blobs_dir.display()))?;
    let partial = work.path().join("backup.partial");
    // Readable by its owner only: it holds the whole state, users' token hashes included.
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    let mut encoder = zstd::Encoder::new(BufWriter::new(file), COMPRESSION)?;
    // A checksum of the whole: a damaged byte anywhere, even in a part of the database that
    // no check reads (a free page), refuses the restore.
    encoder.include_checksum(true)?;
    let mut archive = tar::Builder::new(encoder);
    append(&mut archive, DATABASE, &database_bytes)?;
    let (mut blobs, mut blob_bytes) = (0, 0);
    for hash in &referenced {
        let bytes = content.read(hash).with_context(|| {
            format!(
                "release content {} that the database references cannot be read from {}: it was collected while the backup ran (run it again) or lost (`ferry server fsck` says more)",
                hash.to_hex(),
                blobs_dir.display()
            )
        })?;
        append(&mut archive, &format!("{BLOBS}{}", hash.to_hex()), &bytes)?;
        blobs += 1;
        blob_bytes += bytes.len() as u64;
    }
    let file = archive
        .into_inner()?
        .finish()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    sync_dir(&parent_of(out))?;
    Ok(Backup {
        audit_events,
        blobs,
        blob_bytes,
    })
}

/// Restores the backup `file` into `data_dir`, which must hold no database yet, checking
/// every blob against its hash and the audit trail against the installation's key (in
/// `audit_key_file`, or `DATA/audit-key`) before anything is put in place.
pub async fn restore(
    file: &Path,
    data_dir: &Path,
    audit_key_file: Option<&Path>,
    secret_key_file: Option<&Path>,
) -> anyhow::Result<Backup> {
    let database = data_dir.join(DATABASE);
    if database.exists() {
        bail!(
            "{} holds a database already: restore into a new, empty data directory",
            data_dir.display()
        );
    }
    let audit_key = load_audit_key(data_dir, audit_key_file)?;
    crate::files::create_private_dir(data_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".ferry-restore-")
        .tempdir_in(data_dir)?;
    let snapshot = work.path().join(DATABASE);
    let content = BlobStore::open(&work.path().join("blobs"))?;
    let (mut blobs, mut blob_bytes) = (0, 0);
    let mut archive = tar::Archive::new(zstd::Decoder::new(BufReader::new(
        File::open(file).with_context(|| format!("opening {}", file.display()))?,
    ))?);
    for entry in archive
        .entries()
        .with_context(|| format!("{} is not a ferry backup", file.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", file.display()))?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        match backup_entry(&name) {
            Some(Entry::Database) => {
                // Checked on a copy: checking opens it as a store would, and what is put in
                // place is the file as it was backed up.
                fs::write(&snapshot, &bytes)?;
                fs::write(work.path().join("checked.db"), &bytes)?;
            }
            Some(Entry::Blob(hash)) => {
                // `put_batch` checks the bytes against the hash before storing them.
                content
                    .put_batch(&[(hash, &bytes)])
                    .with_context(|| format!("{} holds a damaged blob {name}", file.display()))?;
                blobs += 1;
                blob_bytes += bytes.len() as u64;
            }
            None => bail!(
                "{} holds {name:?}, which no ferry backup has: nothing was restored",
                file.display()
            ),
        }
    }
    // Read to the end of the compressed stream, past the archive's end: the checksum of the
    // whole is checked there, so a damaged byte in what tar never reads is found too.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
        .with_context(|| format!("{} is damaged: nothing was restored", file.display()))?;
    if !snapshot.is_file() {
        bail!("{} holds no database: nothing was restored", file.display());
    }
    let (audit_events, referenced, secret_key_id) =
        check_snapshot(&work.path().join("checked.db"), audit_key).await?;
    if let Some(needed) = secret_key_id {
        check_secret_key(data_dir, secret_key_file, &needed)?;
    }
    if let Some(missing) = referenced.iter().find(|hash| !content.contains(hash)) {
        bail!(
            "{} lacks release content {} that its database references: nothing was restored",
            file.display(),
            missing.to_hex()
        );
    }
    File::open(&snapshot)?.sync_all()?;
    let blobs_dir = data_dir.join("blobs");
    if blobs_dir.exists() {
        bail!(
            "{} exists already: restore into a new, empty data directory",
            blobs_dir.display()
        );
    }
    fs::rename(work.path().join("blobs"), &blobs_dir)?;
    fs::rename(&snapshot, &database)?;
    sync_dir(data_dir)?;
    Ok(Backup {
        audit_events,
        blobs,
        blob_bytes,
    })
}

/// The installation's audit key, which must exist: a backup is never taken or restored
/// without verifying its trail.
fn load_audit_key(data_dir: &Path, audit_key_file: Option<&Path>) -> anyhow::Result<[u8; 32]> {
    let key = audit_key_file
        .map(Path::to_owned)
        .unwrap_or_else(|| data_dir.join(crate::files::AUDIT_KEY_FILE));
    if !key.is_file() {
        bail!(
            "the audit key {} does not exist: give the installation's key with --audit-key FILE (it is never in a backup; keep it apart)",
            key.display()
        );
    }
    crate::files::load_or_create_audit_key(data_dir, audit_key_file, true)
}

/// Refuses a restore without the secret key the backup's secrets are sealed with (its
/// id `needed`): the restored server could not start, nor read a secret, without it.
fn check_secret_key(
    data_dir: &Path,
    secret_key_file: Option<&Path>,
    needed: &str,
) -> anyhow::Result<()> {
    let path = crate::secret_key::key_path(data_dir, secret_key_file);
    match crate::secret_key::read(&path)? {
        Some(key) if key.id() == needed => Ok(()),
        Some(key) => bail!(
            "the backup's secrets are sealed with secret key {needed}, but {} is key {}: give the installation's secret key with --secret-key FILE; nothing was restored",
            path.display(),
            key.id()
        ),
        None => bail!(
            "the backup's secrets are sealed with secret key {needed}, and {} does not exist: give the installation's secret key with --secret-key FILE (it is never in a backup; keep it apart); nothing was restored",
            path.display()
        ),
    }
}

/// What a name in a backup is.
enum Entry {
    Database,
    Blob(ContentHash),
}

/// The entry `name` stands for, if a backup may hold it: nothing else is read.
fn backup_entry(name: &str) -> Option<Entry> {
    if name == DATABASE {
        return Some(Entry::Database);
    }
    ContentHash::from_hex(name.strip_prefix(BLOBS)?).map(Entry::Blob)
}

/// Verifies the audit trail of the database at `snapshot` with `audit_key` and returns its
/// length, the blobs it references and the id of the secret key it claimed, if any.
async fn check_snapshot(
    snapshot: &Path,
    audit_key: [u8; 32],
) -> anyhow::Result<(u64, HashSet<ContentHash>, Option<String>)> {
    let store = SqliteStore::open(snapshot, audit_key).await?;
    let chain = store.audit_chain().await?;
    let referenced = store.referenced_blobs().await?;
    let secret_key_id = store.secret_key_id().await?;
    store.close().await;
    let events = verify_chain(&audit_key, &chain.events, chain.head.as_ref()).map_err(|b| {
        anyhow::anyhow!(
            "the audit trail does not verify with this audit key (event {}: {}): give the key of this installation (--audit-key FILE)",
            b.seq,
            b.reason
        )
    })?;
    let referenced = referenced
        .iter()
        .map(|hex| {
            ContentHash::from_hex(hex)
                .with_context(|| format!("the database references a malformed blob {hex:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((events, referenced, secret_key_id))
}

/// Adds `bytes` to the archive as the file `name`.
fn append<W: std::io::Write>(
    archive: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    archive.append_data(&mut header, name, bytes)?;
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}
