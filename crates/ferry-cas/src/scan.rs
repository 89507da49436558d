//! Reading a directory tree into a manifest, and remembering where each blob's bytes are so
//! only the missing ones need to be read again for upload.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::chunking::{hash_file, FileContent};
use crate::error::{CasError, CasResult};
use crate::hash::ContentHash;
use crate::ingest::Limits;
use crate::manifest::{symlink_stays_inside, Chunk, Entry, EntryKind, Manifest};

/// Where a blob's bytes are on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

/// A scanned tree: its manifest and where each of its blobs can be read.
#[derive(Clone, Debug)]
pub struct ScannedTree {
    pub manifest: Manifest,
    pub locations: HashMap<ContentHash, BlobLocation>,
}

/// What the walk found at one path, before file contents are hashed.
enum Found {
    Dir { mode: u32 },
    File { mode: u32 },
    Symlink { target: String },
}

/// Reads the tree under `root`. Refuses (naming the entry) non-UTF-8 names, symlinks that
/// What a file that is neither a regular file, a directory nor a symlink is, for a refusal:
/// `a fifo`, `a socket` or `a device`.
pub fn special_kind(file_type: &fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a fifo"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

/// leave the tree, devices, fifos and sockets, and trees past `limits`.
pub fn scan_tree(root: &Path, limits: &Limits) -> CasResult<ScannedTree> {
    let metadata = fs::metadata(root).map_err(|e| CasError::io(root, e))?;
    if !metadata.is_dir() {
        return Err(CasError::Source(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let mut found = Vec::new();
    walk(root, root, limits, &mut found)?;
    let contents = hash_files(root, &found)?;
    let mut total_bytes = 0u64;
    let mut entries = Vec::with_capacity(found.len());
    let mut locations = HashMap::new();
    for ((path, what), content) in found.into_iter().zip(contents) {
        let kind = match what {
            Found::Dir { mode } => EntryKind::Dir { mode },
            Found::Symlink { target } => EntryKind::Symlink { target },
            Found::File { mode } => {
                let FileContent { hash, size, chunks } = content.expect("every file was hashed");
                total_bytes += size;
                if total_bytes > limits.max_bytes {
                    return Err(CasError::rejected(
                        &path,
                        format!("the tree is larger than the limit of {} bytes; raise --max-bytes if it is genuine", limits.max_bytes),
                    ));
                }
                let file_path = root.join(&path);
                if chunks.is_empty() {
                    locations.insert(
                        hash,
                        BlobLocation {
                            path: file_path,
                            offset: 0,
                            len: size,
                        },
                    );
                } else {
                    for (chunk, offset) in &chunks {
                        locations.entry(chunk.hash).or_insert_with(|| BlobLocation {
                            path: file_path.clone(),
                            offset: *offset,
                            len: chunk.size,
                        });
                    }
                }
                EntryKind::File {
                    mode,
                    size,
                    hash,
                    chunks: chunks
                        .into_iter()
                        .map(|(chunk, _): (Chunk, u64)| chunk)
                        .collect(),
                }
            }
        };
        entries.push(Entry { path, kind });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = Manifest { entries };
    // Symlink chains are only visible with the whole tree at hand.
    manifest.validate()?;
    Ok(ScannedTree {
        manifest,
        locations,
    })
}

fn walk(
    root: &Path,
    dir: &Path,
    limits: &Limits,
    found: &mut Vec<(String, Found)>,
) -> CasResult<()> {
    let mut children: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(|e| CasError::io(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| CasError::io(dir, e))?;
    children.sort_by_key(|child| child.file_name());
    for child in children {
        let full = child.path();
        let relative = full
            .strip_prefix(root)
            .expect("children are under the root");
        let Some(path) = relative.to_str().map(str::to_owned) else {
            return Err(CasError::rejected(
                relative.to_string_lossy(),
                "the name is not valid UTF-8; rename it",
            ));
        };
        if found.len() as u64 >= limits.max_entries {
            return Err(CasError::rejected(
                &path,
                format!("the tree has more than the limit of {} entries; raise --max-entries if it is genuine", limits.max_entries),
            ));
        }
        let metadata = fs::symlink_metadata(&full).map_err(|e| CasError::io(&full, e))?;
        let file_type = metadata.file_type();
        let mode = metadata.permissions().mode() & 0o7777;
        if file_type.is_dir() {
            found.push((path, Found::Dir { mode }));
            walk(root, &full, limits, found)?;
        } else if file_type.is_file() {
            found.push((path, Found::File { mode }));
        } else if file_type.is_symlink() {
            let target = fs::read_link(&full).map_err(|e| CasError::io(&full, e))?;
            let Some(target) = target.to_str().map(str::to_owned) else {
                return Err(CasError::rejected(
                    &path,
                    "the symlink's target is not valid UTF-8",
                ));
            };
            if !symlink_stays_inside(&path, &target) {
                return Err(CasError::rejected(
                    &path,
                    format!("the symlink points outside the tree ({target:?}); releases must be self-contained"),
                ));
            }
            found.push((path, Found::Symlink { target }));
        } else {
            return Err(CasError::rejected(
                &path,
                format!("{} cannot be part of a release", special_kind(&file_type)),
            ));
        }
    }
    Ok(())
}

/// Hashes every file of `found` on all cores; the result lines up with `found`.
fn hash_files(root: &Path, found: &[(String, Found)]) -> CasResult<Vec<Option<FileContent>>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<FileContent>>> = Mutex::new(vec![None; found.len()]);
    let first_error: Mutex<Option<CasError>> = Mutex::new(None);
    let n_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..n_threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, what)) = found.get(i) else {
                    break;
                };
                if !matches!(what, Found::File { .. }) {
                    continue;
                }
                match hash_file(&root.join(path)) {
                    Ok(content) => results.lock().unwrap()[i] = Some(content),
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match first_error.into_inner().unwrap() {
        Some(error) => Err(error),
        None => Ok(results.into_inner().unwrap()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/run"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(root.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("index.html"), b"<h1>hi</h1>").unwrap();
        fs::write(root.join("copy.html"), b"<h1>hi</h1>").unwrap();
        fs::write(root.join("a-b"), b"").unwrap();
        symlink("bin/run", root.join("start")).unwrap();
        dir
    }

    #[test]
    fn a_tree_becomes_a_sorted_manifest_with_modes_and_links() {
        let dir = tree();
        let scanned = scan_tree(dir.path(), &Limits::default()).unwrap();
        let paths: Vec<&str> = scanned
            .manifest
            .entries
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            paths,
            ["a-b", "bin", "bin/run", "copy.html", "index.html", "start"]
        );
        scanned.manifest.validate().unwrap();
        let run = scanned.manifest.get("bin/run").unwrap();
        assert!(matches!(
            run.kind,
            EntryKind::File {
                mode: 0o755,
                size: 18,
                ..
            }
        ));
        assert_eq!(
            scanned.manifest.get("start").unwrap().kind,
            EntryKind::Symlink {
                target: "bin/run".into()
            }
        );
        assert_eq!(
            scanned.manifest.blobs().len(),
            3,
            "identical files share a blob"
        );
        let html = ContentHash::of(b"<h1>hi</h1>");
        assert_eq!(scanned.locations[&html].len, 11);
    }

    #[test]
    fn refusals_name_the_entry() {
        let check = |prepare: &dyn Fn(&Path), limits: Limits, path: &str, reason: &str| {
            let dir = tree();
            prepare(dir.path());
            let error = scan_tree(dir.path(), &limits).unwrap_err();
            assert!(error.is_bad_input(), "{error}");
            let text = error.to_string();
            assert!(text.starts_with(path) && text.contains(reason), "{text}");
        };
        check(
            &|root| symlink("../../etc/passwd", root.join("bin/evil")).unwrap(),
            Limits::default(),
            "bin/evil",
            "outside the tree",
        );
        check(
            &|root| symlink("/etc/passwd", root.join("abs")).unwrap(),
            Limits::default(),
            "abs",
            "outside the tree",
        );
        check(
            &|root| {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    root.join("pipe"),
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    0,
                )
                .unwrap();
            },
            Limits::default(),
            "pipe",
            "a fifo cannot be part of a release",
        );
        check(
            &|root| {
                use std::os::unix::ffi::OsStrExt;
                fs::write(root.join(std::ffi::OsStr::from_bytes(b"bad\xff")), b"").unwrap();
            },
            Limits::default(),
            "bad",
            "not valid UTF-8",
        );
        check(
            &|_| {},
            Limits {
                max_entries: 3,
                ..Limits::default()
            },
            "",
            "more than the limit of 3 entries",
        );
        check(
            &|_| {},
            Limits {
                max_bytes: 20,
                ..Limits::default()
            },
            "",
            "larger than the limit of 20 bytes",
        );
    }
}
