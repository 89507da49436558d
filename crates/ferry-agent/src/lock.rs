//! One change at a time per application: deploy, rollback and cleanup hold an exclusive
//! `flock` on `ROOT/.ferry/locks/APP.lock`, so two agents (or two threads of one) never
//! stage, switch or delete the same application's releases at once. The kernel drops the
//! lock when its holder dies, so a crash never leaves it stuck.

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
        let path = lock_path(root, app);
        let dir = path.parent().expect("lock files live in a directory");
        fs::create_dir_all(dir).map_err(|e| AgentError::io(dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| AgentError::io(&path, e))?;
        flock(&file, FlockOperation::LockExclusive).map_err(|e| AgentError::errno(&path, e))?;
        Ok(AppLock { _file: file })
    }
}
