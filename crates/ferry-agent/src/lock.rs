//! One change at a time per application: deploy, rollback and cleanup hold an exclusive
//! `flock` on `ROOT/.ferry/locks/APP.lock`, so two agents (or two threads of one) never
//! stage, switch or delete the same application's releases at once. The kernel drops the
//! lock when its holder dies, so a crash never leaves it stuck. The drift check only looks,
//! but it must see a tree no one is exchanging: it takes the lock too, without waiting
//! ([`AppLock::try_acquire`]), and skips a busy application.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::error::{AgentError, AgentResult};
use crate::layout::lock_path;

/// Held while an application is being changed; released when dropped.
#[derive(Debug)]
pub struct AppLock {
    _file: File,
}

impl AppLock {
    /// Waits for and takes the lock of `app`.
    pub fn acquire(root: &Path, app: &str) -> AgentResult<AppLock> {
        let (path, file) = open(root, app)?;
        flock(&file, FlockOperation::LockExclusive).map_err(|e| AgentError::errno(&path, e))?;
        Ok(AppLock { _file: file })
    }

    /// Takes the lock of `app` if no one holds it; `None` when someone does.
    pub fn try_acquire(root: &Path, app: &str) -> AgentResult<Option<AppLock>> {
        let (path, file) = open(root, app)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(AppLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(AgentError::errno(&path, e)),
        }
    }
}

/// The lock file of `app`, opened (created if need be).
fn open(root: &Path, app: &str) -> AgentResult<(std::path::PathBuf, File)> {
    let path = lock_path(root, app);
    let dir = path.parent().expect("lock files live in a directory");
    fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AgentError::io(&path, e))?;
    Ok((path, file))
}
