//! Whether a server runs on a data directory: every server holds `DATA/server.lock` shared
//! while it runs (several may share a directory), and a command that must not run beside
//! one (`ferry server migrate`) takes it exclusively or refuses. The lock goes with the
//! process, also when it is killed.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::Context;
use rustix::fs::{flock, FlockOperation};

/// The lock file in the data directory.
const LOCK_FILE: &str = "server.lock";

/// A held lock on a data directory; released when dropped.
pub struct DataDirLock {
    _file: File,
}

fn open(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

/// Marks the data directory as in use by this server, beside any others.
pub fn hold_as_server(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    let file = open(data_dir)?;
    flock(&file, FlockOperation::NonBlockingLockShared).with_context(|| {
        format!(
            "{} is being moved to PostgreSQL (`ferry server migrate`); start the server when it is done",
            data_dir.display()
        )
    })?;
    Ok(DataDirLock { _file: file })
}

/// Takes the data directory for a command no server may run beside, or `None` when a
/// server runs on it.
pub fn hold_alone(data_dir: &Path) -> anyhow::Result<Option<DataDirLock>> {
    let file = open(data_dir)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(DataDirLock { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("locking {}", data_dir.join(LOCK_FILE).display())),
    }
}
