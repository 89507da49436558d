//! Turning a source (directory, tarball, git, svn) into a directory tree to scan.

pub mod tarball;
pub mod vcs;

/// Bounds on what one release may expand to, so a hostile archive (a tar bomb) is refused
/// before it fills the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of file content.
    pub max_bytes: u64,
    /// Number of entries (files, directories and symlinks).
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 20 * 1024 * 1024 * 1024,
            max_entries: 1_000_000,
        }
    }
}

use std::path::{Path, PathBuf};

use crate::error::{CasError, CasResult};
use crate::source::{Source, SourceSpec};

/// A tree ready to scan, and where it came from. A tree unpacked or exported into a
/// temporary directory lives as long as this value.
pub struct PreparedTree {
    pub root: PathBuf,
    pub source: Source,
    _staging: Option<Staging>,
}

/// A temporary directory a source is unpacked or exported into, removed with everything in
/// it when dropped, also when the tree made some of its directories read-only (a tarball
/// may say so): each is made writable first, so nothing stays behind.
struct Staging(tempfile::TempDir);

impl Drop for Staging {
    fn drop(&mut self) {
        make_writable(self.0.path());
        // The `TempDir` removes the tree next.
    }
}

/// Gives the owner full access to `dir` and every directory below it (never following
/// symlinks), so that the tree can be removed.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !metadata.is_dir() {
        return;
    }
    let mode = metadata.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o700));
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            make_writable(&entry.path());
        }
    }
}

/// Makes a directory tree of a source: a directory as it is; a tarball unpacked, a git ref
/// or svn revision exported, each into a temporary directory.
pub fn prepare(spec: &SourceSpec, limits: &Limits) -> CasResult<PreparedTree> {
    let staging = || {
        tempfile::Builder::new()
            .prefix("ferry-release-")
            .tempdir()
            .map(Staging)
            .map_err(|e| CasError::io(&std::env::temp_dir(), e))
    };
    match spec {
        SourceSpec::Path(path) => {
            let given = Path::new(path);
            let metadata = std::fs::metadata(given).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => CasError::Source(format!(
                    "{path} does not exist: give a directory, a .tar, .tar.gz or .tar.zst file, git+URL#REF or svn+URL@REV"
                )),
                _ => CasError::io(given, e),
            })?;
            let absolute = std::fs::canonicalize(given).map_err(|e| CasError::io(given, e))?;
            let shown = absolute.display().to_string();
            if metadata.is_dir() {
                return Ok(PreparedTree {
                    root: absolute,
                    source: Source::Directory { path: shown },
                    _staging: None,
                });
            }
            let dir = staging()?;
            tarball::extract(&absolute, dir.0.path(), limits)?;
            Ok(PreparedTree {
                root: dir.0.path().to_owned(),
                source: Source::Tarball { path: shown },
                _staging: Some(dir),
            })
        }
        SourceSpec::Git { url, reference } => {
            let dir = staging()?;
            let source = vcs::export_git(url, reference, dir.0.path())?;
            Ok(PreparedTree {
                root: dir.0.path().to_owned(),
                source,
                _staging: Some(dir),
            })
        }
        SourceSpec::Svn { url, revision } => {
            let dir = staging()?;
            let source = vcs::export_svn(url, *revision, dir.0.path())?;
            Ok(PreparedTree {
                root: dir.0.path().to_owned(),
                source,
                _staging: Some(dir),
            })
        }
    }
}
