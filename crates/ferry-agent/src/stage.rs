//! Building `releases/VERSION` from a manifest. The tree is written to
//! `releases/.VERSION.partial`, checked file by file, its shared paths linked, its
//! directory modes applied, made durable with one `syncfs`, and only then renamed into
//! place: a directory named like a release is always complete.
//!
//! Each file comes from the cheapest source that holds exactly its content and mode: a
//! hard link to the same file of the previous release, a hard link to the cache's blob,
//! or a copy written from the cache. Hard-linked files are shared and never written to;
//! paths the application changes itself (`ignore`) are always copied, so its writes cannot
//! reach another release or the cache.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::{Chunk, EntryKind, Manifest};
use rustix::fs::{renameat_with, RenameFlags, CWD};

use crate::cleanup::remove_leftovers;
use crate::config::{ConfigError, ReleaseConfig, CONFIG_FILE};
use crate::content::{ContentSources, FileFacts};
use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::{fsync_dir, remove_tree, sync_filesystem};
use crate::layout::{check_version, AppLayout};
use crate::shared::{link_shared_paths, SharedReport};
use crate::stat_index::StatIndex;
use crate::tree::differences;

/// What staging did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageReport {
    /// The release was already on disk, intact, and was used as it is.
    pub reused: bool,
    /// The release was on disk but differed from its manifest, and was replaced.
    pub replaced_drifted: bool,
    /// Files hard-linked from the previous release or the cache.
    pub files_linked: u64,
    /// Files written from the cache.
    pub files_copied: u64,
    /// Bytes of the files written.
    pub bytes_copied: u64,
    pub shared: SharedReport,
}

/// Builds (or reuses) `releases/VERSION` for `manifest`, taking unchanged files from the
/// release `previous` when it is on disk.
pub fn stage_release(
    layout: &AppLayout,
    version: &str,
    manifest: &Manifest,
    config: &ReleaseConfig,
    previous: Option<&str>,
    cache: &BlobStore,
) -> AgentResult<StageReport> {
    check_version(version)?;
    manifest.validate()?;
    let final_dir = layout.release_dir(version);
    let already_there = layout.has_release(version);
    let own_index = StatIndex::load(layout, version);
    if already_there && differences(&final_dir, manifest, config, &own_index).is_empty() {
        return Ok(StageReport {
            reused: true,
            ..StageReport::default()
        });
    }
    let releases = layout.releases_dir();
    fs::create_dir_all(&releases).map_err(|e| AgentError::io(&releases, e))?;
    remove_leftovers(layout)?;
    failpoint("stage.before_partial");
    let partial = layout.partial_dir(version);
    fs::create_dir(&partial).map_err(|e| AgentError::io(&partial, e))?;

    let sources = ContentSources::new(layout, previous, cache);
    let mut report = fill(layout, &partial, manifest, config, &sources)?;
    report.shared = link_shared_paths(layout, &partial, manifest, config)?;
    failpoint("stage.before_dir_modes");
    apply_dir_modes(&partial, manifest, config)?;
    failpoint("stage.before_syncfs");
    sync_filesystem(&partial)?;
    failpoint("stage.before_rename");
    if already_there {
        // The release is on disk but was changed by hand (maybe it is even `current`):
        // swap the fresh tree in with one atomic exchange, then remove the old one.
        renameat_with(CWD, &partial, CWD, &final_dir, RenameFlags::EXCHANGE)
            .map_err(|e| AgentError::errno(&final_dir, e))?;
        fsync_dir(&releases)?;
        remove_tree(&partial)?;
        report.replaced_drifted = true;
    } else {
        fs::rename(&partial, &final_dir).map_err(|e| AgentError::io(&final_dir, e))?;
        fsync_dir(&releases)?;
    }
    failpoint("stage.after_rename");
    StatIndex::record(layout, version, manifest);
    Ok(report)
}

/// The release's `ferry.toml`, read from the previous release or the cache (defaults when
/// the release has none), so a bad one is refused before anything is written.
pub fn read_release_config(
    layout: &AppLayout,
    version: &str,
    manifest: &Manifest,
    previous: Option<&str>,
    cache: &BlobStore,
) -> AgentResult<ReleaseConfig> {
    let Some(entry) = manifest.get(CONFIG_FILE) else {
        return Ok(ReleaseConfig::default());
    };
    let Some(file) = FileFacts::of(entry) else {
        return Err(ConfigError {
            key: "(file)".into(),
            reason: "ferry.toml must be a regular file".into(),
        }
        .into());
    };
    // The release itself may be on disk already (a retry), else the previous one may
    // hold the same file, else the cache has it.
    let own = ContentSources::new(layout, Some(version), cache);
    let data = match own.read(&file) {
        Ok(data) => data,
        Err(_) => ContentSources::new(layout, previous, cache).read(&file)?,
    };
    let text = String::from_utf8(data).map_err(|_| ConfigError {
        key: "(file)".into(),
        reason: "ferry.toml is not UTF-8".into(),
    })?;
    Ok(ReleaseConfig::parse(&text)?)
}

/// The blobs to fetch before staging `manifest` after `previous`: those of files that
/// cannot be taken from the previous release and are not in the cache. When the release's
/// `ferry.toml` itself is not available yet, every blob missing from the cache is listed.
pub fn blobs_needed(
    layout: &AppLayout,
    version: &str,
    manifest: &Manifest,
    previous: Option<&str>,
    cache: &BlobStore,
) -> Vec<Chunk> {
    let sources = ContentSources::new(layout, previous, cache);
    let config = read_release_config(layout, version, manifest, previous, cache).ok();
    if let Some(config) = &config {
        let intact = layout.has_release(version)
            && differences(
                &layout.release_dir(version),
                manifest,
                config,
                &StatIndex::load(layout, version),
            )
            .is_empty();
        if intact {
            return Vec::new();
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut needed = Vec::new();
    for entry in &manifest.entries {
        let Some(file) = FileFacts::of(entry) else {
            continue;
        };
        if let Some(config) = &config {
            let linkable = !config.is_ignored(file.path) && sources.in_previous(&file).is_some();
            if linkable || !content_needed(layout, config, file.path) {
                continue;
            }
        }
        for blob in sources.missing_blobs(&file) {
            if seen.insert(blob.hash) {
                needed.push(blob);
            }
        }
    }
    needed
}

/// Whether a path's content must be written: not when it lies in a shared path that
/// already exists, because the link into `shared/` replaces it.
fn content_needed(layout: &AppLayout, config: &ReleaseConfig, path: &str) -> bool {
    !config.shared.iter().any(|shared| {
        crate::config::is_within(path, shared)
            && fs::symlink_metadata(layout.shared_dir().join(shared)).is_ok()
    })
}

/// Creates every entry of the manifest under `partial` (directories with default modes).
fn fill(
    layout: &AppLayout,
    partial: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    sources: &ContentSources,
) -> AgentResult<StageReport> {
    let mut report = StageReport::default();
    let n_files = manifest
        .entries
        .iter()
        .filter(|e| FileFacts::of(e).is_some() && content_needed(layout, config, &e.path))
        .count() as u64;
    let mut files_done = 0u64;
    for entry in &manifest.entries {
        if !content_needed(layout, config, &entry.path) {
            continue;
        }
        let dest = partial.join(&entry.path);
        match &entry.kind {
            EntryKind::Dir { .. } => {
                fs::create_dir(&dest).map_err(|e| AgentError::io(&dest, e))?;
            }
            EntryKind::Symlink { target } => {
                symlink(target, &dest).map_err(|e| AgentError::io(&dest, e))?;
            }
            EntryKind::File { .. } => {
                let file = FileFacts::of(entry).expect("a file entry");
                place_file(&file, &dest, config, sources, &mut report)?;
                files_done += 1;
                if files_done == 1 {
                    failpoint("stage.after_first_file");
                }
                if files_done == (n_files / 2).max(1) {
                    failpoint("stage.mid_files");
                }
            }
        }
    }
    Ok(report)
}

/// Puts one file at `dest`: linked when an identical one exists, else written.
fn place_file(
    file: &FileFacts,
    dest: &Path,
    config: &ReleaseConfig,
    sources: &ContentSources,
    report: &mut StageReport,
) -> AgentResult<()> {
    // A link can fail for good reasons (another filesystem, too many links,
    // protected_hardlinks): the file is then written instead.
    let link = |source: std::path::PathBuf| fs::hard_link(source, dest).is_ok();
    if !config.is_ignored(file.path)
        && (sources.in_previous(file).is_some_and(link) || sources.in_cache(file).is_some_and(link))
    {
        report.files_linked += 1;
        return Ok(());
    }
    report.bytes_copied += sources.write_from_cache(file, dest)?;
    report.files_copied += 1;
    Ok(())
}

/// Gives directories their modes, deepest first (entries are sorted, so reversed order
/// visits children before parents), so a read-only directory is filled before it becomes
/// read-only. Directories inside shared paths were replaced by links and are skipped.
fn apply_dir_modes(partial: &Path, manifest: &Manifest, config: &ReleaseConfig) -> AgentResult<()> {
    for entry in manifest.entries.iter().rev() {
        if let EntryKind::Dir { mode } = entry.kind {
            if config.is_shared(&entry.path) {
                continue;
            }
            let path = partial.join(&entry.path);
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(|e| AgentError::io(&path, e))?;
        }
    }
    Ok(())
}
