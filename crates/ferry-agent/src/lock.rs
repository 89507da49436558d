//! Locks held across threads and processes, as `flock`s the kernel drops when their holder
//! dies, so a crash never leaves one stuck.
//!
//! One change at a time per application: deploy, rollback and cleanup hold an exclusive
//! lock on `ROOT/.ferry/locks/APP.lock`, so two agents (or two threads of one) never
//! stage, switch or delete the same application's releases at once. The drift check only
//! looks, but it must see a tree no one is exchanging: it takes the lock too, without
//! waiting ([`AppLock::try_acquire`]), and skips a busy application.
//!
//! The content cache's blobs stay put while anyone relies on them: whatever finds a blob
//! in the cache and uses it later holds `ROOT/.ferry/cache.lock` shared ([`CacheLock`]);
//! pruning the cache holds it exclusively, and only when no one else holds it.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::{AgentError, AgentResult};
use crate::layout::{cache_lock_path, lock_path};

/// Held while an application is being changed; released when dropped.
#[derive(Debug)]
pub struct AppLock {
    _file: File,
}

impl AppLock {
    /// Waits for and takes the lock of `app`.
    pub fn acquire(root: &Path, app: &str) -> AgentResult<AppLock> {
        let file = wait_for(&lock_path(root, app), FlockOperation::LockExclusive)?;
        Ok(AppLock { _file: file })
    }

    /// Takes the lock of `app` if no one holds it; `None` when someone does.
    pub fn try_acquire(root: &Path, app: &str) -> AgentResult<Option<AppLock>> {
        let file = take_if_free(&lock_path(root, app))?;
        Ok(file.map(|file| AppLock { _file: file }))
    }
}

/// Held while the content cache is relied on (shared) or pruned (exclusive); released
/// when dropped.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

impl CacheLock {
    /// Waits for (only a prune under way) and takes a share of the cache's lock: no blob
    /// is pruned until it is dropped.
    pub fn shared(root: &Path) -> AgentResult<CacheLock> {
        let file = wait_for(&cache_lock_path(root), FlockOperation::LockShared)?;
        Ok(CacheLock { _file: file })
    }

    /// Takes the cache's lock for pruning if no one holds any of it; `None` when someone
    /// does.
    pub fn try_exclusive(root: &Path) -> AgentResult<Option<CacheLock>> {
        let file = take_if_free(&cache_lock_path(root))?;
        Ok(file.map(|file| CacheLock { _file: file }))
    }
}

/// Waits for and takes the lock on `path` (`operation`: shared or exclusive).
fn wait_for(path: &Path, operation: FlockOperation) -> AgentResult<File> {
    let file = open(path)?;
    flock(&file, operation).map_err(|e| AgentError::errno(path, e))?;
    Ok(file)
}

/// Takes the lock on `path` exclusively if no one holds any of it; `None` when someone does.
fn take_if_free(path: &Path) -> AgentResult<Option<File>> {
    let file = open(path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(AgentError::errno(path, e)),
    }
}

/// The lock file at `path`, opened (created, with its directory, if need be).
fn open(path: &Path) -> AgentResult<File> {
    let dir: PathBuf = path
        .parent()
        .expect("lock files live in a directory")
        .into();
    fs::create_dir_all(&dir).map_err(|e| AgentError::io(&dir, e))?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| AgentError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_is_pruned_only_when_no_one_relies_on_it() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let (one, two) = (
            CacheLock::shared(root).unwrap(),
            CacheLock::shared(root).unwrap(),
        );
        assert!(CacheLock::try_exclusive(root).unwrap().is_none());
        drop(one);
        assert!(CacheLock::try_exclusive(root).unwrap().is_none());
        drop(two);
        let pruning = CacheLock::try_exclusive(root).unwrap();
        assert!(pruning.is_some());
        assert!(CacheLock::try_exclusive(root).unwrap().is_none());
        // Application locks are apart from it.
        assert!(AppLock::try_acquire(root, "shop").unwrap().is_some());
    }
}
