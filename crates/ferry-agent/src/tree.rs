//! Comparing a directory on disk with the manifest it should hold: the check that decides
//! whether a release on disk can be reused, and the drift report. Shared paths are
//! expected as their symlinks into `shared/`; paths matching `ignore` are the
//! application's business and are skipped.

use std::collections::BTreeSet;
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use ferry_cas::manifest::{Entry, EntryKind, Manifest};

use crate::config::{is_within, ReleaseConfig};
use crate::fsutil::{hash_file, permission_bits};
use crate::shared::link_target;
use crate::stat_index::StatIndex;

/// The paths under `dir` whose kind, mode or content differ from `manifest`, including
/// paths missing on disk and paths on disk the manifest does not have; sorted.
/// Files `index` vouches for are not read again; pass an empty index to hash everything.
pub fn differences(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
) -> Vec<String> {
    let mut found = BTreeSet::new();
    let _ = visit_differences(dir, manifest, config, index, &mut |path| {
        found.insert(path);
        ControlFlow::Continue(())
    });
    found.into_iter().collect()
}

/// Whether `differences` would find none: the same check, stopping at the first
/// difference instead of reading the rest of the tree.
pub fn is_intact(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
) -> bool {
    visit_differences(
        dir,
        manifest,
        config,
        index,
        &mut |_| ControlFlow::Break(()),
    )
    .is_continue()
}

/// Calls `found` with each path that differs (a path may come twice), until it breaks.
fn visit_differences(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
    found: &mut dyn FnMut(String) -> ControlFlow<()>,
) -> ControlFlow<()> {
    for entry in &manifest.entries {
        let skipped = config.is_shared(&entry.path) || config.is_ignored(&entry.path);
        if !skipped && !entry_matches(dir, entry, index) {
            found(entry.path.clone())?;
        }
    }
    for shared in &config.shared {
        let link = fs::read_link(dir.join(shared));
        if link.ok().and_then(|t| t.to_str().map(str::to_owned)) != Some(link_target(shared)) {
            found(shared.clone())?;
        }
    }
    find_extra(dir, "", manifest, config, found)
}

/// Whether the entry on disk is what the manifest says (for files: hashed again unless the
/// index vouches for them).
fn entry_matches(dir: &Path, entry: &Entry, index: &StatIndex) -> bool {
    let path = dir.join(&entry.path);
    let Ok(metadata) = fs::symlink_metadata(&path) else {
        return false;
    };
    match &entry.kind {
        EntryKind::Dir { mode } => metadata.is_dir() && permission_bits(&metadata) == *mode,
        EntryKind::Symlink { target } => {
            metadata.file_type().is_symlink()
                && fs::read_link(&path).is_ok_and(|t| t.as_os_str() == target.as_str())
        }
        EntryKind::File {
            mode, size, hash, ..
        } => {
            metadata.is_file()
                && permission_bits(&metadata) == *mode
                && metadata.len() == *size
                && (index.vouches_for(&entry.path, &metadata, hash)
                    || hash_file(&path).is_ok_and(|h| h == *hash))
        }
    }
}

/// Adds the paths on disk below `relative` that the manifest does not account for.
fn find_extra(
    dir: &Path,
    relative: &str,
    manifest: &Manifest,
    config: &ReleaseConfig,
    found: &mut dyn FnMut(String) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Ok(children) = fs::read_dir(dir.join(relative)) else {
        if !relative.is_empty() {
            found(relative.to_owned())?;
        }
        return ControlFlow::Continue(());
    };
    for child in children.flatten() {
        let Some(name) = child.file_name().to_str().map(str::to_owned) else {
            found(format!(
                "{relative}/{}",
                child.file_name().to_string_lossy()
            ))?;
            continue;
        };
        let path = if relative.is_empty() {
            name
        } else {
            format!("{relative}/{name}")
        };
        if config.is_shared(&path) || config.is_ignored(&path) {
            continue;
        }
        let is_dir = child.file_type().is_ok_and(|t| t.is_dir());
        let in_manifest = manifest.get(&path);
        let holds_shared = config.shared.iter().any(|s| is_within(s, &path));
        match in_manifest {
            Some(Entry {
                kind: EntryKind::Dir { .. },
                ..
            }) if is_dir => find_extra(dir, &path, manifest, config, found)?,
            // A directory made only to hold a shared path's link.
            None if is_dir && holds_shared => find_extra(dir, &path, manifest, config, found)?,
            Some(_) => {} // compared above
            None => found(path)?,
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use ferry_cas::hash::ContentHash;

    use super::*;

    #[test]
    fn is_intact_agrees_with_differences() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = |path: &str, content: &[u8]| Entry {
            path: path.to_owned(),
            kind: EntryKind::File {
                mode: 0o644,
                size: content.len() as u64,
                hash: ContentHash::of(content),
                chunks: Vec::new(),
            },
        };
        let manifest = Manifest {
            entries: vec![
                file("a", b"a"),
                Entry {
                    path: "d".into(),
                    kind: EntryKind::Dir { mode: 0o755 },
                },
                file("d/b", b"b"),
            ],
        };
        let config = ReleaseConfig::default();
        let index = StatIndex::default();
        use std::os::unix::fs::PermissionsExt;
        fs::create_dir(root.join("d")).unwrap();
        fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o755)).unwrap();
        for (path, content) in [("a", "a"), ("d/b", "b")] {
            fs::write(root.join(path), content).unwrap();
            fs::set_permissions(root.join(path), fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert!(differences(root, &manifest, &config, &index).is_empty());
        assert!(is_intact(root, &manifest, &config, &index));
        fs::write(root.join("d/extra"), "x").unwrap();
        fs::write(root.join("a"), "A").unwrap();
        assert_eq!(
            differences(root, &manifest, &config, &index),
            ["a", "d/extra"]
        );
        assert!(!is_intact(root, &manifest, &config, &index));
        fs::write(root.join("a"), "a").unwrap();
        assert!(!is_intact(root, &manifest, &config, &index));
        fs::remove_file(root.join("d/extra")).unwrap();
        assert!(is_intact(root, &manifest, &config, &index));
    }
}
