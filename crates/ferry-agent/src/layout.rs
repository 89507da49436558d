//! Where things live on a target:
//!
//! ```text
//! ROOT/apps/APP/releases/VERSION/     one complete tree per release
//! ROOT/apps/APP/releases/VERSION@N/   the release with configuration revision N rendered
//!                                     into it (see [`Installed`])
//! ROOT/apps/APP/releases/.VERSION.*   work in progress (staging, deleting): never served
//! ROOT/apps/APP/current               relative symlink `releases/VERSION[@N]`
//! ROOT/apps/APP/shared/               persistent data, linked into each release
//! ROOT/.ferry/cache/                  the content cache (a `ferry_cas::blobs::BlobStore`)
//! ROOT/.ferry/cache.lock              held shared while the cache is relied on, and
//!                                     exclusively while it is pruned
//! ROOT/.ferry/journal/APP.json        what succeeded, in which order, and what failed
//! ROOT/.ferry/staging/APP/            scratch space (hook output, copies on their way)
//! ROOT/.ferry/locks/APP.lock          held while the application is being changed
//! ROOT/.ferry/drift/APP.json          the drift of the release served, with when each
//!                                     path was first seen to differ
//! ```

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{AgentError, AgentResult};
use ferry_domain::served::Served;

/// The directory holding the target's state: cache, journal, staging, locks.
pub fn state_dir(root: &Path) -> PathBuf {
    root.join(".ferry")
}

/// The content cache, opened with `ferry_cas::blobs::BlobStore::open`.
pub fn cache_dir(root: &Path) -> PathBuf {
    state_dir(root).join("cache")
}

/// The lock of the content cache (see [`crate::lock::CacheLock`]): beside the cache, not
/// in `locks/`, where it could be mistaken for an application's.
pub fn cache_lock_path(root: &Path) -> PathBuf {
    state_dir(root).join("cache.lock")
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

    /// `ROOT/apps/APP/releases/VERSION[@N]`.
    pub fn release_dir(&self, installed: &Installed) -> PathBuf {
        self.releases_dir().join(installed.dir_name())
    }

    /// Where a release is built before it is renamed into place. Versions start with a
    /// letter or digit, so this can never be mistaken for a release.
    pub fn partial_dir(&self, installed: &Installed) -> PathBuf {
        self.releases_dir()
            .join(format!(".{}.partial", installed.dir_name()))
    }

    /// Where a release is moved before it is deleted, so a half-deleted tree is never
    /// mistaken for a release.
    pub fn deleting_dir(&self, installed: &Installed) -> PathBuf {
        self.releases_dir()
            .join(format!(".{}.deleting", installed.dir_name()))
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

    /// The symlink target `current` has when it serves `installed`.
    pub fn current_target(installed: &Installed) -> String {
        format!("releases/{}", installed.dir_name())
    }

    /// The release directory `current` points at, if any (`releases/VERSION`, as older
    /// agents wrote it, is revision 0).
    pub fn current(&self) -> Option<Installed> {
        let target = fs::read_link(self.current_link()).ok()?;
        Installed::parse(target.to_str()?.strip_prefix("releases/")?)
    }

    /// The version `current` points at, if any, whatever configuration it was rendered with.
    pub fn current_version(&self) -> Option<String> {
        self.current().map(|installed| installed.version)
    }

    /// Whether `releases/VERSION[@N]` is on disk (complete, since only complete trees get
    /// that name).
    pub fn has_release(&self, installed: &Installed) -> bool {
        fs::symlink_metadata(self.release_dir(installed)).is_ok_and(|m| m.is_dir())
    }

    /// The release directories on disk under `releases/`, unordered.
    pub fn releases_on_disk(&self) -> AgentResult<Vec<Installed>> {
        let dir = self.releases_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(AgentError::io(&dir, e)),
        };
        let mut installed = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| AgentError::io(&dir, e))?;
            let Some(release) = entry.file_name().to_str().and_then(Installed::parse) else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                installed.push(release);
            }
        }
        Ok(installed)
    }
}

/// A release as a target holds it: its version, and the configuration revision rendered
/// into it (0: none). Each is its own directory, `releases/VERSION` for revision 0 and
/// `releases/VERSION@N` for revision N (`@` is not in the version alphabet), so deploying
/// the same release with another configuration stages a new directory, linking the rest
/// from the other. Written in the journal as its directory name.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Installed {
    pub version: String,
    /// The configuration revision (0: none).
    pub config: u64,
}

impl Installed {
    /// `version` with configuration revision `config` (0: none).
    pub fn new(version: &str, config: u64) -> Installed {
        Installed {
            version: version.to_owned(),
            config,
        }
    }

    /// The name of its directory under `releases/`: `VERSION`, or `VERSION@N` (the
    /// label of `ferry_domain::served::Served`, as the server names what a target serves).
    pub fn dir_name(&self) -> String {
        self.served().label()
    }

    /// The release a directory name stands for; `None` for anything else (work
    /// directories, a revision written `@0` or with leading zeros).
    pub fn parse(name: &str) -> Option<Installed> {
        let Served { version, config } = Served::parse(name);
        check_version(&version).ok()?;
        Some(Installed { version, config })
    }

    /// Refuses a version that could leave `releases/`.
    pub fn check(&self) -> AgentResult<()> {
        check_version(&self.version)
    }

    fn served(&self) -> Served {
        Served::new(self.version.clone(), self.config)
    }
}

/// `1.2.0`, or `1.2.0 with configuration 3`.
impl fmt::Display for Installed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.served().fmt(f)
    }
}

impl TryFrom<String> for Installed {
    type Error = String;

    fn try_from(name: String) -> Result<Installed, String> {
        Installed::parse(&name).ok_or_else(|| format!("{name:?} names no release directory"))
    }
}

impl From<Installed> for String {
    fn from(installed: Installed) -> String {
        installed.dir_name()
    }
}

/// The version `ROOT/apps/APP/current` points at, if any.
pub fn current_version(root: &Path, app: &str) -> Option<String> {
    AppLayout::new(root, app).ok()?.current_version()
}

/// The release directory `ROOT/apps/APP/current` points at, if any.
pub fn current_installed(root: &Path, app: &str) -> Option<Installed> {
    AppLayout::new(root, app).ok()?.current()
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
        let one = Installed::new("1.0", 0);
        fs::create_dir_all(layout.release_dir(&one)).unwrap();
        std::os::unix::fs::symlink("releases/1.0", layout.current_link()).unwrap();
        assert_eq!(current_version(root.path(), "shop").as_deref(), Some("1.0"));
        assert_eq!(layout.current(), Some(one.clone()));
        assert_eq!(
            layout.releases_on_disk().unwrap(),
            std::slice::from_ref(&one)
        );
        assert!(layout.has_release(&one) && !layout.has_release(&Installed::new("2.0", 0)));
        // The same release with a configuration revision is another directory.
        let configured = Installed::new("1.0", 7);
        assert!(!layout.has_release(&configured));
        fs::create_dir_all(layout.release_dir(&configured)).unwrap();
        fs::create_dir_all(layout.partial_dir(&configured)).unwrap();
        let mut on_disk = layout.releases_on_disk().unwrap();
        on_disk.sort();
        assert_eq!(on_disk, [one, configured.clone()]);
        fs::remove_file(layout.current_link()).unwrap();
        std::os::unix::fs::symlink(
            AppLayout::current_target(&configured),
            layout.current_link(),
        )
        .unwrap();
        assert_eq!(layout.current(), Some(configured));
        assert_eq!(current_version(root.path(), "shop").as_deref(), Some("1.0"));
    }

    #[test]
    fn release_directory_names_round_trip_and_old_names_are_revision_0() {
        // (directory name, what it stands for)
        let cases: &[(&str, Option<(&str, u64)>)] = &[
            ("1.0", Some(("1.0", 0))),
            ("1.0+build.7", Some(("1.0+build.7", 0))),
            ("1.0@1", Some(("1.0", 1))),
            (
                "2.3.4-rc1@18446744073709551615",
                Some(("2.3.4-rc1", u64::MAX)),
            ),
            ("1.0@0", None),
            ("1.0@07", None),
            ("1.0@", None),
            ("1.0@x", None),
            ("1.0@1@2", None),
            ("@1", None),
            (".1.0@1.partial", None),
            (".1.0.deleting", None),
            ("1.0@18446744073709551616", None),
        ];
        for (name, expected) in cases {
            let parsed = Installed::parse(name);
            assert_eq!(
                parsed,
                expected.map(|(version, config)| Installed::new(version, config)),
                "{name}"
            );
            if let Some(installed) = parsed {
                assert_eq!(installed.dir_name(), *name);
                let json = serde_json::to_string(&installed).unwrap();
                assert_eq!(json, format!("{name:?}"));
                assert_eq!(serde_json::from_str::<Installed>(&json).unwrap(), installed);
            }
        }
    }
}
