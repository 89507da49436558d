//! Comparing a directory on disk with the manifest it should hold: the check before a
//! release is switched to (or reused), and the drift check of the release a target serves
//! ([`crate::drift`]). Both come from one walk and one comparison per path, which says how
//! the path differs ([`DriftChange`]). Shared paths are expected as their symlinks into
//! `shared/`; paths matching `ignore` are the application's business and are skipped.
//! Modes are compared as staging places them (read-only, see [`crate::modes`]).
//!
//! Files the stat index vouches for (same inode, size, modification and change times,
//! mode) are not read again; the others are hashed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use ferry_cas::manifest::{Entry, EntryKind, Manifest};
use ferry_domain::drift::DriftChange;

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
    /// Differs from the manifest, as `DriftChange` says.
    Changed(String, DriftChange),
    /// Serves what the manifest says, but is not as staging left it.
    Untrusted(String, Untrusted),
}

/// Why a path that serves the right content is not as staging left it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Untrusted {
    /// A file's inode changed (written back, touched, `chmod`ed there and back): nothing
    /// anyone sees differs, so it is no drift, but the index no longer vouches for it.
    Inode,
    /// Write permission was given to a file or directory the agent placed read-only.
    /// Staging never does that (see [`crate::modes`]), so someone did it by hand: it is
    /// drift (`Mode`), the first step of an edit in production.
    WriteBits,
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
            Finding::Changed(path, _) => changed.insert(path),
            Finding::Untrusted(path, _) => untrusted.insert(path),
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
/// is read (no index is trusted): a full verification, for tests and audits; the periodic
/// drift check is [`drifted`] with the release's stat index.
pub fn differences(dir: &Path, manifest: &Manifest, config: &ReleaseConfig) -> Vec<String> {
    check_release(dir, manifest, config, &StatIndex::default()).changed
}

/// How the tree at `dir` differs from `manifest`, path by path (sorted, each path once,
/// its first finding kept): the drift of a release. Files `index` vouches for are not read;
/// a file whose inode alone changed (right content and mode) is no drift, a file or
/// directory that gained write permission is `Mode` drift.
pub fn drifted(
    dir: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    index: &StatIndex,
) -> Vec<(String, DriftChange)> {
    let mut found = BTreeMap::new();
    let _ = visit_findings(dir, manifest, config, index, &mut |finding| {
        let (path, change) = match finding {
            Finding::Changed(path, change) => (path, change),
            Finding::Untrusted(path, Untrusted::WriteBits) => (path, DriftChange::Mode),
            Finding::Untrusted(_, Untrusted::Inode) => return ControlFlow::Continue(()),
        };
        found.entry(path).or_insert(change);
        ControlFlow::Continue(())
    });
    found.into_iter().collect()
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
            Match::Untrusted(why) => found(Finding::Untrusted(entry.path.clone(), why))?,
            Match::Differs(change) => found(Finding::Changed(entry.path.clone(), change))?,
        }
    }
    // A shared path's link itself is the release's (what lies behind it is not): a link
    // removed, pointed elsewhere or replaced is a change to the release.
    for shared in &config.shared {
        let path = dir.join(shared);
        let change = match fs::symlink_metadata(&path) {
            Err(_) => Some(DriftChange::Deleted),
            Ok(metadata) if !metadata.file_type().is_symlink() => Some(DriftChange::Kind),
            Ok(_) => {
                let link = fs::read_link(&path);
                let target = link.ok().and_then(|t| t.to_str().map(str::to_owned));
                (target != Some(link_target(shared))).then_some(DriftChange::Target)
            }
        };
        if let Some(change) = change {
            found(Finding::Changed(shared.clone(), change))?;
        }
    }
    find_extra(dir, "", manifest, config, &mut |path, change| {
        found(Finding::Changed(path, change))
    })
}

/// How one entry on disk compares with the manifest.
enum Match {
    Exact,
    /// Right content, but not as staging left it.
    Untrusted(Untrusted),
    Differs(DriftChange),
}

/// Whether the entry on disk is what the manifest says (for files: hashed again unless the
/// index vouches for them), and if not, how it differs. Only for entries the application
/// does not write, whose mode is placed read-only.
fn entry_matches(dir: &Path, entry: &Entry, index: &StatIndex) -> Match {
    let path = dir.join(&entry.path);
    let Ok(metadata) = fs::symlink_metadata(&path) else {
        return Match::Differs(DriftChange::Deleted);
    };
    // Write permission given back (by hand, or to a release staged before releases were
    // read-only) changes nothing served: the check before a switch rebuilds the entry;
    // drift reports it as `Mode`.
    let placed = |mode: u32| placed_mode(mode, false);
    let exact_mode = |mode: u32| permission_bits(&metadata) == placed(mode);
    let mode_but_write_bits = |mode: u32| permission_bits(&metadata) & !0o222 == placed(mode);
    match &entry.kind {
        EntryKind::Dir { .. } if !metadata.is_dir() => Match::Differs(DriftChange::Kind),
        EntryKind::Dir { mode } if exact_mode(*mode) => Match::Exact,
        EntryKind::Dir { mode } if mode_but_write_bits(*mode) => {
            Match::Untrusted(Untrusted::WriteBits)
        }
        EntryKind::Dir { .. } => Match::Differs(DriftChange::Mode),
        EntryKind::Symlink { .. } if !metadata.file_type().is_symlink() => {
            Match::Differs(DriftChange::Kind)
        }
        EntryKind::Symlink { target } => {
            if fs::read_link(&path).is_ok_and(|t| t.as_os_str() == target.as_str()) {
                Match::Exact
            } else {
                Match::Differs(DriftChange::Target)
            }
        }
        EntryKind::File { .. } if !metadata.is_file() => Match::Differs(DriftChange::Kind),
        EntryKind::File { size, .. } if metadata.len() != *size => {
            Match::Differs(DriftChange::Content)
        }
        EntryKind::File { mode, hash, .. } => {
            if exact_mode(*mode) && index.vouches_for(&entry.path, &metadata, hash) {
                Match::Exact
            } else if !hash_file(&path).is_ok_and(|h| h == *hash) {
                Match::Differs(DriftChange::Content)
            } else if exact_mode(*mode) {
                Match::Untrusted(Untrusted::Inode)
            } else if mode_but_write_bits(*mode) {
                Match::Untrusted(Untrusted::WriteBits)
            } else {
                Match::Differs(DriftChange::Mode)
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
    found: &mut dyn FnMut(String, DriftChange) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Ok(children) = fs::read_dir(dir.join(relative)) else {
        // A directory that cannot be listed (its mode changed) hides what it holds.
        if !relative.is_empty() {
            found(relative.to_owned(), DriftChange::Mode)?;
        }
        return ControlFlow::Continue(());
    };
    for child in children.flatten() {
        let Some(name) = child.file_name().to_str().map(str::to_owned) else {
            let name = child.file_name().to_string_lossy().into_owned();
            let path = match relative {
                "" => name,
                _ => format!("{relative}/{name}"),
            };
            found(path, DriftChange::Added)?;
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
            None => found(path, DriftChange::Added)?,
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
