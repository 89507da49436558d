//! Taking a backup: the backup paths under `shared/` read into a manifest, reading only the
//! files the index does not vouch for, on all cores.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ferry_cas::chunking::{hash_file, FileContent};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Chunk, Entry, EntryKind, Manifest};
use ferry_cas::scan::BlobLocation;

use super::index::{BackupIndex, IndexedFile};
use super::outermost;
use super::parallel::on_all_cores;
use crate::error::{AgentError, AgentResult};
use crate::fsutil::permission_bits;
use crate::stat_index::FileStat;

/// A backup taken on the target, before its blobs are sent.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The backup paths and every directory on the way to them, relative to `shared/`.
    pub manifest: Manifest,
    /// Where each distinct blob of the manifest can be read, in manifest order.
    pub blobs: Vec<(ContentHash, BlobLocation)>,
    /// Backup paths that do not exist (yet): a restore removes them.
    pub absent: Vec<String>,
    /// Sockets, fifos and devices found under the backup paths: not data, left out.
    pub skipped: Vec<String>,
    /// Files read this time; the others were vouched for by the index.
    pub files_read: u64,
}

/// What the walk found at one path.
enum Found {
    Dir { mode: u32 },
    File { metadata: Metadata },
    Symlink { target: String },
}

/// Takes a snapshot of `paths` (backup paths, relative to `shared`), trusting and then
/// replacing the index at `index_path`.
pub fn snapshot(shared: &Path, paths: &[String], index_path: &Path) -> AgentResult<Snapshot> {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    snapshot_at(shared, paths, index_path, now_ns)
}

/// [`snapshot`] as if it started at `started_ns` (wall clock): tests move it ahead, so that
/// files they have just written count as settled.
pub(crate) fn snapshot_at(
    shared: &Path,
    paths: &[String],
    index_path: &Path,
    started_ns: i128,
) -> AgentResult<Snapshot> {
    let mut found: Vec<(String, Found)> = Vec::new();
    let mut absent = Vec::new();
    let mut skipped = Vec::new();
    let mut ancestors_seen = HashSet::new();
    for path in outermost(paths) {
        if !add_ancestors(shared, &path, &mut ancestors_seen, &mut found)? {
            absent.push(path);
            continue;
        }
        let full = shared.join(&path);
        match fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => absent.push(path),
            Err(e) => return Err(AgentError::io(&full, e)),
            Ok(metadata) => visit(shared, path, metadata, &mut found, &mut skipped)?,
        }
    }

    let index = BackupIndex::load(index_path);
    let mut to_read = Vec::new();
    let mut contents: Vec<Option<IndexedFile>> = Vec::with_capacity(found.len());
    for (i, (path, what)) in found.iter().enumerate() {
        let known = match what {
            Found::File { metadata } => {
                let known = index.unchanged(path, metadata).cloned();
                if known.is_none() {
                    to_read.push(i);
                }
                known
            }
            _ => None,
        };
        contents.push(known);
    }
    let files_read = to_read.len() as u64;
    for (i, content) in read_files(shared, &found, &to_read)? {
        contents[i] = Some(content);
    }

    let mut next_index = BackupIndex::default();
    let mut entries = Vec::with_capacity(found.len());
    let mut blobs = Vec::new();
    let mut seen_blobs = HashSet::new();
    for ((path, what), content) in found.into_iter().zip(contents) {
        let kind = match what {
            Found::Dir { mode } => EntryKind::Dir { mode },
            Found::Symlink { target } => EntryKind::Symlink { target },
            Found::File { .. } => {
                let file = content.expect("every file was read or vouched for");
                let full = shared.join(&path);
                let mut offset = 0;
                let pieces = match file.chunks.is_empty() {
                    true => vec![Chunk {
                        hash: file.stat.hash,
                        size: file.stat.size,
                    }],
                    false => file.chunks.clone(),
                };
                for chunk in pieces {
                    if seen_blobs.insert(chunk.hash) {
                        blobs.push((
                            chunk.hash,
                            BlobLocation {
                                path: full.clone(),
                                offset,
                                len: chunk.size,
                            },
                        ));
                    }
                    offset += chunk.size;
                }
                let kind = EntryKind::File {
                    mode: file.stat.mode,
                    size: file.stat.size,
                    hash: file.stat.hash,
                    chunks: file.chunks.clone(),
                };
                next_index.record(path.clone(), file, started_ns);
                kind
            }
        };
        entries.push(Entry { path, kind });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest { entries };
    manifest.validate_data()?;
    next_index.save(index_path);
    Ok(Snapshot {
        manifest,
        blobs,
        absent,
        skipped,
        files_read,
    })
}

/// Adds the directories on the way to `path` (each once); false when one is missing. One
/// that is not a directory (a symlink, say) is refused: the backup would leave `shared/`.
fn add_ancestors(
    shared: &Path,
    path: &str,
    seen: &mut HashSet<String>,
    found: &mut Vec<(String, Found)>,
) -> AgentResult<bool> {
    let mut ancestor = String::new();
    let components: Vec<&str> = path.split('/').collect();
    for component in &components[..components.len() - 1] {
        if !ancestor.is_empty() {
            ancestor.push('/');
        }
        ancestor.push_str(component);
        if seen.contains(&ancestor) {
            continue;
        }
        let full = shared.join(&ancestor);
        let metadata = match fs::symlink_metadata(&full) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(AgentError::io(&full, e)),
            Ok(metadata) => metadata,
        };
        if !metadata.is_dir() {
            return Err(AgentError::Refused(format!(
                "backup path {path:?} lies below {ancestor:?}, which is not a directory in \
                 shared/; back up {ancestor:?} itself, or make it a directory"
            )));
        }
        seen.insert(ancestor.clone());
        found.push((
            ancestor.clone(),
            Found::Dir {
                mode: permission_bits(&metadata),
            },
        ));
    }
    Ok(true)
}

/// Records `path` and, for a directory, everything below it.
fn visit(
    shared: &Path,
    path: String,
    metadata: Metadata,
    found: &mut Vec<(String, Found)>,
    skipped: &mut Vec<String>,
) -> AgentResult<()> {
    let full = shared.join(&path);
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        found.push((
            path.clone(),
            Found::Dir {
                mode: permission_bits(&metadata),
            },
        ));
        let mut children: Vec<(String, Metadata)> = Vec::new();
        for child in fs::read_dir(&full).map_err(|e| AgentError::io(&full, e))? {
            let child = child.map_err(|e| AgentError::io(&full, e))?;
            let name = child.file_name();
            let Some(name) = name.to_str() else {
                return Err(AgentError::Refused(format!(
                    "{path}/{}: the name is not valid UTF-8, which a backup cannot record; \
                     rename it",
                    name.to_string_lossy()
                )));
            };
            let metadata = child
                .metadata()
                .map_err(|e| AgentError::io(&child.path(), e))?;
            children.push((format!("{path}/{name}"), metadata));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (child, metadata) in children {
            visit(shared, child, metadata, found, skipped)?;
        }
    } else if file_type.is_file() {
        found.push((path, Found::File { metadata }));
    } else if file_type.is_symlink() {
        let target = fs::read_link(&full).map_err(|e| AgentError::io(&full, e))?;
        let Some(target) = target.to_str().map(str::to_owned) else {
            return Err(AgentError::Refused(format!(
                "{path}: the symlink's target is not valid UTF-8, which a backup cannot record"
            )));
        };
        found.push((path, Found::Symlink { target }));
    } else if file_type.is_socket()
        || file_type.is_fifo()
        || file_type.is_block_device()
        || file_type.is_char_device()
    {
        skipped.push(path);
    }
    Ok(())
}

/// Reads (hashes and, when large, chunks) the files at `which` indexes of `found`, on all
/// cores.
fn read_files(
    shared: &Path,
    found: &[(String, Found)],
    which: &[usize],
) -> AgentResult<Vec<(usize, IndexedFile)>> {
    on_all_cores(which, |&i| match &found[i] {
        (path, Found::File { metadata }) => Ok((i, read_one(&shared.join(path), metadata)?)),
        _ => unreachable!("only files are read"),
    })
}

/// One file's content address and chunks, with the facts it had when the walk saw it (a
/// change since shows as another change time next time, and the file is read again).
fn read_one(full: &Path, metadata: &Metadata) -> AgentResult<IndexedFile> {
    let FileContent { hash, size, chunks } = hash_file(full)?;
    if size != metadata.len() {
        return Err(AgentError::Refused(format!(
            "{}: the file changed while it was backed up ({} bytes, then {size}); give the \
             application a consistent copy to back up (a `pre_backup` hook), or try again",
            full.display(),
            metadata.len()
        )));
    }
    Ok(IndexedFile {
        stat: FileStat::of(metadata, hash),
        chunks: chunks.into_iter().map(|(chunk, _)| chunk).collect(),
    })
}
