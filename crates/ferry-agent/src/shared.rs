//! Shared paths: persistent data (uploads, local config, databases) kept in
//! `ROOT/apps/APP/shared/` and linked into every release, so it survives deploys and
//! rollbacks. The first release that names a path gives it its initial content (copied,
//! never moved: the release's files may be hard links shared with other releases and the
//! cache). Nothing in `shared/` is ever deleted or overwritten.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_cas::manifest::{EntryKind, Manifest};

use crate::config::ReleaseConfig;
use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::{copy_tree, fsync_dir, remove_tree, sync_filesystem};
use crate::layout::AppLayout;

/// What linking the shared paths did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedReport {
    /// Every shared path, now a symlink in the release.
    pub linked: Vec<String>,
    /// The paths created in `shared/` by this release (from its content, or empty).
    pub initialised: Vec<String>,
}

/// The symlink target, relative to the link's directory, that leads from
/// `releases/VERSION/PATH` to `shared/PATH`.
pub fn link_target(path: &str) -> String {
    let depth = path.split('/').count();
    format!("{}shared/{path}", "../".repeat(depth + 1))
}

/// Replaces every shared path of `config` inside `release` (a release being staged) with a
/// symlink into `shared/`, creating the shared path first if it does not exist yet.
pub fn link_shared_paths(
    layout: &AppLayout,
    release: &Path,
    manifest: &Manifest,
    config: &ReleaseConfig,
) -> AgentResult<SharedReport> {
    let mut report = SharedReport::default();
    // Hooks are told about `shared/` (FERRY_SHARED_DIR) whether or not the release uses it.
    let shared_dir = layout.shared_dir();
    fs::create_dir_all(&shared_dir).map_err(|e| AgentError::io(&shared_dir, e))?;
    for path in &config.shared {
        check_shareable(manifest, path)?;
        if initialise(layout, release, path)? {
            report.initialised.push(path.clone());
        }
        let in_release = release.join(path);
        remove_tree(&in_release)?;
        let parent = in_release
            .parent()
            .expect("shared paths are inside the release");
        fs::create_dir_all(parent).map_err(|e| AgentError::io(parent, e))?;
        failpoint("shared.before_link");
        symlink(link_target(path), &in_release).map_err(|e| AgentError::io(&in_release, e))?;
        report.linked.push(path.clone());
    }
    Ok(report)
}

/// Refuses a shared path the link could not stand in for: one below a symlink or a file
/// of the release, or one that is itself a symlink.
fn check_shareable(manifest: &Manifest, path: &str) -> AgentResult<()> {
    let mut ancestor = String::new();
    for component in path.split('/') {
        if !ancestor.is_empty() {
            ancestor.push('/');
        }
        ancestor.push_str(component);
        let kind = manifest.get(&ancestor).map(|e| &e.kind);
        let refuse = |what: &str| {
            Err(AgentError::Refused(format!(
                "shared path {path:?}: {ancestor:?} is {what} in the release"
            )))
        };
        match kind {
            Some(EntryKind::Symlink { .. }) => return refuse("a symlink"),
            Some(EntryKind::File { .. }) if ancestor != path => return refuse("a file"),
            _ => {}
        }
    }
    Ok(())
}

/// Creates `shared/PATH` if absent: a copy of the release's content there, or an empty
/// directory. The copy is made in the staging area and renamed into place, so a crash
/// never leaves half of it looking like the real data. Returns whether it was created.
fn initialise(layout: &AppLayout, release: &Path, path: &str) -> AgentResult<bool> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let in_shared = layout.shared_dir().join(path);
    match fs::symlink_metadata(&in_shared) {
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(AgentError::io(&in_shared, e)),
    }
    failpoint("shared.before_initialise");
    let parent = in_shared.parent().expect("shared paths are inside shared/");
    fs::create_dir_all(parent).map_err(|e| AgentError::io(parent, e))?;
    let staging = layout.scratch_dir();
    fs::create_dir_all(&staging).map_err(|e| AgentError::io(&staging, e))?;
    let temp = staging.join(format!(
        "shared-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    remove_tree(&temp)?;
    let in_release = release.join(path);
    if fs::symlink_metadata(&in_release).is_ok() {
        copy_tree(&in_release, &temp)?;
    } else {
        fs::create_dir(&temp).map_err(|e| AgentError::io(&temp, e))?;
    }
    sync_filesystem(&temp)?;
    failpoint("shared.before_initial_rename");
    fs::rename(&temp, &in_shared).map_err(|e| AgentError::io(&in_shared, e))?;
    fsync_dir(parent)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_climb_out_of_the_release() {
        assert_eq!(link_target("uploads"), "../../shared/uploads");
        assert_eq!(
            link_target("config/local.ini"),
            "../../../shared/config/local.ini"
        );
        assert_eq!(link_target("a/b/c"), "../../../../shared/a/b/c");
    }
}
