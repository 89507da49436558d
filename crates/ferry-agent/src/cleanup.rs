//! Cleanup: keep the newest N release directories of an application (the same release with
//! two configuration revisions is two directories), and always the one `current` points
//! at and the last one that succeeded. A release is first renamed aside to
//! `releases/.VERSION.deleting` and only then deleted, so a crash half-way never leaves a
//! half-deleted tree under a release's name. `shared/` is never touched. Removing a tree
//! unlinks files other releases share, which changes their change times: the kept
//! releases' stat indexes are brought up to date (see [`crate::link_changes`]).

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::fsync_dir;
use crate::journal::Journal;
use crate::layout::{AppLayout, Installed};
use crate::link_changes::remove_tree_keeping_indexes;
use crate::lock::AppLock;
use crate::stat_index::StatIndex;

/// What cleanup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Release directories deleted.
    pub removed: Vec<Installed>,
    /// Release directories left on disk, newest first.
    pub kept: Vec<Installed>,
}

/// Deletes all but the newest `keep` releases of `app` (by the journal's order of
/// deployment, or the directory's age when the journal does not know it), never the one
/// `current` points at nor the last one that succeeded.
pub fn cleanup(root: &Path, app: &str, keep: usize) -> AgentResult<CleanupReport> {
    let layout = AppLayout::new(root, app)?;
    let _lock = AppLock::acquire(root, app)?;
    if !layout.releases_dir().is_dir() {
        return Ok(CleanupReport::default());
    }
    remove_leftovers(&layout)?;
    let mut journal = Journal::load(root, app)?;
    let protected: HashSet<Installed> = layout
        .current()
        .into_iter()
        .chain(journal.last_succeeded.clone())
        .collect();
    let mut report = CleanupReport::default();
    for (rank, version) in newest_first(&layout, &journal)?.into_iter().enumerate() {
        if rank < keep || protected.contains(&version) {
            report.kept.push(version);
        } else {
            delete_release(&layout, &version)?;
            journal.forget(&version);
            report.removed.push(version);
        }
    }
    if !report.removed.is_empty() {
        journal.save(root, app)?;
    }
    Ok(report)
}

/// Removes the work directories (`releases/.*`) that crashed deploys and cleanups left
/// behind. Only called under the application lock, when nothing else uses them.
pub(crate) fn remove_leftovers(layout: &AppLayout) -> AgentResult<()> {
    let releases = layout.releases_dir();
    for entry in fs::read_dir(&releases).map_err(|e| AgentError::io(&releases, e))? {
        let entry = entry.map_err(|e| AgentError::io(&releases, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            remove_tree_keeping_indexes(layout, &entry.path(), || {})?;
        }
    }
    Ok(())
}

/// The releases on disk, most recently deployed first.
fn newest_first(layout: &AppLayout, journal: &Journal) -> AgentResult<Vec<Installed>> {
    let mut dated = Vec::new();
    for version in layout.releases_on_disk()? {
        // Journal times are in seconds: within one second, the journal's order decides.
        let position = journal.history.iter().position(|d| d.version == version);
        let key = match position {
            Some(position) => (journal.history[position].at, position as i64),
            None => {
                let dir = layout.release_dir(&version);
                let modified = fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .map_err(|e| AgentError::io(&dir, e))?;
                let at = modified
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                (at, -1)
            }
        };
        dated.push((key, version));
    }
    dated.sort_by(|a, b| b.cmp(a));
    Ok(dated.into_iter().map(|(_, version)| version).collect())
}

/// Renames the release aside, then deletes it (its read-only directories made writable
/// first).
fn delete_release(layout: &AppLayout, version: &Installed) -> AgentResult<()> {
    let releases = layout.releases_dir();
    let aside = layout.deleting_dir(version);
    failpoint("cleanup.before_rename_aside");
    let release = layout.release_dir(version);
    fs::rename(&release, &aside).map_err(|e| AgentError::io(&release, e))?;
    fsync_dir(&releases)?;
    remove_tree_keeping_indexes(layout, &aside, || failpoint("cleanup.mid_delete"))?;
    fsync_dir(&releases)?;
    StatIndex::forget(layout, version);
    failpoint("cleanup.after_delete");
    Ok(())
}
