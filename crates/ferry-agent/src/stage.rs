//! Building `releases/VERSION` (or `releases/VERSION@N`, with configuration revision N
//! rendered into it: see [`crate::config_files`]) from a manifest. The tree is written to
//! `releases/.VERSION.partial`, checked file by file, its shared paths linked, made
//! read-only, made durable with one `syncfs`, and only then renamed into place: a directory
//! named like a release is always complete. Staging writes nothing outside `releases/` (and
//! the agent's own state): shared paths are created at the switch.
//!
//! The rendered configuration files are written from memory (mode 0400), or hard-linked
//! from the identical file of the directory staging links from; they are in the
//! directory's manifest ([`RenderedFiles::add_to`]), so its stat index and every check
//! cover them.
//!
//! Each file comes from the cheapest source that holds exactly its content and mode: a
//! hard link to the same file of a release on disk whose stat index vouches for it, a hard
//! link to the cache's blob, or a copy written from the cache (or, for a file no index
//! vouches for any more, from a release holding its content). Files are read-only on the
//! target, hard-linked files are never written to, and paths the application changes
//! itself (`ignore`) are always copied and keep their mode, so its writes cannot reach
//! another release or the cache.
//!
//! A release already on disk is checked before it is used again (for a switch after
//! staging ahead, or a rollback): if anything in it changed since it was staged, it is
//! built again, taking what is still as staged from itself, and exchanged with the changed
//! tree in one atomic rename.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::{Chunk, EntryKind, Manifest};
use rustix::fs::{renameat_with, RenameFlags, CWD};

use crate::cleanup::remove_leftovers;
use crate::config_files::{RenderedFiles, RENDERED_MODE};
use crate::content::{read_small_file, ContentSources, FileFacts};
use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::{fsync_dir, sync_filesystem};
use crate::layout::{AppLayout, Installed};
use crate::link_changes::remove_tree_keeping_indexes;
use crate::modes::{placed_mode, RELEASE_DIR_MODE};
use crate::shared::{check_shared_paths, link_shared_paths};
use crate::stat_index::{FileStat, StatIndex};
use crate::tree::{check_release, is_intact};
use ferry_cas::release_config::{ConfigError, ReleaseConfig, CONFIG_FILE, MAX_CONFIG_BYTES};

/// What staging did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageReport {
    /// The release was already on disk, exactly as staged, and was used as it is.
    pub reused: bool,
    /// The release was on disk but these paths differed from its manifest (changed,
    /// added or removed since it was staged): it was built again.
    pub repaired: Vec<String>,
    /// The release was on disk and this many of its paths held the right content but were
    /// touched since staging (an inode changed, write permission given): they were written
    /// again.
    pub recreated: u64,
    /// Files hard-linked from a release on disk or the cache.
    pub files_linked: u64,
    /// Files written from the cache or copied.
    pub files_copied: u64,
    /// Bytes of the files written.
    pub bytes_copied: u64,
}

impl StageReport {
    fn add_files(&mut self, other: &StageReport) {
        self.files_linked += other.files_linked;
        self.files_copied += other.files_copied;
        self.bytes_copied += other.bytes_copied;
    }

    /// A warning for people when the release had been changed on the target since it was
    /// staged (it was repaired before use): the paths, the first few named.
    pub fn warning(&self, version: &str) -> Option<String> {
        const NAMED: usize = 5;
        if self.repaired.is_empty() {
            return None;
        }
        let mut named = self.repaired[..self.repaired.len().min(NAMED)].join(", ");
        if self.repaired.len() > NAMED {
            named.push_str(&format!(" and {} more", self.repaired.len() - NAMED));
        }
        Some(format!(
            "release {version} had been changed on this target since it was staged ({} path(s): {named}); it was restored from its manifest before use",
            self.repaired.len()
        ))
    }
}

/// Builds (or reuses) `releases/VERSION[@N]` for `manifest` and the configuration files
/// `rendered` for it, taking unchanged files from the release `previous` when it is on
/// disk. A release already on disk is reused only when it is exactly as staged (rendered
/// files included); otherwise it is built again. The stat index of the new tree is recorded
/// from what staging learnt about each file it placed.
pub fn stage_release(
    layout: &AppLayout,
    version: &Installed,
    manifest: &Manifest,
    config: &ReleaseConfig,
    rendered: &RenderedFiles,
    previous: Option<&Installed>,
    cache: &BlobStore,
) -> AgentResult<StageReport> {
    version.check()?;
    manifest.validate()?;
    check_shared_paths(manifest, config)?;
    let manifest = &rendered.add_to(manifest);
    let final_dir = layout.release_dir(version);
    let already_there = layout.has_release(version);
    let mut report = StageReport::default();
    if already_there {
        let check = check_release(
            &final_dir,
            manifest,
            config,
            &StatIndex::load(layout, version),
        );
        if check.is_exact() {
            report.reused = true;
            return Ok(report);
        }
        report.repaired = check.changed;
        report.recreated = check.untrusted.len() as u64;
    }
    let releases = layout.releases_dir();
    fs::create_dir_all(&releases).map_err(|e| AgentError::io(&releases, e))?;
    remove_leftovers(layout)?;
    failpoint("stage.before_partial");
    let partial = layout.partial_dir(version);
    fs::create_dir(&partial).map_err(|e| AgentError::io(&partial, e))?;

    // A release being repaired gives what is still as staged; then the one before it.
    let sources = ContentSources::new(layout, &[Some(version), previous], cache);
    let built = build_tree(&partial, manifest, config, rendered, &sources);
    // The links made count even when the build failed: the partial tree holds them.
    sources.changes().apply_to_releases(layout);
    let (filled_report, mut index) = built?;
    report.add_files(&filled_report);
    sources.changes().apply_to(&mut index);
    failpoint("stage.before_rename");
    // Whatever index is on disk describes another tree (the one replaced, or a release
    // of this name removed earlier): it goes before the new tree takes the name.
    StatIndex::forget(layout, version);
    if already_there {
        // The release is on disk but was changed (maybe it is even `current`): swap the
        // fresh tree in with one atomic exchange; the changed one is removed below.
        renameat_with(CWD, &partial, CWD, &final_dir, RenameFlags::EXCHANGE)
            .map_err(|e| AgentError::errno(&final_dir, e))?;
    } else {
        fs::rename(&partial, &final_dir).map_err(|e| AgentError::io(&final_dir, e))?;
    }
    fsync_dir(&releases)?;
    failpoint("stage.after_rename");
    index.save(layout, version);
    if already_there {
        remove_tree_keeping_indexes(layout, &partial, || {})?;
    }
    Ok(report)
}

/// Fills `partial` with the release, links its shared paths, makes it read-only and
/// durable. Returns the file counters and the stat index of what it placed.
fn build_tree(
    partial: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    rendered: &RenderedFiles,
    sources: &ContentSources,
) -> AgentResult<(StageReport, StatIndex)> {
    let workers = workers_for(manifest.entries.len());
    let filled = fill(partial, manifest, config, rendered, sources, workers)?;
    link_shared_paths(partial, config)?;
    failpoint("stage.before_dir_modes");
    apply_dir_modes(partial, manifest, config, |path, mode| {
        (!config.is_shared(path)).then(|| placed_mode(mode, config.is_ignored(path)))
    })?;
    failpoint("stage.before_syncfs");
    sync_filesystem(partial)?;
    Ok((filled.report, filled.index))
}

/// The release's `ferry.toml`, read from the release itself (a retry), the previous
/// release or the cache (defaults when the release has none), so a bad one is refused
/// before anything is written. Only its content counts, checked against the manifest's
/// hash, so no stat index is read. One over [`MAX_CONFIG_BYTES`] is refused unread.
pub fn read_release_config(
    layout: &AppLayout,
    version: &Installed,
    manifest: &Manifest,
    previous: Option<&Installed>,
    cache: &BlobStore,
) -> AgentResult<ReleaseConfig> {
    let Some(entry) = manifest.get(CONFIG_FILE) else {
        return Ok(ReleaseConfig::default());
    };
    let Some(file) = FileFacts::of(entry, &ReleaseConfig::default()) else {
        return Err(ConfigError::file("ferry.toml must be a regular file").into());
    };
    if file.size > MAX_CONFIG_BYTES {
        return Err(ConfigError::file(format!(
                "the release's manifest says ferry.toml holds {} bytes; a ferry.toml may hold at most {MAX_CONFIG_BYTES} bytes (1 MiB): keep data out of it, or check how the release was made",
                file.size
            ))
        .into());
    }
    let dirs: Vec<PathBuf> = [Some(version), previous]
        .into_iter()
        .flatten()
        .filter(|v| v.check().is_ok())
        .map(|v| layout.release_dir(v))
        .collect();
    let data = read_small_file(&dirs, &file, cache, MAX_CONFIG_BYTES)?;
    Ok(ReleaseConfig::parse_bytes(&data)?)
}

/// How [`blobs_needed_with`] decides that a file can be taken from a release on disk
/// instead of fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreviousCheck {
    /// From the releases' stat indexes alone: available when one recorded the same
    /// content, mode and size at the path, with no `stat` per file (files none has a
    /// record of are checked as with `Verified`). A file changed by hand since it was
    /// staged still counts as available: staging, which checks every file it takes, then
    /// refuses it and fails for want of its blob, and the retry must ask for `Verified`.
    Recorded,
    /// Each file is looked at: available when its index vouches for it, or it holds the
    /// right content (hashed).
    Verified,
}

/// The blobs to fetch before staging `manifest` after `previous`, deciding what releases
/// on disk can provide from their stat indexes alone ([`PreviousCheck::Recorded`]); see
/// [`blobs_needed_with`].
pub fn blobs_needed(
    layout: &AppLayout,
    version: &Installed,
    manifest: &Manifest,
    previous: Option<&Installed>,
    cache: &BlobStore,
) -> Vec<Chunk> {
    blobs_needed_with(
        layout,
        version,
        manifest,
        previous,
        cache,
        PreviousCheck::Recorded,
    )
}

/// The blobs to fetch before staging (or switching to) `manifest` after `previous`: those
/// of files that cannot be taken from a release on disk (the release itself, if there, or
/// `previous`; decided as `check` says) and are not in the cache, and those of shared
/// paths that `shared/` lacks (created at the switch). Only the latter when the release is
/// on disk exactly as staged. When the release's `ferry.toml` itself is not available yet,
/// every blob missing from the cache is listed. Rendered configuration files are not in
/// `manifest`: they are never fetched.
pub fn blobs_needed_with(
    layout: &AppLayout,
    version: &Installed,
    manifest: &Manifest,
    previous: Option<&Installed>,
    cache: &BlobStore,
    check: PreviousCheck,
) -> Vec<Chunk> {
    let config = read_release_config(layout, version, manifest, previous, cache).ok();
    let intact = config.as_ref().is_some_and(|config| {
        version.check().is_ok()
            && layout.has_release(version)
            && is_intact(
                &layout.release_dir(version),
                manifest,
                config,
                &StatIndex::load(layout, version),
            )
    });
    let sources = ContentSources::new(layout, &[Some(version), previous], cache);
    let missing_shared = config.as_ref().map(|c| MissingShared::new(layout, c));
    let mut seen = HashSet::new();
    let mut needed = Vec::new();
    for entry in &manifest.entries {
        let wanted = match (&config, &missing_shared) {
            (Some(config), Some(missing_shared)) => {
                if config.is_shared(&entry.path) {
                    // Written into `shared/` at the switch, only if it is not there yet.
                    missing_shared.holds(&entry.path)
                } else {
                    !intact
                }
            }
            _ => true,
        };
        let file = match &config {
            Some(config) => FileFacts::of(entry, config),
            None => FileFacts::of(entry, &ReleaseConfig::default()),
        };
        let Some(file) = file.filter(|_| wanted) else {
            continue;
        };
        if let Some(config) = &config {
            let available = !config.is_written_by_application(file.path)
                && match check {
                    PreviousCheck::Recorded => sources
                        .recorded_in_releases(&file)
                        .unwrap_or_else(|| sources.available_in_releases(&file)),
                    PreviousCheck::Verified => sources.available_in_releases(&file),
                };
            if available {
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

/// The shared paths that `shared/` does not hold yet: their content is written there at
/// the switch.
struct MissingShared<'c> {
    paths: Vec<&'c str>,
}

impl<'c> MissingShared<'c> {
    fn new(layout: &AppLayout, config: &'c ReleaseConfig) -> MissingShared<'c> {
        let shared_dir = layout.shared_dir();
        MissingShared {
            paths: config
                .shared
                .iter()
                .filter(|shared| fs::symlink_metadata(shared_dir.join(shared)).is_err())
                .map(String::as_str)
                .collect(),
        }
    }

    /// Whether `path` lies in a shared path that `shared/` lacks.
    fn holds(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|shared| ferry_cas::release_config::is_within(path, shared))
    }
}

/// Below this many entries a release is filled by one thread.
const PARALLEL_MIN_ENTRIES: usize = 256;
/// Most threads filling a release: creating entries is mostly waiting on the filesystem's
/// metadata locks, which more threads do not share out better.
const MAX_WORKERS: usize = 4;
/// Pieces of work per thread, so a thread that drew slow pieces (copies) is helped out.
const UNITS_PER_WORKER: usize = 4;

/// How many threads fill a release of `n_entries` entries.
fn workers_for(n_entries: usize) -> usize {
    if n_entries < PARALLEL_MIN_ENTRIES {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
}

/// What filling a release did and learnt.
struct Filled {
    /// The file counters (shared paths are linked later).
    report: StageReport,
    /// Each placed file as it is now, except files the application changes itself
    /// (`ignore`).
    index: StatIndex,
}

/// Creates every entry of the manifest under `partial` (directories with default modes)
/// but those inside shared paths (links stand in for them), with up to `workers` threads
/// (one for a small tree). Files are checked as they are placed; the first error stops the
/// other threads at their next entry and is returned.
fn fill(
    partial: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    rendered: &RenderedFiles,
    sources: &ContentSources,
    workers: usize,
) -> AgentResult<Filled> {
    let todo: Vec<usize> = (0..manifest.entries.len())
        .filter(|&i| !config.is_shared(&manifest.entries[i].path))
        .collect();
    let n_files = todo
        .iter()
        .filter(|&&i| matches!(manifest.entries[i].kind, EntryKind::File { .. }))
        .count() as u64;
    let workers = if todo.len() < PARALLEL_MIN_ENTRIES {
        1
    } else {
        workers.max(1)
    };
    let pieces = if workers == 1 {
        Pieces {
            first: Vec::new(),
            units: vec![todo],
        }
    } else {
        share_out(manifest, todo, workers)
    };
    let filling = Filling {
        partial,
        manifest,
        config,
        rendered,
        sources,
        units: &pieces.units,
        next_unit: AtomicUsize::new(0),
        n_files,
        files_done: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        error: Mutex::new(None),
    };
    let mut done = Vec::with_capacity(workers);
    let mut first = WorkerOutput::default();
    for &i in &pieces.first {
        filling.create(i, &mut first)?;
    }
    done.push(first);
    let workers = workers.min(pieces.units.len());
    if workers <= 1 {
        done.push(filling.work());
    } else {
        std::thread::scope(|scope| {
            let threads: Vec<_> = (0..workers)
                .map(|_| scope.spawn(|| filling.work()))
                .collect();
            for thread in threads {
                match thread.join() {
                    Ok(output) => done.push(output),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
    if let Some(error) = filling
        .error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(error);
    }
    let mut report = StageReport::default();
    for output in &done {
        report.add_files(&output.report);
    }
    let index = StatIndex::from_files(done.into_iter().flat_map(|output| {
        output
            .files
            .into_iter()
            .map(|(i, stat)| (manifest.entries[i].path.as_str(), stat))
    }));
    Ok(Filled { report, index })
}

/// The entries to create, shared out: directories created before the threads start
/// (in manifest order, parents first), and units a thread creates whole, in manifest
/// order (so parents before children), largest first. Each unit is one subtree (its
/// directory first) or the files and symlinks directly inside one directory.
struct Pieces {
    first: Vec<usize>,
    units: Vec<Vec<usize>>,
}

/// Splits the entries `todo` (indexes into the manifest's sorted entries) into subtrees:
/// those of the top-level directories, and deeper where one subtree is too big for the
/// threads to share the work evenly.
fn share_out(manifest: &Manifest, todo: Vec<usize>, workers: usize) -> Pieces {
    /// A subtree: its directory (none for the whole tree), the length of its path
    /// prefix `DIR/`, and the entries below it.
    struct Subtree {
        root: Option<usize>,
        prefix: usize,
        below: Vec<usize>,
    }
    const MAX_SPLITS: usize = 256;
    let target = (todo.len() / (workers * UNITS_PER_WORKER)).max(1);
    let mut first = Vec::new();
    let mut units = Vec::new();
    let mut pending = vec![Subtree {
        root: None,
        prefix: 0,
        below: todo,
    }];
    let mut splits = 0;
    while let Some(subtree) = pending.pop() {
        let whole = |subtree: Subtree| -> Vec<usize> {
            subtree.root.into_iter().chain(subtree.below).collect()
        };
        if subtree.below.len() < target || splits >= MAX_SPLITS {
            units.push(whole(subtree));
            continue;
        }
        // Group the entries below by the directory directly below the subtree's root.
        let mut children: Vec<Subtree> = Vec::new();
        let mut child_of: HashMap<&str, usize> = HashMap::new();
        let mut loose = Vec::new();
        let mut splittable = true;
        for &i in &subtree.below {
            let entry = &manifest.entries[i];
            let path = entry.path.as_str();
            match path[subtree.prefix..].find('/') {
                Some(slash) => match child_of.get(&path[..subtree.prefix + slash]) {
                    Some(&child) => children[child].below.push(i),
                    // Not in a validated manifest: a parent always comes first.
                    None => splittable = false,
                },
                None if matches!(entry.kind, EntryKind::Dir { .. }) => {
                    child_of.insert(path, children.len());
                    children.push(Subtree {
                        root: Some(i),
                        prefix: path.len() + 1,
                        below: Vec::new(),
                    });
                }
                None => loose.push(i),
            }
        }
        if !splittable || children.is_empty() {
            units.push(whole(subtree));
            continue;
        }
        splits += 1;
        first.extend(subtree.root);
        if !loose.is_empty() {
            units.push(loose);
        }
        pending.extend(children);
    }
    first.sort_unstable();
    units.sort_by_key(|unit| std::cmp::Reverse(unit.len()));
    Pieces { first, units }
}

/// One filling of a release, shared by its threads.
struct Filling<'f> {
    partial: &'f Path,
    manifest: &'f Manifest,
    config: &'f ReleaseConfig,
    /// The configuration files, written from memory.
    rendered: &'f RenderedFiles,
    sources: &'f ContentSources<'f>,
    units: &'f [Vec<usize>],
    /// The next unit a thread takes.
    next_unit: AtomicUsize,
    n_files: u64,
    files_done: AtomicU64,
    /// Set on the first error: the other threads stop at their next entry.
    stop: AtomicBool,
    /// The first error.
    error: Mutex<Option<AgentError>>,
}

/// What one thread did: its counters, and the facts of each file it placed (by entry).
#[derive(Default)]
struct WorkerOutput {
    report: StageReport,
    files: Vec<(usize, FileStat)>,
}

impl Filling<'_> {
    /// Takes units until none is left or another thread failed.
    fn work(&self) -> WorkerOutput {
        let mut output = WorkerOutput::default();
        while let Some(unit) = self
            .units
            .get(self.next_unit.fetch_add(1, Ordering::Relaxed))
        {
            for &i in unit {
                if self.stop.load(Ordering::Relaxed) {
                    return output;
                }
                if let Err(error) = self.create(i, &mut output) {
                    self.error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(error);
                    self.stop.store(true, Ordering::Relaxed);
                    return output;
                }
            }
        }
        output
    }

    /// Creates entry `i` of the manifest.
    fn create(&self, i: usize, output: &mut WorkerOutput) -> AgentResult<()> {
        let entry = &self.manifest.entries[i];
        let dest = self.partial.join(&entry.path);
        match &entry.kind {
            EntryKind::Dir { .. } => {
                fs::create_dir(&dest).map_err(|e| AgentError::io(&dest, e))?;
            }
            EntryKind::Symlink { target } => {
                symlink(target, &dest).map_err(|e| AgentError::io(&dest, e))?;
            }
            EntryKind::File { .. } => {
                let file = FileFacts::of(entry, self.config).expect("a file entry");
                let ignored = self.config.is_ignored(file.path);
                let stat = match self.rendered.get(file.path) {
                    Some(content) => {
                        place_rendered(&file, content, &dest, self.sources, &mut output.report)?
                    }
                    None => place_file(&file, &dest, ignored, self.sources, &mut output.report)?,
                };
                if !ignored {
                    output.files.push((i, stat));
                }
                let files_done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
                if files_done == 1 {
                    failpoint("stage.after_first_file");
                }
                if files_done == (self.n_files / 2).max(1) {
                    failpoint("stage.mid_files");
                }
            }
        }
        Ok(())
    }
}

/// Puts one file at `dest` and returns its facts: linked when a release's index vouches
/// for an identical file or the cache holds it whole (never for a path the application
/// changes itself), else written from the cache, else copied from a release that holds
/// the content though its inode changed since staging.
fn place_file(
    file: &FileFacts,
    dest: &Path,
    ignored: bool,
    sources: &ContentSources,
    report: &mut StageReport,
) -> AgentResult<FileStat> {
    if !ignored {
        let linked = sources
            .vouched_in_releases(file)
            .and_then(|found| sources.link(&found, dest))
            .or_else(|| {
                sources
                    .in_cache(file)
                    .and_then(|found| sources.link(&found, dest))
            });
        if let Some(stat) = linked {
            report.files_linked += 1;
            return Ok(stat);
        }
    }
    let stat = match sources.write_from_cache(file, dest) {
        Ok(stat) => stat,
        Err(missing @ AgentError::Missing { .. }) => {
            sources.copy_from_releases(file, dest)?.ok_or(missing)?
        }
        Err(error) => return Err(error),
    };
    report.bytes_copied += stat.size;
    report.files_copied += 1;
    Ok(stat)
}

/// Puts a rendered configuration file at `dest` and returns its facts: linked from the
/// identical file of a release on disk whose index vouches for it (the same release with
/// another revision that rendered it the same), else written from memory with mode
/// [`RENDERED_MODE`]. Never from or into the cache.
fn place_rendered(
    file: &FileFacts,
    content: &[u8],
    dest: &Path,
    sources: &ContentSources,
    report: &mut StageReport,
) -> AgentResult<FileStat> {
    let linked = sources
        .vouched_in_releases(file)
        .and_then(|found| sources.link(&found, dest));
    if let Some(stat) = linked {
        report.files_linked += 1;
        return Ok(stat);
    }
    let io = |e| AgentError::io(dest, e);
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(io)?;
    std::io::Write::write_all(&mut out, content).map_err(io)?;
    out.set_permissions(fs::Permissions::from_mode(RENDERED_MODE))
        .map_err(io)?;
    let metadata = out.metadata().map_err(io)?;
    report.bytes_copied += content.len() as u64;
    report.files_copied += 1;
    Ok(FileStat::of(&metadata, file.hash))
}

/// Makes the tree read-only (see [`crate::modes`]), deepest first (entries are sorted, so
/// reversed order visits children before parents), so a directory is filled before it
/// loses its write permission: each directory of the manifest gets the mode `dir_mode`
/// gives it from its path and recorded mode (none: left as it is), the directories made
/// only to hold a shared path's link and the release's own directory get
/// [`RELEASE_DIR_MODE`]. Staging skips directories inside shared paths (replaced by links);
/// a capture also leaves those the application writes as they are.
pub(crate) fn apply_dir_modes(
    partial: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
    dir_mode: impl Fn(&str, u32) -> Option<u32>,
) -> AgentResult<()> {
    let set_mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::io(path, e))
    };
    for entry in manifest.entries.iter().rev() {
        if let EntryKind::Dir { mode } = entry.kind {
            if let Some(mode) = dir_mode(&entry.path, mode) {
                set_mode(&partial.join(&entry.path), mode)?;
            }
        }
    }
    let mut holders: Vec<&str> = config
        .shared
        .iter()
        .flat_map(|path| path.match_indices('/').map(move |(at, _)| &path[..at]))
        .filter(|holder| manifest.get(holder).is_none())
        .collect();
    holders.sort_unstable();
    holders.dedup();
    for holder in holders.into_iter().rev() {
        set_mode(&partial.join(holder), RELEASE_DIR_MODE)?;
    }
    set_mode(partial, RELEASE_DIR_MODE)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    use ferry_cas::hash::ContentHash;
    use ferry_cas::manifest::Entry;

    use super::*;
    use crate::fsutil::{hash_file, make_writable, permission_bits};

    fn v(name: &str) -> Installed {
        Installed::parse(name).unwrap()
    }

    /// A target root with its cache, and the content of every blob put in it.
    struct Target {
        dir: tempfile::TempDir,
        layout: AppLayout,
        cache: BlobStore,
    }

    impl Target {
        fn new() -> Target {
            let dir = tempfile::tempdir().unwrap();
            let layout = AppLayout::new(dir.path(), "shop").unwrap();
            let cache = BlobStore::open(&crate::layout::cache_dir(dir.path())).unwrap();
            Target { dir, layout, cache }
        }

        /// Stores the blobs of `items` in the cache and returns their manifest.
        fn release(&self, items: &[Item]) -> Manifest {
            let mut blobs: Vec<(ContentHash, Vec<u8>)> = Vec::new();
            let mut entries: Vec<Entry> = items
                .iter()
                .map(|item| {
                    let kind = match item {
                        Item::Dir(_, mode) => EntryKind::Dir { mode: *mode },
                        Item::Link(_, target) => EntryKind::Symlink {
                            target: target.clone(),
                        },
                        Item::File(_, content, mode) => {
                            // Files over 1000 bytes are stored in 1000-byte chunks.
                            let chunks: Vec<Chunk> = if content.len() > 1000 {
                                content
                                    .chunks(1000)
                                    .map(|piece| {
                                        blobs.push((ContentHash::of(piece), piece.to_vec()));
                                        Chunk {
                                            hash: ContentHash::of(piece),
                                            size: piece.len() as u64,
                                        }
                                    })
                                    .collect()
                            } else {
                                blobs.push((ContentHash::of(content), content.clone()));
                                Vec::new()
                            };
                            EntryKind::File {
                                mode: *mode,
                                size: content.len() as u64,
                                hash: ContentHash::of(content),
                                chunks,
                            }
                        }
                    };
                    Entry {
                        path: item.path().to_owned(),
                        kind,
                    }
                })
                .collect();
            entries.sort_by(|a, b| a.path.cmp(&b.path));
            let manifest = Manifest { entries };
            manifest.validate().unwrap();
            let refs: Vec<(ContentHash, &[u8])> =
                blobs.iter().map(|(h, d)| (*h, d.as_slice())).collect();
            self.cache.put_batch(&refs).unwrap();
            manifest
        }

        fn stage(&self, version: &str, manifest: &Manifest, config: &ReleaseConfig) -> StageReport {
            self.stage_rendered(&v(version), manifest, config, &RenderedFiles::default())
                .unwrap()
        }

        /// Stages `installed` with `rendered` after the release served, and switches to it.
        fn stage_rendered(
            &self,
            installed: &Installed,
            manifest: &Manifest,
            config: &ReleaseConfig,
            rendered: &RenderedFiles,
        ) -> AgentResult<StageReport> {
            let previous = self.layout.current();
            let report = stage_release(
                &self.layout,
                installed,
                manifest,
                config,
                rendered,
                previous.as_ref(),
                &self.cache,
            )?;
            crate::switch::switch_to(&self.layout, installed)?;
            Ok(report)
        }
    }

    impl Drop for Target {
        fn drop(&mut self) {
            let _ = make_writable(self.dir.path());
        }
    }

    #[derive(Clone)]
    enum Item {
        Dir(String, u32),
        File(String, Vec<u8>, u32),
        Link(String, String),
    }

    impl Item {
        fn path(&self) -> &str {
            match self {
                Item::Dir(path, _) | Item::File(path, _, _) | Item::Link(path, _) => path,
            }
        }
    }

    /// A tree of 8 top-level directories (one holding most of the tree, so it is split
    /// further), nested directories, a read-only one, files of several modes (one
    /// chunked), symlinks, files at the top, an ignored log and a shared path.
    fn big_tree(generation: u32) -> Vec<Item> {
        let mut items = vec![
            Item::File("ferry.toml".into(), CONFIG.as_bytes().to_vec(), 0o644),
            Item::File("top.txt".into(), b"top".to_vec(), 0o644),
            Item::Link("start".into(), "d0/s0/f0".into()),
            Item::Dir("logs".into(), 0o755),
            Item::File("logs/app.log".into(), b"log".to_vec(), 0o644),
            Item::Dir("uploads".into(), 0o755),
            Item::File("uploads/a.png".into(), b"png".to_vec(), 0o644),
            Item::Dir("ro".into(), 0o555),
            Item::File("ro/frozen".into(), b"frozen".to_vec(), 0o444),
            Item::File(
                "chunked.bin".into(),
                (0..3500u32).map(|i| (i * 7 + generation) as u8).collect(),
                0o644,
            ),
        ];
        for d in 0..8 {
            items.push(Item::Dir(format!("d{d}"), 0o755));
            let subdirs = if d == 0 { 30 } else { 1 };
            for s in 0..subdirs {
                items.push(Item::Dir(format!("d{d}/s{s}"), 0o750));
                items.push(Item::Dir(format!("d{d}/s{s}/deep"), 0o700));
                items.push(Item::Link(format!("d{d}/s{s}/up"), "../..".into()));
                for f in 0..10 {
                    // Every seventh file changes content each generation, every eleventh
                    // changes mode.
                    let n = d * 1000 + s * 100 + f;
                    let content = if n % 7 == 0 {
                        format!("file {n} of generation {generation}")
                    } else {
                        format!("file {n}")
                    };
                    let mode = if n % 11 == 0 && generation % 2 == 1 {
                        0o600
                    } else {
                        0o644
                    };
                    items.push(Item::File(format!("d{d}/s{s}/f{f}"), content.into(), mode));
                }
                items.push(Item::File(
                    format!("d{d}/s{s}/deep/x.sh"),
                    b"#!/bin/sh\n".to_vec(),
                    0o755,
                ));
            }
            items.push(Item::File(format!("d{d}/loose"), b"loose".to_vec(), 0o640));
        }
        if generation > 1 {
            items.push(Item::File("new.txt".into(), b"new".to_vec(), 0o644));
        }
        items
    }

    const CONFIG: &str = "shared = [\"uploads\"]\nignore = [\"logs/**\"]\n";

    fn config() -> ReleaseConfig {
        ReleaseConfig::parse(CONFIG).unwrap()
    }

    /// Every path under `dir` with what it is: kind, mode, content hash or target.
    fn walk(dir: &Path) -> BTreeMap<String, String> {
        fn visit(dir: &Path, relative: &str, out: &mut BTreeMap<String, String>) {
            for child in fs::read_dir(dir.join(relative)).unwrap() {
                let child = child.unwrap();
                let name = child.file_name().into_string().unwrap();
                let path = if relative.is_empty() {
                    name
                } else {
                    format!("{relative}/{name}")
                };
                let metadata = fs::symlink_metadata(child.path()).unwrap();
                let mode = permission_bits(&metadata);
                let what = if metadata.is_dir() {
                    visit(dir, &path, out);
                    format!("dir {mode:o}")
                } else if metadata.file_type().is_symlink() {
                    format!("link {}", fs::read_link(child.path()).unwrap().display())
                } else {
                    format!("file {mode:o} {}", hash_file(&child.path()).unwrap())
                };
                out.insert(path, what);
            }
        }
        let mut out = BTreeMap::new();
        visit(dir, "", &mut out);
        out
    }

    /// The stat index of a release as a fresh `stat` of its files sees it.
    fn fresh_index(dir: &Path, manifest: &Manifest, config: &ReleaseConfig) -> StatIndex {
        StatIndex::from_files(manifest.entries.iter().filter_map(|entry| {
            let file = FileFacts::of(entry, config)?;
            if config.is_shared(file.path) || config.is_ignored(file.path) {
                return None;
            }
            let metadata = fs::symlink_metadata(dir.join(file.path)).unwrap();
            assert!(metadata.is_file(), "{}", file.path);
            Some((file.path.to_owned(), FileStat::of(&metadata, file.hash)))
        }))
    }

    #[test]
    fn parallel_fill_builds_the_same_tree_as_one_thread() {
        let target = Target::new();
        let config = config();
        let v1 = target.release(&big_tree(1));
        target.stage("1.0", &v1, &config);
        let v2 = target.release(&big_tree(2));
        assert!(v2.entries.len() >= 2 * PARALLEL_MIN_ENTRIES);
        let sources = ContentSources::new(&target.layout, &[Some(&v("1.0"))], &target.cache);
        let releases = target.layout.releases_dir();
        let fill_with = |name: &str, workers: usize| {
            let partial = releases.join(name);
            fs::create_dir(&partial).unwrap();
            let rendered = RenderedFiles::default();
            let filled = fill(&partial, &v2, &config, &rendered, &sources, workers).unwrap();
            (partial, filled)
        };
        let (one, mut by_one) = fill_with(".one", 1);
        let (four, mut by_four) = fill_with(".four", 4);
        // The second fill linked the same inodes again: the first one's facts move on.
        sources.changes().apply_to(&mut by_one.index);
        sources.changes().apply_to(&mut by_four.index);
        assert_eq!(by_one.report, by_four.report);
        let report = &by_one.report;
        assert!(
            report.files_linked > 0 && report.files_copied > 0,
            "{report:?}"
        );
        // All but the one in `uploads`: a link into `shared/` stands in for it.
        assert_eq!(report.files_linked + report.files_copied, v2.n_files() - 1);
        assert!(!one.join("uploads").exists());
        assert_eq!(walk(&one), walk(&four));
        assert_eq!(by_one.index, fresh_index(&one, &v2, &config));
        assert_eq!(by_four.index, fresh_index(&four, &v2, &config));
        // The same files were linked (sharing an inode) and the same ones written.
        let mut linked = 0;
        for entry in &v2.entries {
            if let EntryKind::File { .. } = entry.kind {
                let ino = |dir: &Path| fs::symlink_metadata(dir.join(&entry.path)).unwrap().ino();
                if !config.is_shared(&entry.path) {
                    linked += u64::from(ino(&one) == ino(&four));
                }
            }
        }
        assert_eq!(linked, report.files_linked);
    }

    #[test]
    fn shared_out_pieces_cover_every_entry_once_with_parents_first() {
        let target = Target::new();
        let manifest = target.release(&big_tree(1));
        let todo: Vec<usize> = (0..manifest.entries.len()).collect();
        for workers in [2, 3, 4] {
            let pieces = share_out(&manifest, todo.clone(), workers);
            assert!(pieces.units.len() >= workers * 2, "{}", pieces.units.len());
            let mut created: HashSet<&str> = HashSet::new();
            for &i in &pieces.first {
                let path = manifest.entries[i].path.as_str();
                assert!(path
                    .rsplit_once('/')
                    .is_none_or(|(p, _)| created.contains(p)));
                created.insert(path);
            }
            let mut seen: Vec<usize> = pieces.first.clone();
            for unit in &pieces.units {
                assert!(unit.windows(2).all(|w| w[0] < w[1]), "manifest order");
                let mut in_unit: HashSet<&str> = HashSet::new();
                for &i in unit {
                    let path = manifest.entries[i].path.as_str();
                    if let Some((parent, _)) = path.rsplit_once('/') {
                        assert!(
                            created.contains(parent) || in_unit.contains(parent),
                            "{path} before its parent"
                        );
                    }
                    in_unit.insert(path);
                }
                seen.extend(unit);
            }
            seen.sort_unstable();
            assert_eq!(seen, todo);
            // The big directory was split, the others were not.
            assert!(pieces
                .first
                .iter()
                .any(|&i| manifest.entries[i].path == "d0"));
            assert!(!pieces
                .first
                .iter()
                .any(|&i| manifest.entries[i].path == "d1"));
        }
    }

    #[test]
    fn the_index_staging_records_is_a_fresh_stat_of_the_release() {
        let target = Target::new();
        let config = config();
        let mut staged = Vec::new();
        // Every release's index stays a fresh stat of it while the next ones link its files
        // (changing their change times), and after a release sharing them is removed.
        let assert_fresh = |staged: &[(&str, Manifest)], context: &str| {
            for (version, manifest) in staged {
                let dir = target.layout.release_dir(&v(version));
                let recorded = StatIndex::load(&target.layout, &v(version));
                assert_eq!(
                    recorded,
                    fresh_index(&dir, manifest, &config),
                    "{version} {context}"
                );
            }
        };
        for (generation, version) in [(1, "1.0"), (2, "2.0"), (3, "3.0")] {
            let manifest = target.release(&big_tree(generation));
            let report = target.stage(version, &manifest, &config);
            assert!(report.files_copied > 0, "{report:?}");
            let recorded = StatIndex::load(&target.layout, &v(version));
            assert!(recorded.get("logs/app.log").is_none());
            assert!(recorded.get("uploads/a.png").is_none());
            assert!(recorded.get("chunked.bin").is_some());
            staged.push((version, manifest));
            assert_fresh(&staged, &format!("after staging {version}"));
        }
        let one = target.layout.release_dir(&v("1.0"));
        remove_tree_keeping_indexes(&target.layout, &one, || {}).unwrap();
        assert!(!one.exists());
        assert_fresh(&staged[1..], "after removing 1.0");
    }

    #[test]
    fn a_release_is_read_only_but_what_the_application_writes() {
        let target = Target::new();
        let config = config();
        let manifest = target.release(&big_tree(1));
        target.stage("1.0", &manifest, &config);
        let dir = target.layout.release_dir(&v("1.0"));
        let mode = |path: &str| permission_bits(&fs::symlink_metadata(dir.join(path)).unwrap());
        assert_eq!(mode(""), 0o555);
        assert_eq!(
            (mode("d0"), mode("d0/s0"), mode("d0/s0/deep")),
            (0o555, 0o550, 0o500)
        );
        assert_eq!(
            (mode("top.txt"), mode("d1/loose"), mode("d0/s0/deep/x.sh")),
            (0o444, 0o440, 0o555)
        );
        assert_eq!((mode("ro"), mode("ro/frozen")), (0o555, 0o444));
        // Ignored: the application's own, writable and never a link.
        assert_eq!((mode("logs"), mode("logs/app.log")), (0o755, 0o644));
        assert_eq!(
            fs::symlink_metadata(dir.join("logs/app.log"))
                .unwrap()
                .nlink(),
            1
        );
        // The cache's blobs are read-only too, so files are linked from it.
        let top = ContentHash::of(b"top");
        assert_eq!(
            fs::metadata(target.cache.path_of(&top)).unwrap().ino(),
            fs::metadata(dir.join("top.txt")).unwrap().ino()
        );
    }

    #[test]
    fn blobs_needed_trusts_the_index_unless_asked_to_verify() {
        let target = Target::new();
        let config = ReleaseConfig::default();
        let items = |generation: u32| {
            let mut items: Vec<Item> = (0..20)
                .map(|i| Item::File(format!("f{i}"), format!("content {i}").into(), 0o644))
                .collect();
            items.push(Item::File(
                "changed".into(),
                format!("generation {generation}").into(),
                0o644,
            ));
            items
        };
        let v1 = target.release(&items(1));
        target.stage("1.0", &v1, &config);
        let v2 = target.release(&items(2));
        let needed = |check| {
            let chunks = blobs_needed_with(
                &target.layout,
                &v("2.0"),
                &v2,
                Some(&v("1.0")),
                &target.cache,
                check,
            );
            chunks.into_iter().map(|c| c.hash).collect::<Vec<_>>()
        };
        assert!(needed(PreviousCheck::Recorded).is_empty());
        assert!(needed(PreviousCheck::Verified).is_empty());

        // f3 leaves the cache and is changed by hand in 1.0 (the cache's name for the
        // same inode is removed first, so the cache stays sound).
        let f3 = ContentHash::of(b"content 3");
        assert!(target.cache.remove(&f3).unwrap());
        let in_previous = target.layout.release_dir(&v("1.0")).join("f3");
        fs::set_permissions(&in_previous, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&in_previous, b"CONTENT 3").unwrap();
        // The index alone still says 1.0 holds it; looking at the file says it does not.
        assert!(needed(PreviousCheck::Recorded).is_empty());
        assert_eq!(needed(PreviousCheck::Verified), [f3]);
        assert_eq!(
            blobs_needed(
                &target.layout,
                &v("2.0"),
                &v2,
                Some(&v("1.0")),
                &target.cache
            ),
            []
        );
        // Staging checks every file it links, so it refuses the changed one.
        let staged = stage_release(
            &target.layout,
            &v("2.0"),
            &v2,
            &config,
            &RenderedFiles::default(),
            Some(&v("1.0")),
            &target.cache,
        );
        assert!(
            matches!(staged, Err(AgentError::Missing { ref path, .. }) if path == "f3"),
            "{staged:?}"
        );
    }

    #[test]
    fn a_small_tree_is_filled_by_one_thread_and_a_big_one_by_several() {
        assert_eq!(workers_for(PARALLEL_MIN_ENTRIES - 1), 1);
        let many = workers_for(100_000);
        assert!((1..=MAX_WORKERS).contains(&many));
    }
}
