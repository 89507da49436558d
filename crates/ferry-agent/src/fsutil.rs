//! Small filesystem helpers the other modules share: durable directory entries, removing
//! read-only trees, hashing files.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ferry_cas::hash::ContentHash;

use crate::error::{AgentError, AgentResult};

/// Makes the entries of `dir` (creations, renames, removals) durable.
pub fn fsync_dir(dir: &Path) -> AgentResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AgentError::io(dir, e))
}

/// Flushes everything written on the filesystem holding `path`: one `syncfs` instead of
/// one `fsync` per file keeps staging ten thousand small files fast.
pub fn sync_filesystem(path: &Path) -> AgentResult<()> {
    let dir = File::open(path).map_err(|e| AgentError::io(path, e))?;
    rustix::fs::syncfs(&dir).map_err(|e| AgentError::errno(path, e))
}

/// Removes `path` whatever it is; a tree is made writable first, because the application
/// may have created read-only files and directories in it. Absent is fine.
pub fn remove_tree(path: &Path) -> AgentResult<()> {
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(AgentError::io(path, e)),
    };
    if !metadata.is_dir() {
        return fs::remove_file(path).map_err(|e| AgentError::io(path, e));
    }
    make_writable(path)?;
    fs::remove_dir_all(path).map_err(|e| AgentError::io(path, e))
}

/// Gives the owner read, write and search permission on every directory of the tree, so
/// everything in it can be listed and unlinked. Symlinks are not followed.
pub fn make_writable(dir: &Path) -> AgentResult<()> {
    let metadata = fs::symlink_metadata(dir).map_err(|e| AgentError::io(dir, e))?;
    let mode = metadata.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))
            .map_err(|e| AgentError::io(dir, e))?;
    }
    for child in fs::read_dir(dir).map_err(|e| AgentError::io(dir, e))? {
        let child = child.map_err(|e| AgentError::io(dir, e))?;
        if child.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&child.path())?;
        }
    }
    Ok(())
}

/// The BLAKE3 hash of the file's whole content.
pub fn hash_file(path: &Path) -> std::io::Result<ContentHash> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(File::open(path)?)?;
    Ok(hasher.finalize().into())
}

/// The permission bits of a mode.
pub fn permission_bits(metadata: &fs::Metadata) -> u32 {
    metadata.permissions().mode() & 0o7777
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn read_only_trees_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("ro/inner")).unwrap();
        fs::write(tree.join("ro/inner/file"), b"x").unwrap();
        fs::set_permissions(
            tree.join("ro/inner/file"),
            fs::Permissions::from_mode(0o400),
        )
        .unwrap();
        symlink("ro", tree.join("link")).unwrap();
        fs::set_permissions(tree.join("ro/inner"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(tree.join("ro"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(&tree, fs::Permissions::from_mode(0o555)).unwrap();

        remove_tree(&tree).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
    }
}
