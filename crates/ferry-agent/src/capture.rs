//! Capture: hand edits on a target become a release. Someone changed files under
//! `current` (the drift check tells which); instead of reverting them, the team keeps them
//! as a hotfix of the running release. The agent reads the tree as it is, the server makes
//! the release from it, and the target then serves that release without a byte being
//! written: its files are already there.
//!
//! In two steps, under the application's lock for the whole of it (a deploy, rollback,
//! cleanup or drift check waits, or skips the application):
//!
//! 1. [`Capture::scan`]: the release served (`current`) is read into a manifest. Paths the
//!    published `ferry.toml` shares or ignores are the application's data, not its code,
//!    exactly as for drift: their entries stay as published (and a shared path's link must
//!    be the one staging made). A file the stat index vouches for keeps its entry without
//!    being read; any other file is hashed. The manifest must pass the same validation as
//!    any release's (a symlink leaving the tree, a fifo, a device or a socket refuse the
//!    capture, naming the path), and the blobs the running release does not hold are listed
//!    with where they can be read, for the upload.
//! 2. [`Capture::finish`], once the server made the release: `releases/VERSION` is built by
//!    hard-linking every file of the running tree (the same inodes: nothing rewritten,
//!    nothing copied but the application's own ignored data, which is always a copy), with
//!    its stat index, synced and renamed into place like a staged release, and `current`
//!    switched to it atomically; the journal records it as a success. No hook runs and no
//!    health check: what is served did not change, only the name of the release it is.
//!
//! Modes: release files are placed without write bits ([`crate::modes`]), and editing one
//! starts with `chmod u+w`. A path that only gained write bits keeps its published mode in
//! the captured manifest; any other mode change is captured as it is. Either way the
//! captured release is placed read-only again, so the target shows no drift afterwards.
//!
//! Configuration files ferry rendered into the running directory (`releases/VERSION@N`,
//! see [`crate::config_files`]) are not content of a release: they are left out of the
//! captured manifest and never uploaded, and the captured release's directory keeps the
//! revision served (`releases/NEW@N`, the rendered files linked). An edited rendered file
//! refuses the capture: its content comes from the environment's configuration.
//!
//! The release that ran before keeps sharing the edited inodes: it is drifted now, and a
//! rollback to it repairs it before the switch ([`crate::deploy::rollback`]), never writing
//! through a link.

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use ferry_cas::chunking::{hash_file, FileContent};
use ferry_cas::diff::{diff, TreeDiff};
use ferry_cas::hash::ContentHash;
use ferry_cas::manifest::{Entry, EntryKind, Manifest};
use ferry_cas::release_config::{is_within, ReleaseConfig, CONFIG_FILE};
use ferry_cas::scan::BlobLocation;

use crate::cleanup::remove_leftovers;
use crate::config_files::RenderedFiles;
use crate::error::{AgentError, AgentResult};
use crate::fsutil::{fsync_dir, permission_bits, sync_filesystem};
use crate::journal::{now, Journal};
use crate::layout::{check_version, AppLayout, Installed};
use crate::link_changes::{remove_tree_keeping_indexes, LinkChanges};
use crate::lock::AppLock;
use crate::modes::placed_mode;
use crate::shared::{link_shared_paths, link_target};
use crate::stage::apply_dir_modes;
use crate::stat_index::{FileStat, StatIndex};
use crate::switch::switch_to;

/// A capture under way: the running release read into a manifest, the application locked
/// until it is finished or dropped.
#[derive(Debug)]
pub struct Capture {
    layout: AppLayout,
    _lock: AppLock,
    running: Installed,
    config: ReleaseConfig,
    /// The captured release: what is submitted.
    manifest: Manifest,
    /// The captured directory: the release and the configuration files rendered into the
    /// running directory.
    tree: Manifest,
    /// Every file taken from the tree (not the application's data), as it looked when read.
    files: Vec<(String, FileStat)>,
    /// The application's data found in the tree (ignored paths, the topmost of each
    /// subtree): copied into the captured release as it is.
    app_data: Vec<String>,
    blobs: Vec<(ContentHash, BlobLocation)>,
    changes: TreeDiff,
}

/// What [`Capture::finish`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptureReport {
    /// Files hard-linked from the running tree into the captured release.
    pub files_linked: u64,
    /// Files of the application's own data (ignored paths) copied.
    pub files_copied: u64,
}

impl Capture {
    /// Reads the release directory `app` serves on this target (`place`: its name and its
    /// environment), which must be `running` (whose manifest is `published`, `ferry.toml` as
    /// published is `config`, see [`crate::drift::release_config`], and configuration files
    /// rendered from the environment's configuration are `rendered`), into the manifest of a
    /// release made of it. Waits for
    /// the application's lock and keeps it. Refused, with the reason, when the tree cannot
    /// be a release, serves `running` exactly, or a rendered file was changed.
    pub fn scan(
        root: &Path,
        app: &str,
        (target, env): (&str, &str),
        running: &Installed,
        published: &Manifest,
        config: &ReleaseConfig,
        rendered: &RenderedFiles,
    ) -> AgentResult<Capture> {
        let layout = AppLayout::new(root, app)?;
        running.check()?;
        let lock = AppLock::acquire(root, app)?;
        match layout.current() {
            Some(serving) if serving == *running => {}
            Some(serving) => {
                return Err(AgentError::Refused(format!(
                    "{app} serves {serving} on this target, not {running}: capture what it serves"
                )))
            }
            None => {
                return Err(AgentError::Refused(format!(
                    "{app} serves no release on this target: there is nothing to capture"
                )))
            }
        }
        published.validate()?;
        let dir = layout.release_dir(running);
        check_shared_links(&dir, config)?;
        let index = StatIndex::load(&layout, running);
        let served = rendered.add_to(published);
        let mut scan = Scan {
            dir: &dir,
            published: &served,
            config,
            index: &index,
            entries: Vec::new(),
            files: Vec::new(),
            app_data: Vec::new(),
            locations: Vec::new(),
        };
        scan.walk("")?;
        let Scan {
            mut entries,
            files,
            app_data,
            locations,
            ..
        } = scan;
        // The application's data stays as published.
        entries.extend(
            published
                .entries
                .iter()
                .filter(|entry| is_application_data(config, &entry.path))
                .cloned(),
        );
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let tree = Manifest { entries };
        // The rendered files are the configuration's: one changed is no hotfix.
        let rendered_paths = served.entries.iter().map(|entry| entry.path.as_str());
        if let Some(edited) = rendered_paths
            .filter(|path| rendered.contains(path))
            .find(|path| served.get(path) != tree.get(path))
        {
            let version = &running.version;
            return Err(AgentError::Refused(format!(
                "{edited} is written by ferry from the configuration of {env}, and was changed on this target: undo the edit with `ferry drift revert {target} {app}`, and change a value with `ferry config set {app} --env {env} KEY=VALUE` then `ferry config apply {app} --env {env}`, not on the target (release {version} was not captured)"
            )));
        }
        let manifest = Manifest {
            entries: tree
                .entries
                .iter()
                .filter(|entry| !rendered.contains(&entry.path))
                .cloned()
                .collect(),
        };
        manifest.validate().map_err(|error| {
            AgentError::Refused(format!(
                "the tree of {app} {running} on this target cannot be a release: {error}; change it on the target and capture again"
            ))
        })?;
        check_config_layout(&dir, &manifest, config)?;
        let changes = diff(published, &manifest);
        if changes.added.is_empty() && changes.removed.is_empty() && changes.modified.is_empty() {
            return Err(AgentError::Refused(format!(
                "{app} serves {running} on this target exactly as released (apart, maybe, from write permission given): there is nothing to capture"
            )));
        }
        let published_blobs: HashSet<ContentHash> =
            published.blobs().iter().map(|chunk| chunk.hash).collect();
        let mut seen = HashSet::new();
        let is_rendered = |location: &BlobLocation| {
            location
                .path
                .strip_prefix(&dir)
                .ok()
                .and_then(Path::to_str)
                .is_some_and(|path| rendered.contains(path))
        };
        let blobs = locations
            .into_iter()
            .filter(|(hash, location)| {
                !published_blobs.contains(hash) && !is_rendered(location) && seen.insert(*hash)
            })
            .collect();
        Ok(Capture {
            layout,
            _lock: lock,
            running: running.clone(),
            config: config.clone(),
            manifest,
            tree,
            files,
            app_data,
            blobs,
            changes,
        })
    }

    /// The release directory the capture is made from.
    pub fn running(&self) -> &Installed {
        &self.running
    }

    /// The captured release's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The content the running release does not hold, with where to read it: what to
    /// upload (the server may have some of it already).
    pub fn blobs(&self) -> &[(ContentHash, BlobLocation)] {
        &self.blobs
    }

    /// How the captured release differs from the running one.
    pub fn changes(&self) -> &TreeDiff {
        &self.changes
    }

    /// Builds `releases/VERSION` (`VERSION@N` when the running directory has configuration
    /// revision N) from the running tree's own files and switches `current` to it. Refused
    /// (nothing switched, the work directory removed) when the release is on disk already,
    /// or a file changed since [`Capture::scan`] read it.
    pub fn finish(self, version: &str) -> AgentResult<CaptureReport> {
        check_version(version)?;
        let version = &Installed::new(version, self.running.config);
        let layout = &self.layout;
        if layout.has_release(version) {
            return Err(AgentError::Refused(format!(
                "release {version} of {} is on this target already: capture under another version",
                layout.app()
            )));
        }
        remove_leftovers(layout)?;
        let partial = layout.partial_dir(version);
        fs::create_dir(&partial).map_err(|e| AgentError::io(&partial, e))?;
        let changes = LinkChanges::default();
        let built = self.build(&partial, &changes);
        changes.apply_to_releases(layout);
        let (report, index) = match built {
            Ok(built) => built,
            Err(error) => {
                remove_tree_keeping_indexes(layout, &partial, || {})?;
                return Err(error);
            }
        };
        let releases = layout.releases_dir();
        StatIndex::forget(layout, version);
        fs::rename(&partial, layout.release_dir(version))
            .map_err(|e| AgentError::io(&layout.release_dir(version), e))?;
        fsync_dir(&releases)?;
        index.save(layout, version);
        switch_to(layout, version)?;
        let mut journal = Journal::load(layout.root(), layout.app())?;
        journal.record_success(version, now());
        journal.save(layout.root(), layout.app())?;
        Ok(report)
    }

    /// Fills `partial` with the captured release, read-only and synced; returns what it did
    /// and the stat index of the tree.
    fn build(
        &self,
        partial: &Path,
        changes: &LinkChanges,
    ) -> AgentResult<(CaptureReport, StatIndex)> {
        let running = self.layout.release_dir(&self.running);
        let mut report = CaptureReport::default();
        let scanned: std::collections::HashMap<&str, &FileStat> = self
            .files
            .iter()
            .map(|(path, stat)| (path.as_str(), stat))
            .collect();
        for entry in &self.tree.entries {
            if is_application_data(&self.config, &entry.path) {
                continue;
            }
            let dest = partial.join(&entry.path);
            match &entry.kind {
                EntryKind::Dir { .. } => {
                    fs::create_dir(&dest).map_err(|e| AgentError::io(&dest, e))?
                }
                EntryKind::Symlink { target } => {
                    symlink(target, &dest).map_err(|e| AgentError::io(&dest, e))?
                }
                EntryKind::File { mode, .. } => {
                    let source = running.join(&entry.path);
                    let read = scanned.get(entry.path.as_str()).expect(
                        "every file of the manifest outside the application's data was read",
                    );
                    let before = self.unchanged_since_read(&source, &entry.path, read, changes)?;
                    // Write permission given to edit goes: the release is read-only.
                    let placed = placed_mode(*mode, false);
                    let before = if before.mode != placed {
                        fs::set_permissions(&source, fs::Permissions::from_mode(placed))
                            .map_err(|e| AgentError::io(&source, e))?;
                        // Followed like a link, so another name of the inode is known.
                        let after = stat_of(&source, before.hash)?;
                        changes.record(&before, &after);
                        after
                    } else {
                        before
                    };
                    fs::hard_link(&source, &dest).map_err(|e| AgentError::io(&dest, e))?;
                    changes.record(&before, &stat_of(&dest, before.hash)?);
                    report.files_linked += 1;
                }
            }
        }
        for path in &self.app_data {
            report.files_copied += copy_tree(&running.join(path), &partial.join(path))?;
        }
        link_shared_paths(partial, &self.config)?;
        // Every directory loses its write permission, as staging leaves it; the
        // application's data keeps the modes it has.
        let config = &self.config;
        apply_dir_modes(partial, &self.manifest, config, |path, mode| {
            (!is_application_data(config, path)).then(|| placed_mode(mode, false))
        })?;
        sync_filesystem(partial)?;
        let index = StatIndex::from_files(
            self.tree
                .entries
                .iter()
                .filter(|entry| !is_application_data(&self.config, &entry.path))
                .filter_map(|entry| match &entry.kind {
                    EntryKind::File { hash, .. } => Some((entry.path.as_str(), *hash)),
                    _ => None,
                })
                .map(|(path, hash)| stat_of(&partial.join(path), hash).map(|stat| (path, stat)))
                .collect::<AgentResult<Vec<_>>>()?,
        );
        Ok((report, index))
    }

    /// The file at `source` as it is now, if it is as [`Capture::scan`] read it (or as the
    /// agent's own links since left it); refused otherwise, since the release was made of
    /// what was read.
    fn unchanged_since_read(
        &self,
        source: &Path,
        path: &str,
        read: &FileStat,
        changes: &LinkChanges,
    ) -> AgentResult<FileStat> {
        let now = fs::symlink_metadata(source).map_err(|e| AgentError::io(source, e))?;
        if now.is_file() && changes.expected(read).describes(&now) {
            return Ok(FileStat::of(&now, read.hash));
        }
        Err(AgentError::Refused(format!(
            "{path} changed on this target while it was being captured: the release holds what was read before; revert or release that change too once edits have stopped"
        )))
    }
}

/// Whether `path` is the application's data, kept as published: shared, ignored, or below
/// an ignored path (the drift check does not look inside one).
fn is_application_data(config: &ReleaseConfig, path: &str) -> bool {
    config.is_written_by_application(path) || ancestors(path).any(|a| config.is_ignored(a))
}

/// The proper ancestors of `path`, nearest first.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/')
        .rev()
        .map(move |(at, _)| &path[..at])
}

/// The walk of the running tree.
struct Scan<'a> {
    dir: &'a Path,
    published: &'a Manifest,
    config: &'a ReleaseConfig,
    index: &'a StatIndex,
    entries: Vec<Entry>,
    files: Vec<(String, FileStat)>,
    app_data: Vec<String>,
    locations: Vec<(ContentHash, BlobLocation)>,
}

impl Scan<'_> {
    /// Reads the directory `relative` of the tree ("" for its root).
    fn walk(&mut self, relative: &str) -> AgentResult<()> {
        let dir = self.dir.join(relative);
        let mut children: Vec<String> = Vec::new();
        for child in fs::read_dir(&dir).map_err(|e| AgentError::io(&dir, e))? {
            let child = child.map_err(|e| AgentError::io(&dir, e))?;
            let Some(name) = child.file_name().to_str().map(str::to_owned) else {
                return Err(refused(
                    &join(relative, &child.file_name().to_string_lossy()),
                    "its name is not valid UTF-8: rename it",
                ));
            };
            children.push(name);
        }
        children.sort();
        for name in children {
            let path = join(relative, &name);
            if self.config.is_shared(&path) {
                continue; // its link was checked, its content is the application's
            }
            if self.config.is_ignored(&path) {
                self.app_data.push(path);
                continue;
            }
            let full = self.dir.join(&path);
            let metadata = fs::symlink_metadata(&full).map_err(|e| AgentError::io(&full, e))?;
            let file_type = metadata.file_type();
            let published = self.published.get(&path).map(|entry| &entry.kind);
            if file_type.is_dir() {
                let holds_shared = self.config.shared.iter().any(|s| is_within(s, &path));
                if published.is_some() || !holds_shared {
                    let mode = captured_mode(&metadata, published);
                    self.entries.push(Entry {
                        path: path.clone(),
                        kind: EntryKind::Dir { mode },
                    });
                }
                self.walk(&path)?;
            } else if file_type.is_symlink() {
                let target = fs::read_link(&full).map_err(|e| AgentError::io(&full, e))?;
                let Some(target) = target.to_str().map(str::to_owned) else {
                    return Err(refused(&path, "the symlink's target is not valid UTF-8"));
                };
                self.entries.push(Entry {
                    path,
                    kind: EntryKind::Symlink { target },
                });
            } else if file_type.is_file() {
                self.file(path, &full, &metadata, published)?;
            } else {
                let what = ferry_cas::scan::special_kind(&file_type);
                return Err(refused(
                    &path,
                    &format!("it is {what}, which cannot be part of a release: remove it"),
                ));
            }
        }
        Ok(())
    }

    /// Reads one file: its published entry when the stat index vouches for it, else its
    /// content hashed.
    fn file(
        &mut self,
        path: String,
        full: &Path,
        metadata: &Metadata,
        published: Option<&EntryKind>,
    ) -> AgentResult<()> {
        let mode = captured_mode(metadata, published);
        let vouched = match published {
            Some(EntryKind::File {
                size, hash, chunks, ..
            }) if self.index.vouches_for(&path, metadata, hash) => {
                Some((*size, *hash, chunks.clone()))
            }
            _ => None,
        };
        let (size, hash, chunks) = match vouched {
            Some(vouched) => vouched,
            None => {
                let FileContent { hash, size, chunks } = hash_file(full)?;
                let after = fs::symlink_metadata(full).map_err(|e| AgentError::io(full, e))?;
                if !FileStat::of(metadata, hash).describes(&after) {
                    return Err(refused(
                        &path,
                        "it changed while it was being read: capture again once edits have stopped",
                    ));
                }
                if chunks.is_empty() {
                    self.locations.push((
                        hash,
                        BlobLocation {
                            path: full.to_owned(),
                            offset: 0,
                            len: size,
                        },
                    ));
                }
                for (chunk, offset) in &chunks {
                    self.locations.push((
                        chunk.hash,
                        BlobLocation {
                            path: full.to_owned(),
                            offset: *offset,
                            len: chunk.size,
                        },
                    ));
                }
                (
                    size,
                    hash,
                    chunks.into_iter().map(|(chunk, _)| chunk).collect(),
                )
            }
        };
        self.files
            .push((path.clone(), FileStat::of(metadata, hash)));
        self.entries.push(Entry {
            path,
            kind: EntryKind::File {
                mode,
                size,
                hash,
                chunks,
            },
        });
        Ok(())
    }
}

/// The mode the manifest records for a path found with `metadata`: the published mode
/// when the path differs from it at most by write bits given (placed modes have none),
/// else the mode found.
fn captured_mode(metadata: &Metadata, published: Option<&EntryKind>) -> u32 {
    let found = permission_bits(metadata);
    match published {
        Some(EntryKind::File { mode, .. } | EntryKind::Dir { mode })
            if found & !0o222 == placed_mode(*mode, false) =>
        {
            *mode
        }
        _ => found,
    }
}

fn join(relative: &str, name: &str) -> String {
    match relative {
        "" => name.to_owned(),
        _ => format!("{relative}/{name}"),
    }
}

fn refused(path: &str, reason: &str) -> AgentError {
    AgentError::Refused(format!("cannot capture {path}: {reason}"))
}

/// Refuses a tree whose shared paths are not the links staging made: what lies behind them
/// is the application's, but the link itself is the release's.
fn check_shared_links(dir: &Path, config: &ReleaseConfig) -> AgentResult<()> {
    for shared in &config.shared {
        let link = fs::read_link(dir.join(shared)).ok();
        if link.as_deref().and_then(Path::to_str) != Some(link_target(shared).as_str()) {
            return Err(refused(
                shared,
                &format!(
                    "the shared path is no longer the link into shared/ that ferry made (it should be a symlink to {}): put it back, then capture again",
                    link_target(shared)
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses an edited `ferry.toml` that the server would refuse, or that moves what is
/// shared or ignored: the captured tree is laid out by the published one.
fn check_config_layout(
    dir: &Path,
    manifest: &Manifest,
    published: &ReleaseConfig,
) -> AgentResult<()> {
    let Some(entry) = manifest.get(CONFIG_FILE) else {
        return match published.shared.is_empty() && published.ignore.is_empty() {
            true => Ok(()),
            false => Err(refused(
                CONFIG_FILE,
                "it was removed, and with it the release's shared and ignored paths: put it back, then capture again",
            )),
        };
    };
    if !matches!(entry.kind, EntryKind::File { .. }) {
        return Err(refused(CONFIG_FILE, "ferry.toml must be a regular file"));
    }
    let data = fs::read(dir.join(CONFIG_FILE)).map_err(|e| AgentError::io(dir, e))?;
    let edited = ReleaseConfig::parse_bytes(&data)
        .map_err(|error| refused(CONFIG_FILE, &format!("{error}; fix it on the target")))?;
    if edited.shared != published.shared || edited.ignore != published.ignore {
        return Err(refused(
            CONFIG_FILE,
            "its shared or ignore list was edited: a capture keeps the running release's layout; put them back, and release that change from its source",
        ));
    }
    Ok(())
}

/// Copies the application's data at `from` (a file, symlink or directory tree) to `to`,
/// modes kept; returns the files copied.
fn copy_tree(from: &Path, to: &Path) -> AgentResult<u64> {
    let metadata = fs::symlink_metadata(from).map_err(|e| AgentError::io(from, e))?;
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        let target = fs::read_link(from).map_err(|e| AgentError::io(from, e))?;
        symlink(target, to).map_err(|e| AgentError::io(to, e))?;
        return Ok(0);
    }
    if file_type.is_file() {
        fs::copy(from, to).map_err(|e| AgentError::io(to, e))?;
        return Ok(1);
    }
    if !file_type.is_dir() {
        return Ok(0); // a fifo or socket of the application's: not carried over
    }
    fs::create_dir(to).map_err(|e| AgentError::io(to, e))?;
    let mut copied = 0;
    let children: Vec<PathBuf> = fs::read_dir(from)
        .map_err(|e| AgentError::io(from, e))?
        .map(|child| child.map(|c| c.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| AgentError::io(from, e))?;
    for child in children {
        let name = child
            .file_name()
            .expect("a directory's children have names");
        copied += copy_tree(&child, &to.join(name))?;
    }
    fs::set_permissions(to, metadata.permissions()).map_err(|e| AgentError::io(to, e))?;
    Ok(copied)
}

/// The facts of the file at `path`, whose content has hash `hash`.
fn stat_of(path: &Path, hash: ContentHash) -> AgentResult<FileStat> {
    let metadata = fs::symlink_metadata(path).map_err(|e| AgentError::io(path, e))?;
    Ok(FileStat::of(&metadata, hash))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    use ferry_cas::blobs::BlobStore;
    use ferry_cas::ingest::Limits;
    use ferry_cas::scan::scan_tree;

    use super::*;
    use crate::config_files::ConfigValues;
    use crate::deploy::{deploy, rollback, verify_release, DeployOutcome, DeployRequest};
    use crate::layout::cache_dir;
    use crate::tree::drifted;

    const CONFIG: &str = "shared = [\"data\"]\nignore = [\"cache/**\"]\n";

    /// A target with release 1.0 of `shop` deployed from a small tree: a script, a
    /// directory of two files, a file at the root, a shared path and an ignored one.
    struct Target {
        root: tempfile::TempDir,
        cache: BlobStore,
        manifest: Manifest,
        config: ReleaseConfig,
        /// The content of 1.0, by hash.
        blobs: Vec<(ContentHash, Vec<u8>)>,
    }

    impl Target {
        fn new() -> Target {
            let root = tempfile::tempdir().unwrap();
            let source = root.path().join("source");
            for (path, content, mode) in [
                ("ferry.toml", CONFIG, 0o644),
                ("app.sh", "#!/bin/sh\necho shop\n", 0o755),
                ("conf/a.txt", "a=1\n", 0o644),
                ("conf/b.txt", "b=2\n", 0o644),
                ("keep.txt", "kept\n", 0o644),
                ("data/seed", "seed\n", 0o644),
                ("cache/x", "cached\n", 0o644),
            ] {
                let path = source.join(path);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, content).unwrap();
                set_mode(&path, mode);
            }
            let scanned = scan_tree(&source, &Limits::default()).unwrap();
            let cache = BlobStore::open(&cache_dir(root.path())).unwrap();
            let blobs: Vec<(ContentHash, Vec<u8>)> = scanned
                .locations
                .iter()
                .map(|(hash, at)| (*hash, fs::read(&at.path).unwrap()))
                .collect();
            let target = Target {
                root,
                cache,
                manifest: scanned.manifest,
                config: ReleaseConfig::parse(CONFIG).unwrap(),
                blobs,
            };
            target.refill_cache();
            let outcome = deploy(
                target.root(),
                &target.request("1.0", &target.manifest),
                &target.cache,
                &mut |_| {},
            );
            assert!(
                matches!(outcome, DeployOutcome::Succeeded { .. }),
                "{outcome:?}"
            );
            target
        }

        fn root(&self) -> &Path {
            self.root.path()
        }

        fn layout(&self) -> AppLayout {
            AppLayout::new(self.root(), "shop").unwrap()
        }

        fn request(&self, version: &str, manifest: &Manifest) -> DeployRequest {
            DeployRequest {
                app: "shop".into(),
                env: "prd".into(),
                version: version.into(),
                manifest: manifest.clone(),
                config: ConfigValues::none(),
                commands_as: Ok(None),
            }
        }

        fn config(&self) -> ReleaseConfig {
            self.config.clone()
        }

        /// Puts 1.0's content in the cache again: staging links files to the cache's
        /// blobs, so an edit in place changes them too (the agent then fetches them again).
        fn refill_cache(&self) {
            for (hash, _) in &self.blobs {
                self.cache.remove(hash).unwrap();
            }
            let blobs: Vec<(ContentHash, &[u8])> =
                self.blobs.iter().map(|(h, b)| (*h, b.as_slice())).collect();
            self.cache.put_batch(&blobs).unwrap();
        }

        fn current(&self) -> PathBuf {
            self.layout().current_link()
        }

        /// Edits `path` under `current` as a person with a shell does: write permission on
        /// its directory and itself first, and left there.
        fn edit(&self, path: &str, content: &str) {
            let full = self.current().join(path);
            set_mode(full.parent().unwrap(), 0o755);
            if full.exists() {
                set_mode(&full, 0o644);
            }
            fs::write(full, content).unwrap();
        }

        fn capture(&self) -> AgentResult<Capture> {
            Capture::scan(
                self.root(),
                "shop",
                ("prd-1", "prd"),
                &v("1.0"),
                &self.manifest,
                &self.config(),
                &RenderedFiles::default(),
            )
        }
    }

    fn v(name: &str) -> Installed {
        Installed::parse(name).unwrap()
    }

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The inode of every file under `dir` (not following symlinks), by path.
    fn inodes(dir: &Path) -> BTreeMap<String, u64> {
        fn visit(dir: &Path, relative: &str, out: &mut BTreeMap<String, u64>) {
            for child in fs::read_dir(dir).unwrap().flatten() {
                let path = join(relative, child.file_name().to_str().unwrap());
                let metadata = fs::symlink_metadata(child.path()).unwrap();
                if metadata.is_dir() {
                    visit(&child.path(), &path, out);
                } else if metadata.is_file() {
                    out.insert(path, metadata.ino());
                }
            }
        }
        let mut out = BTreeMap::new();
        visit(&fs::canonicalize(dir).unwrap(), "", &mut out);
        out
    }

    #[test]
    fn a_capture_is_the_tree_as_edited_served_from_the_same_inodes() {
        let target = Target::new();
        let layout = target.layout();
        target.edit("conf/a.txt", "a=2\n");
        target.edit("conf/new.txt", "new\n");
        set_mode(&target.current(), 0o755);
        fs::remove_file(target.current().join("keep.txt")).unwrap();
        set_mode(&target.current().join("conf/b.txt"), 0o555);
        target.edit("cache/y", "the application's\n");
        let before = inodes(&target.current());

        let capture = target.capture().unwrap();
        // Only the content 1.0 does not hold is to upload.
        let uploads: Vec<ContentHash> = capture.blobs().iter().map(|(hash, _)| *hash).collect();
        let expected = [ContentHash::of(b"a=2\n"), ContentHash::of(b"new\n")];
        assert_eq!(uploads.len(), 2, "{uploads:?}");
        assert!(expected.iter().all(|hash| uploads.contains(hash)));
        for (hash, at) in capture.blobs() {
            assert_eq!(ContentHash::of(&fs::read(&at.path).unwrap()), *hash);
        }
        let changes = capture.changes();
        let paths = |list: Vec<&str>| list.into_iter().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            changes
                .added
                .iter()
                .map(|p| p.path.clone())
                .collect::<Vec<_>>(),
            paths(vec!["conf/new.txt"])
        );
        assert_eq!(
            changes
                .removed
                .iter()
                .map(|p| p.path.clone())
                .collect::<Vec<_>>(),
            paths(vec!["keep.txt"])
        );
        let modified: Vec<(String, &str)> = changes
            .modified
            .iter()
            .map(|m| (m.path.clone(), m.change))
            .collect();
        assert_eq!(
            modified,
            [
                ("conf/a.txt".to_owned(), "content"),
                ("conf/b.txt".to_owned(), "mode")
            ]
        );
        let manifest = capture.manifest().clone();
        // Write permission given to edit is not captured; the executable bit is.
        let mode_of = |path: &str| match manifest.get(path).map(|e| &e.kind) {
            Some(EntryKind::File { mode, .. } | EntryKind::Dir { mode }) => *mode,
            other => panic!("{path}: {other:?}"),
        };
        assert_eq!(mode_of("conf/a.txt"), 0o644);
        assert_eq!(mode_of("conf"), 0o755);
        assert_eq!(mode_of("conf/b.txt"), 0o555);
        // The shared path and the ignored data stay as released.
        assert_eq!(manifest.get("data/seed"), target.manifest.get("data/seed"));
        assert_eq!(manifest.get("cache/x"), target.manifest.get("cache/x"));
        assert!(manifest.get("cache/y").is_none());

        let report = capture.finish("1.0-captured.1").unwrap();
        assert_eq!(layout.current_version().as_deref(), Some("1.0-captured.1"));
        // Every file is the one that was there: the same inode. The application's
        // ignored data is a copy, as staging always makes it.
        let after = inodes(&target.current());
        let not_data = |inodes: &BTreeMap<String, u64>| -> BTreeMap<String, u64> {
            inodes
                .iter()
                .filter(|(path, _)| !path.starts_with("cache/"))
                .map(|(p, i)| (p.clone(), *i))
                .collect()
        };
        assert_eq!(not_data(&after), not_data(&before));
        assert_eq!(report.files_linked, not_data(&before).len() as u64);
        assert_eq!(report.files_copied, 2);
        assert_eq!(
            fs::read_to_string(target.current().join("cache/y")).unwrap(),
            "the application's\n"
        );
        // The captured release is exactly its manifest, read-only, and the stat index
        // vouches for every file: no drift.
        assert!(verify_release(target.root(), "shop", &v("1.0-captured.1"), &manifest).is_empty());
        let index = StatIndex::load(&layout, &v("1.0-captured.1"));
        let dir = layout.release_dir(&v("1.0-captured.1"));
        assert_eq!(drifted(&dir, &manifest, &target.config(), &index), []);
        assert!(crate::tree::is_intact(
            &dir,
            &manifest,
            &target.config(),
            &index
        ));
        assert!(crate::deploy::serves_completed(
            target.root(),
            "shop",
            &v("1.0-captured.1")
        ));
        // The server then asks the target to run it: there is nothing to do, and nothing is
        // written (no staging, no hooks).
        let outcome = crate::deploy::converge(
            target.root(),
            &target.request("1.0-captured.1", &manifest),
            &target.cache,
            &mut |_| {},
        );
        match outcome {
            DeployOutcome::Succeeded { report } => assert!(report.reused, "{report:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(not_data(&inodes(&target.current())), not_data(&before));

        // 1.0 shares the edited inodes: it is drifted, and a rollback repairs it first,
        // without writing through a link into the captured release.
        assert!(!verify_release(target.root(), "shop", &v("1.0"), &target.manifest).is_empty());
        target.refill_cache();
        let repaired = rollback(
            target.root(),
            &target.request("1.0", &target.manifest),
            &target.cache,
        )
        .unwrap();
        assert!(
            repaired.repaired.contains(&"conf/a.txt".to_owned()),
            "{repaired:?}"
        );
        assert_eq!(layout.current_version().as_deref(), Some("1.0"));
        assert!(verify_release(target.root(), "shop", &v("1.0"), &target.manifest).is_empty());
        assert!(verify_release(target.root(), "shop", &v("1.0-captured.1"), &manifest).is_empty());
    }

    #[test]
    fn what_cannot_be_a_release_is_refused_and_changes_nothing() {
        let target = Target::new();
        let layout = target.layout();
        let refusal = |target: &Target| match target.capture() {
            Err(AgentError::Refused(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert!(refusal(&target).contains("nothing to capture"));
        // Write permission alone is no change of the release.
        set_mode(&target.current().join("conf/a.txt"), 0o644);
        assert!(refusal(&target).contains("nothing to capture"));

        set_mode(&target.current().join("conf"), 0o755);
        symlink("../../../../etc/passwd", target.current().join("conf/out")).unwrap();
        let reason = refusal(&target);
        assert!(
            reason.contains("conf/out") && reason.contains("outside"),
            "{reason}"
        );
        fs::remove_file(target.current().join("conf/out")).unwrap();

        rustix::fs::mknodat(
            rustix::fs::CWD,
            target.current().join("conf/pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let reason = refusal(&target);
        assert!(
            reason.contains("conf/pipe") && reason.contains("a fifo"),
            "{reason}"
        );
        fs::remove_file(target.current().join("conf/pipe")).unwrap();

        set_mode(&target.current(), 0o755);
        fs::remove_file(target.current().join("data")).unwrap();
        let reason = refusal(&target);
        assert!(
            reason.contains("data") && reason.contains("shared"),
            "{reason}"
        );
        symlink(link_target("data"), target.current().join("data")).unwrap();

        target.edit("ferry.toml", "shared = [\"data\"]\n");
        let reason = refusal(&target);
        assert!(
            reason.contains("ferry.toml") && reason.contains("ignore"),
            "{reason}"
        );
        target.edit("ferry.toml", CONFIG);

        // Another release served: not the one asked about.
        let reason = match Capture::scan(
            target.root(),
            "shop",
            ("prd-1", "prd"),
            &v("0.9"),
            &target.manifest,
            &target.config(),
            &RenderedFiles::default(),
        ) {
            Err(AgentError::Refused(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason.contains("serves 1.0"), "{reason}");
        assert_eq!(layout.current_version().as_deref(), Some("1.0"));
        assert_eq!(layout.releases_on_disk().unwrap(), [v("1.0")]);

        // A file changed between the scan and the finish: refused, nothing switched.
        target.edit("conf/a.txt", "a=3\n");
        let capture = target.capture().unwrap();
        let path = target.current().join("conf/a.txt");
        fs::write(&path, "a=4\n").unwrap();
        let reason = match capture.finish("1.1") {
            Err(AgentError::Refused(reason)) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason.contains("conf/a.txt"), "{reason}");
        assert_eq!(layout.current_version().as_deref(), Some("1.0"));
        assert_eq!(layout.releases_on_disk().unwrap(), [v("1.0")]);
        assert!(!layout.partial_dir(&v("1.1")).exists());
    }
}
