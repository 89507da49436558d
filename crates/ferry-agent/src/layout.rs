//! Where things live on a target:
//!
//! ```text
//! ROOT/apps/APP/releases/VERSION/     one complete tree per release
//! ROOT/apps/APP/releases/.VERSION.*   work in progress (staging, deleting): never served
//! ROOT/apps/APP/current               relative symlink `releases/VERSION`
//! ROOT/apps/APP/shared/               persistent data, linked into each release
//! ROOT/.ferry/cache/                  the content cache (a `ferry_cas::blobs::BlobStore`)
//! ROOT/.ferry/journal/APP.json        what succeeded, in which order, and what failed
//! ROOT/.ferry/staging/APP/            scratch space (hook output, copies on their way)
//! ROOT/.ferry/locks/APP.lock          held while the application is being changed
//! ROOT/.ferry/drift/APP.json          the drift of the release served, with when each
//!                                     path was first seen to differ
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{AgentError, AgentResult};

/// The directory holding the target's state: cache, journal, staging, locks.
pub fn state_dir(root: &Path) -> PathBuf {
    root.join(".ferry")
}

/// The content cache, opened with `ferry_cas::blobs::BlobStore::open`.
pub fn cache_dir(root: &Path) -> PathBuf {
    state_dir(root).join("cache")
}

/// Scratch space for files on their way somewhere else.
pub fn staging_dir(root: &Path) -> PathBuf {
    state_dir(root).join("staging")
}

/// The journal of one application.
pub fn journal_path(root: &Path, app: &str) -> PathBuf {
    state_dir(root).join("journal").join(format!("{app}.json"))
}

/// The lock file of one application.
pub fn lock_path(root: &Path, app: &str) -> PathBuf {
    state_dir(root).join("locks").join(format!("{app}.lock"))
}

/// The drift record of one application (see [`crate::drift`]).
pub fn drift_record_path(root: &Path, app: &str) -> PathBuf {
    state_dir(root).join("drift").join(format!("{app}.json"))
}

/// The paths of one application on a target.
#[derive(Clone, Debug)]
pub struct AppLayout {
    root: PathBuf,
    app: String,
}

impl AppLayout {
    /// The layout of `app` under `root`; refuses names that could leave the root.
    pub fn new(root: &Path, app: &str) -> AgentResult<AppLayout> {
        check_app_name(app)?;
        Ok(AppLayout {
            root: root.to_owned(),
            app: app.to_owned(),
        })
    }

    /// The target's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The application's name.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// `ROOT/apps/APP`.
    pub fn app_dir(&self) -> PathBuf {
        self.root.join("apps").join(&self.app)
    }

    /// `ROOT/apps/APP/releases`.
    pub fn releases_dir(&self) -> PathBuf {
        self.app_dir().join("releases")
    }

    /// `ROOT/apps/APP/releases/VERSION`.
    pub fn release_dir(&self, version: &str) -> PathBuf {
        self.releases_dir().join(version)
    }

    /// Where a release is built before it is renamed into place. Versions start with a
    /// letter or digit, so this can never be mistaken for a release.
    pub fn partial_dir(&self, version: &str) -> PathBuf {
        self.releases_dir().join(format!(".{version}.partial"))
    }

    /// Where a release is moved before it is deleted, so a half-deleted tree is never
    /// mistaken for a release.
    pub fn deleting_dir(&self, version: &str) -> PathBuf {
        self.releases_dir().join(format!(".{version}.deleting"))
    }

    /// `ROOT/apps/APP/current`.
    pub fn current_link(&self) -> PathBuf {
        self.app_dir().join("current")
    }

    /// `ROOT/.ferry/staging/APP`: this application's scratch space, emptied at the start
    /// of each deploy.
    pub fn scratch_dir(&self) -> PathBuf {
        staging_dir(&self.root).join(&self.app)
    }

    /// `ROOT/apps/APP/shared`.
    pub fn shared_dir(&self) -> PathBuf {
        self.app_dir().join("shared")
    }

    /// The symlink target `current` has when it serves `version`.
    pub fn current_target(version: &str) -> String {
        format!("releases/{version}")
    }

    /// The version `current` points at, if any.
    pub fn current_version(&self) -> Option<String> {
        let target = fs::read_link(self.current_link()).ok()?;
        let version = target.to_str()?.strip_prefix("releases/")?;
        check_version(version).ok()?;
        Some(version.to_owned())
    }

    /// Whether `releases/VERSION` is on disk (complete, since only complete trees get
    /// that name).
    pub fn has_release(&self, version: &str) -> bool {
        fs::symlink_metadata(self.release_dir(version)).is_ok_and(|m| m.is_dir())
    }

    /// The versions on disk under `releases/`, unordered.
    pub fn releases_on_disk(&self) -> AgentResult<Vec<String>> {
        let dir = self.releases_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(AgentError::io(&dir, e)),
        };
        let mut versions = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| AgentError::io(&dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_version(&name).is_ok() && entry.file_type().is_ok_and(|t| t.is_dir()) {
                versions.push(name);
            }
        }
        Ok(versions)
    }
}

/// The version `ROOT/apps/APP/current` points at, if any.
pub fn current_version(root: &Path, app: &str) -> Option<String> {
    AppLayout::new(root, app).ok()?.current_version()
}

/// Application names: `[a-z0-9][a-z0-9-]{0,62}`.
pub fn check_app_name(app: &str) -> AgentResult<()> {
    let valid = (1..=63).contains(&app.len())
        && app
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && b == b'-'));
    if valid {
        Ok(())
    } else {
        Err(AgentError::Refused(format!(
            "{app:?} is not an application name ([a-z0-9][a-z0-9-]{{0,62}})"
        )))
    }
}

/// Versions: `[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`.
pub fn check_version(version: &str) -> AgentResult<()> {
    let valid = (1..=64).contains(&version.len())
        && version.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'.' | b'_' | b'+' | b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(AgentError::Refused(format!(
            "{version:?} is not a version ([A-Za-z0-9][A-Za-z0-9._+-]{{0,63}})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        for good in ["a", "shop", "shop-2", "0"] {
            assert!(check_app_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a/b", "..", "a_b", &"a".repeat(64)] {
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
        for good in ["1.0.0", "v2", "1.0+build.7", "2024_01-rc1"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["", ".1", "..", "1/2", "-x", "a b", &"1".repeat(65)] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn current_version_reads_the_relative_symlink() {
        let root = tempfile::tempdir().unwrap();
        let layout = AppLayout::new(root.path(), "shop").unwrap();
        assert_eq!(current_version(root.path(), "shop"), None);
        fs::create_dir_all(layout.release_dir("1.0")).unwrap();
        std::os::unix::fs::symlink("releases/1.0", layout.current_link()).unwrap();
        assert_eq!(current_version(root.path(), "shop").as_deref(), Some("1.0"));
        assert_eq!(layout.releases_on_disk().unwrap(), ["1.0"]);
        assert!(layout.has_release("1.0") && !layout.has_release("2.0"));
    }
}
