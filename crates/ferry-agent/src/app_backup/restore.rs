//! Restoring a backup: each path written beside its place first (`.NAME.ferry-restore`),
//! every file from blobs checked against their hashes, the filesystem synced once, then
//! exchanged into place in one rename where the filesystem allows (a directory over a
//! directory, a file or symlink over anything but a directory), so the application sees
//! the old data or the restored data, not a mix. A path the backup does not hold (it did not
//! exist then) is removed.
//!
//! A file that is one blob the agent has just fetched (checked against its hash as it
//! arrived, untouched since, linked into no release, and no other restored file's content)
//! is moved out of the cache into place rather than copied: restoring a large backup then
//! writes its content once, not twice. The cache only loses a blob it did not have before.

use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ferry_cas::blobs::BlobStore;
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{validate_path, Entry, EntryKind, Manifest};
use ferry_cas::release_config::is_within;
use rustix::fs::{renameat_with, RenameFlags, CWD};

use crate::account::Account;

use super::outermost;
use super::parallel::on_all_cores;
use crate::error::{AgentError, AgentResult};
use crate::fsutil::{fsync_dir, remove_tree, sync_filesystem};

/// What a restore put back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// The paths replaced by the backup's content.
    pub restored: Vec<String>,
    /// The paths removed because the backup does not hold them.
    pub removed: Vec<String>,
    pub files: u64,
    pub bytes: u64,
}

/// Restores into `shared` the backup `manifest` of `backup_paths`: `only` one path (a
/// backup path or a path inside one), or every backup path. Blobs are read from `blobs`,
/// where the caller put every blob of the manifest first.
pub fn restore(
    shared: &Path,
    manifest: &Manifest,
    backup_paths: &[String],
    only: Option<&str>,
    blobs: &BlobStore,
    account: Option<&Account>,
) -> AgentResult<RestoreReport> {
    manifest.validate_data()?;
    let roots = outermost(backup_paths);
    let units = match only {
        None => roots,
        Some(path) => {
            validate_path(path)
                .map_err(|reason| AgentError::Refused(format!("--path {path:?}: {reason}")))?;
            if !roots.iter().any(|root| is_within(path, root)) {
                return Err(AgentError::Refused(format!(
                    "--path {path:?} is not among the backup's paths ({}); name one of them or \
                     a path inside one",
                    roots.join(", ")
                )));
            }
            vec![path.to_owned()]
        }
    };
    let movable = movable_blobs(manifest, &units);
    let mut report = RestoreReport::default();
    let mut plans = Vec::new();
    for unit in &units {
        let entries: Vec<&Entry> = manifest
            .entries
            .iter()
            .filter(|entry| is_within(&entry.path, unit))
            .collect();
        make_parents(shared, unit, manifest, account)?;
        let beside = beside(shared, unit, "restore");
        remove_tree(&beside)?;
        if !entries.is_empty() {
            let (files, bytes) = write_tree(&beside, unit, &entries, (blobs, &movable))?;
            report.files += files;
            report.bytes += bytes;
            if let Some(account) = account {
                account.own_tree(&beside)?;
            }
        }
        plans.push((unit, beside, !entries.is_empty()));
    }
    // One sync makes every restored file durable before any takes its place.
    sync_filesystem(shared)?;
    for (unit, beside, restored) in plans {
        let place = shared.join(unit);
        let present = fs::symlink_metadata(&place).ok();
        let place_is_dir = present.as_ref().is_some_and(fs::Metadata::is_dir);
        if restored {
            if place_is_dir && fs::symlink_metadata(&beside).is_ok_and(|m| m.is_dir()) {
                renameat_with(CWD, &beside, CWD, &place, RenameFlags::EXCHANGE)
                    .map_err(|e| AgentError::errno(&place, e))?;
                remove_tree(&beside)?;
            } else {
                if place_is_dir {
                    set_aside(shared, unit)?;
                }
                fs::rename(&beside, &place).map_err(|e| AgentError::io(&place, e))?;
            }
            report.restored.push(unit.clone());
        } else if present.is_some() {
            set_aside(shared, unit)?;
            report.removed.push(unit.clone());
        }
        fsync_dir(place.parent().expect("a path under shared/ has a parent"))?;
    }
    Ok(report)
}

/// Where `unit`'s work of `what` goes: beside it, hidden, in its own directory.
fn beside(shared: &Path, unit: &str, what: &str) -> PathBuf {
    let (parent, name) = unit.rsplit_once('/').unwrap_or(("", unit));
    shared.join(parent).join(format!(".{name}.ferry-{what}"))
}

/// Moves what is at `unit` out of the way and removes it.
fn set_aside(shared: &Path, unit: &str) -> AgentResult<()> {
    let aside = beside(shared, unit, "replaced");
    remove_tree(&aside)?;
    let place = shared.join(unit);
    fs::rename(&place, &aside).map_err(|e| AgentError::io(&place, e))?;
    remove_tree(&aside)
}

/// Creates the directories on the way to `unit` that are missing, with the modes the
/// backup recorded.
fn make_parents(
    shared: &Path,
    unit: &str,
    manifest: &Manifest,
    account: Option<&Account>,
) -> AgentResult<()> {
    let mut so_far = String::new();
    let components: Vec<&str> = unit.split('/').collect();
    for component in &components[..components.len() - 1] {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(component);
        let full = shared.join(&so_far);
        match fs::symlink_metadata(&full) {
            Ok(metadata) if metadata.is_dir() => continue,
            Ok(_) => {
                return Err(AgentError::Refused(format!(
                    "{so_far:?} in shared/ is not a directory, and {unit:?} is restored inside \
                     it; move it away first"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(AgentError::io(&full, e)),
        }
        let mode = match manifest.get(&so_far).map(|e| &e.kind) {
            Some(EntryKind::Dir { mode }) => *mode,
            _ => 0o755,
        };
        fs::create_dir(&full).map_err(|e| AgentError::io(&full, e))?;
        fs::set_permissions(&full, fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::io(&full, e))?;
        if let Some(account) = account {
            account.own(&full)?;
        }
    }
    Ok(())
}

/// Writes the `entries` under `unit` (sorted by path) to `beside`; returns the files and
/// bytes written. Directories get their modes last, so a read-only one is filled first.
fn write_tree(
    beside: &Path,
    unit: &str,
    entries: &[&Entry],
    blobs: (&BlobStore, &HashSet<ContentHash>),
) -> AgentResult<(u64, u64)> {
    let at = |path: &str| match path.strip_prefix(unit) {
        Some("") => beside.to_owned(),
        Some(rest) => beside.join(rest.trim_start_matches('/')),
        None => unreachable!("entries lie within the unit"),
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries {
        let path = at(&entry.path);
        match &entry.kind {
            EntryKind::Dir { mode } => {
                fs::DirBuilder::new()
                    .mode(0o700)
                    .create(&path)
                    .map_err(|e| AgentError::io(&path, e))?;
                dirs.push((path, *mode));
            }
            EntryKind::Symlink { target } => {
                symlink(target, &path).map_err(|e| AgentError::io(&path, e))?;
            }
            EntryKind::File { .. } => files.push((path, *entry)),
        }
    }
    let bytes = write_files(&files, blobs)?;
    for (path, mode) in dirs.iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(*mode))
            .map_err(|e| AgentError::io(path, e))?;
    }
    Ok((files.len() as u64, bytes))
}

/// Writes each file from its blobs (each checked against its hash as it is read), on all
/// cores; returns the bytes written.
fn write_files(
    files: &[(PathBuf, &Entry)],
    blobs: (&BlobStore, &HashSet<ContentHash>),
) -> AgentResult<u64> {
    let written = on_all_cores(files, |(path, entry)| write_file(path, entry, blobs))?;
    Ok(written.into_iter().sum())
}

/// The blobs that are the whole content of exactly one file restored, and no chunk of
/// another: each may be moved into its file instead of copied.
fn movable_blobs(manifest: &Manifest, units: &[String]) -> HashSet<ContentHash> {
    let mut uses: HashMap<ContentHash, (u32, bool)> = HashMap::new();
    for entry in &manifest.entries {
        if !units.iter().any(|unit| is_within(&entry.path, unit)) {
            continue;
        }
        if let EntryKind::File { hash, chunks, .. } = &entry.kind {
            if chunks.is_empty() {
                uses.entry(*hash).or_default().0 += 1;
            }
            for chunk in chunks {
                uses.entry(chunk.hash).or_default().1 = true;
            }
        }
    }
    uses.into_iter()
        .filter(|(_, (whole, chunk))| *whole == 1 && !chunk)
        .map(|(hash, _)| hash)
        .collect()
}

/// Moves blob `hash` out of the cache to `to`, if this process fetched it (checked then),
/// it is unchanged since and no release shares its inode; false when it must be copied.
fn move_blob(blobs: &BlobStore, hash: &ContentHash, to: &Path) -> bool {
    let from = blobs.path_of(hash);
    match fs::symlink_metadata(&from) {
        Ok(metadata) if metadata.nlink() == 1 && blobs.wrote_as(hash, &metadata) => {
            fs::rename(&from, to).is_ok()
        }
        _ => false,
    }
}

fn write_file(
    path: &Path,
    entry: &Entry,
    (blobs, movable): (&BlobStore, &HashSet<ContentHash>),
) -> AgentResult<u64> {
    let EntryKind::File {
        mode,
        size,
        hash,
        ref chunks,
    } = entry.kind
    else {
        unreachable!("only files are written");
    };
    if chunks.is_empty() && movable.contains(&hash) && move_blob(blobs, &hash, path) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::io(path, e))?;
        return Ok(size);
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AgentError::io(path, e))?;
    let mut written = 0;
    for chunk in entry.blobs() {
        let data = blobs.read(&chunk.hash)?;
        file.write_all(&data).map_err(|e| AgentError::io(path, e))?;
        written += data.len() as u64;
    }
    if written != size {
        return Err(AgentError::corrupt(
            path,
            format!("the backup says {size} bytes, its blobs hold {written}"),
        ));
    }
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(|e| AgentError::io(path, e))?;
    Ok(written)
}
