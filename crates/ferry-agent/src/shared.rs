//! Shared paths: persistent data (uploads, local config, databases) kept in
//! `ROOT/apps/APP/shared/` and linked into every release, so it survives deploys and
//! rollbacks. Staging only puts each shared path's link into the release (pointing at
//! `shared/`, where the path may not exist yet): it writes nothing outside `releases/`.
//! Missing shared paths are created at the switch, once the deployment runs (after its
//! approvals): from the content the release holds there, written from the cache's checked
//! blobs as writable copies (never links: the blobs are shared), or empty. Nothing in
//! `shared/` is ever deleted or overwritten.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ferry_cas::blobs::BlobStore;
use ferry_cas::manifest::{EntryKind, Manifest};

use rustix::fd::OwnedFd;
use rustix::fs::{fsync, mkdirat, openat, renameat_with, Mode, OFlags, RenameFlags, CWD};
use rustix::io::Errno;

use crate::account::Account;
use crate::content::{ContentSources, FileFacts};
use crate::error::{AgentError, AgentResult};
use crate::failpoint::failpoint;
use crate::fsutil::{remove_tree, sync_filesystem};
use crate::layout::AppLayout;
use ferry_cas::release_config::{is_within, ReleaseConfig};

/// What preparing the shared paths for a switch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedReport {
    /// Every shared path (each a symlink in the release).
    pub linked: Vec<String>,
    /// The paths created in `shared/` for this release (from its content, or empty).
    pub initialised: Vec<String>,
}

/// The symlink target, relative to the link's directory, that leads from
/// `releases/VERSION/PATH` to `shared/PATH`.
pub fn link_target(path: &str) -> String {
    let depth = path.split('/').count();
    format!("{}shared/{path}", "../".repeat(depth + 1))
}

/// Refuses shared paths a link could not stand in for: one below a symlink or a file of the
/// release, or one that is itself a symlink.
pub fn check_shared_paths(manifest: &Manifest, config: &ReleaseConfig) -> AgentResult<()> {
    config
        .shared
        .iter()
        .try_for_each(|path| check_shareable(manifest, path))
}

/// Puts a symlink into `shared/` at every shared path of `config` inside `release` (a
/// release being staged, which holds nothing at those paths), making the directories that
/// hold the links where the release has none.
pub fn link_shared_paths(release: &Path, config: &ReleaseConfig) -> AgentResult<()> {
    for path in &config.shared {
        let in_release = release.join(path);
        let parent = in_release
            .parent()
            .expect("shared paths are inside the release");
        fs::create_dir_all(parent).map_err(|e| AgentError::io(parent, e))?;
        failpoint("shared.before_link");
        symlink(link_target(path), &in_release).map_err(|e| AgentError::io(&in_release, e))?;
    }
    Ok(())
}

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

/// Creates `shared/` and every shared path of `config` it lacks, from what `manifest` holds
/// there (its blobs in `cache`; a blob missing there is `AgentError::Missing`), or empty.
/// Run at the switch, never while staging.
///
/// With `account` (a root agent isolating the application), what is created becomes the
/// account's, and no symlink the application left in `shared/` is followed on the way.
pub fn initialise_shared_paths(
    layout: &AppLayout,
    manifest: &Manifest,
    config: &ReleaseConfig,
    cache: &BlobStore,
    account: Option<&Account>,
) -> AgentResult<SharedReport> {
    let mut report = SharedReport::default();
    // Hooks are told about `shared/` (FERRY_SHARED_DIR) whether or not the release uses it.
    let shared_dir = layout.shared_dir();
    fs::create_dir_all(&shared_dir).map_err(|e| AgentError::io(&shared_dir, e))?;
    let writer = ContentSources::new(layout, &[], cache);
    for path in &config.shared {
        if initialise(layout, manifest, config, &writer, path, account)? {
            report.initialised.push(path.clone());
        }
        report.linked.push(path.clone());
    }
    Ok(report)
}

/// Creates `shared/PATH` if absent: the release's content there, or an empty directory.
/// It is built in the staging area and renamed into place, so a crash never leaves half of
/// it looking like the real data. Returns whether it was created.
///
/// The directories that hold it are opened one at a time without following symlinks, and
/// the rename never replaces what is there: whatever the application does in `shared/`
/// meanwhile, nothing is written outside it, and nothing in it is overwritten.
fn initialise(
    layout: &AppLayout,
    manifest: &Manifest,
    config: &ReleaseConfig,
    writer: &ContentSources,
    path: &str,
    account: Option<&Account>,
) -> AgentResult<bool> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let in_shared = layout.shared_dir().join(path);
    match fs::symlink_metadata(&in_shared) {
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        // A symlink the application left among the parents: `open_parent` says so.
        Err(e) if e.kind() == ErrorKind::NotADirectory => {}
        Err(e) => return Err(AgentError::io(&in_shared, e)),
    }
    failpoint("shared.before_initialise");
    let (parents, name) = match path.rsplit_once('/') {
        Some((parents, name)) => (Some(parents), name),
        None => (None, path),
    };
    let parent = open_parent(&layout.shared_dir(), parents, account)?;
    let staging = layout.scratch_dir();
    fs::create_dir_all(&staging).map_err(|e| AgentError::io(&staging, e))?;
    let temp = staging.join(format!(
        "shared-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    remove_tree(&temp)?;
    let written = write_initial_content(manifest, config, writer, path, &temp);
    if let Err(error) = written {
        remove_tree(&temp)?;
        return Err(error);
    }
    if let Some(account) = account {
        account.own_tree(&temp)?;
    }
    sync_filesystem(&temp)?;
    failpoint("shared.before_initial_rename");
    match renameat_with(CWD, &temp, &parent, name, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        // Made meanwhile (by the application): what is there stays.
        Err(Errno::EXIST) => {
            remove_tree(&temp)?;
            return Ok(false);
        }
        Err(e) => return Err(AgentError::io(&in_shared, e.into())),
    }
    fsync(&parent).map_err(|e| AgentError::io(&in_shared, e.into()))?;
    Ok(true)
}

/// Opens `shared/PARENTS`, creating each missing directory (the account's, with one), one
/// component at a time and never through a symlink.
fn open_parent(
    shared: &Path,
    parents: Option<&str>,
    account: Option<&Account>,
) -> AgentResult<OwnedFd> {
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY;
    let mut dir =
        openat(CWD, shared, flags, Mode::empty()).map_err(|e| AgentError::io(shared, e.into()))?;
    let mut reached = shared.to_owned();
    for component in parents.into_iter().flat_map(|p| p.split('/')) {
        reached.push(component);
        let opened = match openat(&dir, component, flags, Mode::empty()) {
            Err(Errno::NOENT) => {
                match mkdirat(&dir, component, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(AgentError::io(&reached, e.into())),
                }
                if let Some(account) = account {
                    account.own_at(&dir, component, &reached)?;
                }
                openat(&dir, component, flags, Mode::empty())
            }
            opened => opened,
        };
        dir = match opened {
            Ok(next) => next,
            Err(Errno::LOOP | Errno::NOTDIR) => {
                return Err(AgentError::Refused(format!(
                    "{} is not a directory (a symlink, or a file): ferry creates shared paths \
                     only below real directories of shared/; move it away and deploy again",
                    reached.display()
                )))
            }
            Err(e) => return Err(AgentError::io(&reached, e.into())),
        };
    }
    Ok(dir)
}

/// Writes what the release holds at the shared path `path` (a file, or a directory and
/// everything below it, with the manifest's modes) at `dest`; an empty directory when it
/// holds nothing there.
fn write_initial_content(
    manifest: &Manifest,
    config: &ReleaseConfig,
    writer: &ContentSources,
    path: &str,
    dest: &Path,
) -> AgentResult<()> {
    let mut dir_modes = Vec::new();
    let mut any = false;
    for entry in manifest.entries.iter().filter(|e| is_within(&e.path, path)) {
        any = true;
        let target = match entry.path.strip_prefix(path) {
            Some("") | None => dest.to_owned(),
            Some(below) => dest.join(below.trim_start_matches('/')),
        };
        match &entry.kind {
            EntryKind::Dir { mode } => {
                fs::create_dir(&target).map_err(|e| AgentError::io(&target, e))?;
                dir_modes.push((target, *mode));
            }
            EntryKind::Symlink { target: points_to } => {
                symlink(points_to, &target).map_err(|e| AgentError::io(&target, e))?;
            }
            EntryKind::File { .. } => {
                let file = FileFacts::of(entry, config).expect("a file entry");
                writer.write_from_cache(&file, &target)?;
            }
        }
    }
    if !any {
        fs::create_dir(dest).map_err(|e| AgentError::io(dest, e))?;
    }
    // Deepest first, so a read-only directory is filled before it becomes read-only.
    for (dir, mode) in dir_modes.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
            .map_err(|e| AgentError::io(&dir, e))?;
    }
    Ok(())
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
