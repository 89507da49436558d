//! Comparing a directory on disk with the manifest it should hold: the check before a
//! release is switched to (or reused), and the drift report. Shared paths are expected as
//! their symlinks into `shared/`; paths matching `ignore` are the application's business
//! and are skipped. Modes are compared as staging places them (read-only, see
//! [`crate::modes`]).

use std::collections::BTreeSet;
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use ferry_cas::manifest::{Entry, EntryKind, Manifest};

use crate::fsutil::{hash_file, permission_bits};
use crate::modes::placed_mode;
use crate::shared::link_target;
use crate::stat_index::StatIndex;
use ferry_cas::release_config::{is_within, ReleaseConfig};

/// How a release on disk compares with its manifest and its stat index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseCheck {
    /// Paths whose kind, content or mode differ from the manifest, missing, or on disk but
    /// not in the manifest; sorted.
    pub changed: Vec<String>,
    /// Files with the right content whose inode changed since staging (the index does not
    /// vouch for them: written back, touched, `chmod`ed there and back), and files and
    /// directories that only gained write permission; sorted. Nothing served differs, but
    /// they are written again.
    pub untrusted: Vec<String>,
}

impl ReleaseCheck {
    /// Whether the release is exactly its manifest, every file as staged.
    pub fn is_exact(&self) -> bool {
        self.changed.is_empty() && self.untrusted.is_empty()
    }
}

/// What the check found at one path.
enum Finding {
    Changed(String),
    Untrusted(String),
}

/// Compares the release at `dir` with `manifest`: files `index` vouches for are not read
/// again, the others are hashed.
pub fn check_release(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
) -> ReleaseCheck {
    let (mut changed, mut untrusted) = (BTreeSet::new(), BTreeSet::new());
    let _ = visit_findings(dir, manifest, config, index, &mut |finding| {
        match finding {
            Finding::Changed(path) => changed.insert(path),
            Finding::Untrusted(path) => untrusted.insert(path),
        };
        ControlFlow::Continue(())
    });
    ReleaseCheck {
        changed: changed.into_iter().collect(),
        untrusted: untrusted.into_iter().collect(),
    }
}

/// The paths under `dir` whose kind, mode or content differ from `manifest`, including
/// paths missing on disk and paths on disk the manifest does not have; sorted. Every file
/// is read: drift detection trusts no index.
pub fn differences(dir: &Path, manifest: &Manifest, config: &ReleaseConfig) -> Vec<String> {
    check_release(dir, manifest, config, &StatIndex::default()).changed
}

/// Whether [`check_release`] would find the release exact: the same check, stopping at the
/// first finding instead of reading the rest of the tree.
pub fn is_intact(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
) -> bool {
    visit_findings(
        dir,
        manifest,
        config,
        index,
        &mut |_| ControlFlow::Break(()),
    )
    .is_continue()
}

/// Calls `found` with each finding (a path may come twice), until it breaks.
fn visit_findings(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
    found: &mut dyn FnMut(Finding) -> ControlFlow<()>,
) -> ControlFlow<()> {
    for entry in &manifest.entries {
        if config.is_written_by_application(&entry.path) {
            continue;
        }
        match entry_matches(dir, entry, index) {
            Match::Exact => {}
            Match::Untrusted => found(Finding::Untrusted(entry.path.clone()))?,
            Match::Differs => found(Finding::Changed(entry.path.clone()))?,
        }
    }
    for shared in &config.shared {
        let link = fs::read_link(dir.join(shared));
        if link.ok().and_then(|t| t.to_str().map(str::to_owned)) != Some(link_target(shared)) {
            found(Finding::Changed(shared.clone()))?;
        }
    }
    find_extra(dir, "", manifest, config, &mut |path| {
        found(Finding::Changed(path))
    })
}

/// How one entry on disk compares with the manifest.
enum Match {
    Exact,
    /// Right content, but an inode the index does not vouch for, or write permission.
    Untrusted,
    Differs,
}

/// Whether the entry on disk is what the manifest says (for files: hashed again unless the
/// index vouches for them). Only for entries the application does not write, whose mode is
/// placed read-only.
fn entry_matches(dir: &Path, entry: &Entry, index: &StatIndex) -> Match {
    let path = dir.join(&entry.path);
    let Ok(metadata) = fs::symlink_metadata(&path) else {
        return Match::Differs;
    };
    let exact = |same: bool| if same { Match::Exact } else { Match::Differs };
    // Write permission given back (by hand, or to a release staged before releases were
    // read-only) changes nothing served: the entry is rebuilt, not reported.
    let placed = |mode: u32| placed_mode(mode, false);
    let exact_mode = |mode: u32| permission_bits(&metadata) == placed(mode);
    let mode_but_write_bits = |mode: u32| permission_bits(&metadata) & !0o222 == placed(mode);
    match &entry.kind {
        EntryKind::Dir { mode } if metadata.is_dir() && exact_mode(*mode) => Match::Exact,
        EntryKind::Dir { mode } if metadata.is_dir() && mode_but_write_bits(*mode) => {
            Match::Untrusted
        }
        EntryKind::Dir { .. } => Match::Differs,
        EntryKind::Symlink { target } => exact(
            metadata.file_type().is_symlink()
                && fs::read_link(&path).is_ok_and(|t| t.as_os_str() == target.as_str()),
        ),
        EntryKind::File {
            mode, size, hash, ..
        } => {
            if !(metadata.is_file() && mode_but_write_bits(*mode) && metadata.len() == *size) {
                Match::Differs
            } else if exact_mode(*mode) && index.vouches_for(&entry.path, &metadata, hash) {
                Match::Exact
            } else if hash_file(&path).is_ok_and(|h| h == *hash) {
                Match::Untrusted
            } else {
                Match::Differs
            }
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
        let root = &dir.path().join("release");
        fs::create_dir(root).unwrap();
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
        fs::create_dir(root.join("d")).unwrap();
        for (path, content) in [("a", "a"), ("d/b", "b")] {
            write_as(&root.join(path), content, 0o444);
        }
        set_mode(&root.join("d"), 0o555);
        assert!(differences(root, &manifest, &config).is_empty());
        // Without an index nothing is vouched for: intact means exact.
        assert!(!is_intact(root, &manifest, &config, &index));
        assert_eq!(
            check_release(root, &manifest, &config, &index).untrusted,
            ["a", "d/b"]
        );
        let index = vouching(root, &["a", "d/b"]);
        assert!(is_intact(root, &manifest, &config, &index));
        set_mode(&root.join("d"), 0o755);
        write_as(&root.join("d/extra"), "x", 0o444);
        set_mode(&root.join("d"), 0o555);
        write_as(&root.join("a"), "A", 0o444);
        assert_eq!(differences(root, &manifest, &config), ["a", "d/extra"]);
        assert!(!is_intact(root, &manifest, &config, &index));
        write_as(&root.join("a"), "a", 0o444);
        assert!(!is_intact(root, &manifest, &config, &index));
        set_mode(&root.join("d"), 0o755);
        fs::remove_file(root.join("d/extra")).unwrap();
        set_mode(&root.join("d"), 0o555);
        // Written back to the right content: no longer vouched for.
        let check = check_release(root, &manifest, &config, &index);
        assert_eq!(check.untrusted, ["a"]);
        assert!(check.changed.is_empty());
        assert!(!is_intact(root, &manifest, &config, &index));
        assert!(is_intact(
            root,
            &manifest,
            &config,
            &vouching(root, &["a", "d/b"])
        ));
        set_mode(&root.join("d"), 0o755);
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Writes `content` at `path` (made writable first if it exists), then gives it `mode`.
    fn write_as(path: &Path, content: &str, mode: u32) {
        if path.exists() {
            set_mode(path, 0o644);
        }
        fs::write(path, content).unwrap();
        set_mode(path, mode);
    }

    /// An index vouching for the files at `paths` as they are now.
    fn vouching(root: &Path, paths: &[&str]) -> StatIndex {
        StatIndex::from_files(paths.iter().map(|path| {
            let metadata = fs::symlink_metadata(root.join(path)).unwrap();
            let hash = hash_file(&root.join(path)).unwrap();
            (*path, crate::stat_index::FileStat::of(&metadata, hash))
        }))
    }
}
