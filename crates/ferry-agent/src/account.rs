//! The Unix account an application's commands run as, and the file ownership that keeps
//! each application's files out of the others' reach on a target whose agent runs as root.
//!
//! With an account, a root agent arranges an application's files so:
//! - `ROOT/apps/APP/` belongs to root and the account's group, mode 0750: no other
//!   application's user can enter it, so none can read its releases, configuration or data;
//! - its releases stay root's: the application's commands read them and cannot change them;
//! - `shared/` and everything created in it belong to the account: the application's data
//!   is its own to write;
//! - the configuration files rendered into a release (mode 0400) belong to the account, so
//!   the application reads its secrets and no one else does;
//! - hooks and health-check commands run as the account, with its group only.
//!
//! `ROOT/.ferry/` (the agent's credential, cache and state) stays root's, mode 0700.

use std::ffi::{CStr, CString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rustix::fd::AsFd;
use rustix::fs::{chownat, AtFlags, Gid, Uid, CWD};

use crate::error::{AgentError, AgentResult};

/// A user of the target's system, as its password database knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
}

impl Account {
    /// Looks `name` up in the system's user database.
    pub fn named(name: &str) -> Result<Account, String> {
        let c_name = CString::new(name).map_err(|_| format!("invalid user name {name:?}"))?;
        lookup(|entry, buf, result| unsafe {
            libc::getpwnam_r(c_name.as_ptr(), entry, buf.as_mut_ptr(), buf.len(), result)
        })?
        .ok_or_else(|| {
            format!(
                "no user {name} on this target: create it (`{} {name}`) or give the \
                 application another with `ferry app set APP --run-as USER`",
                ferry_domain::run_as::CREATE_USER
            )
        })
    }

    /// The user the agent runs as, when the system knows it.
    pub fn of_uid(uid: u32) -> Option<Account> {
        lookup(|entry, buf, result| unsafe {
            libc::getpwuid_r(uid, entry, buf.as_mut_ptr(), buf.len(), result)
        })
        .ok()
        .flatten()
    }

    /// The environment the application's commands start from: the account's own
    /// variables, with the agent's `PATH` and locale.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            ("HOME".to_owned(), self.home.display().to_string()),
            ("USER".to_owned(), self.name.clone()),
            ("LOGNAME".to_owned(), self.name.clone()),
            ("SHELL".to_owned(), "/bin/sh".to_owned()),
        ];
        let path =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".to_owned());
        vars.push(("PATH".to_owned(), path));
        for name in ["LANG", "LC_ALL", "TZ"] {
            if let Ok(value) = std::env::var(name) {
                vars.push((name.to_owned(), value));
            }
        }
        vars
    }

    /// Gives `path` (not following a symlink there) to this account and its group.
    pub fn own(&self, path: &Path) -> AgentResult<()> {
        self.chown(path, Some(self.uid))
    }

    /// Gives `path` to root and this account's group, so the account can read it but not
    /// change it.
    pub fn share_read_only(&self, path: &Path) -> AgentResult<()> {
        self.chown(path, Some(0))
    }

    /// Gives `dir` and everything below it (symlinks not followed) to this account.
    pub fn own_tree(&self, dir: &Path) -> AgentResult<()> {
        self.own(dir)?;
        let metadata = fs::symlink_metadata(dir).map_err(|e| AgentError::io(dir, e))?;
        if metadata.is_dir() {
            for entry in fs::read_dir(dir).map_err(|e| AgentError::io(dir, e))? {
                let entry = entry.map_err(|e| AgentError::io(dir, e))?;
                self.own_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Makes the application's directory `ROOT/apps/APP` enterable by this account and root
    /// only, and its `shared/` (created if missing) this account's; `ROOT/apps` can be
    /// passed through but not listed.
    pub fn arrange(&self, app_dir: &Path, shared_dir: &Path) -> AgentResult<()> {
        if let Some(apps) = app_dir.parent() {
            fs::set_permissions(apps, fs::Permissions::from_mode(0o711))
                .map_err(|e| AgentError::io(apps, e))?;
        }
        self.share_read_only(app_dir)?;
        fs::set_permissions(app_dir, fs::Permissions::from_mode(0o750))
            .map_err(|e| AgentError::io(app_dir, e))?;
        fs::create_dir_all(shared_dir).map_err(|e| AgentError::io(shared_dir, e))?;
        self.own(shared_dir)
    }

    /// Gives `name` in the directory `dir` (not following a symlink there) to this
    /// account; `shown` names it in an error.
    pub fn own_at(&self, dir: impl AsFd, name: &str, shown: &Path) -> AgentResult<()> {
        self.chown_at(dir, Path::new(name), Some(self.uid), shown)
    }

    fn chown(&self, path: &Path, uid: Option<u32>) -> AgentResult<()> {
        self.chown_at(CWD, path, uid, path)
    }

    fn chown_at(
        &self,
        dir: impl AsFd,
        path: &Path,
        uid: Option<u32>,
        shown: &Path,
    ) -> AgentResult<()> {
        chownat(
            dir,
            path,
            uid.map(Uid::from_raw),
            Some(Gid::from_raw(self.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| AgentError::io(shown, e.into()))
    }
}

/// Runs a reentrant password-database lookup with a buffer that grows until it fits.
fn lookup(
    call: impl Fn(*mut libc::passwd, &mut [libc::c_char], *mut *mut libc::passwd) -> libc::c_int,
) -> Result<Option<Account>, String> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: `passwd` is plain data; the call fills it and points its strings into
        // `buf`, which outlives every read below.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        match call(&mut entry, &mut buf, &mut result) {
            0 if result.is_null() => return Ok(None),
            // SAFETY: on success the strings are NUL-terminated and live in `buf`.
            0 => unsafe {
                let text =
                    |p: *const libc::c_char| CStr::from_ptr(p).to_string_lossy().into_owned();
                return Ok(Some(Account {
                    name: text(entry.pw_name),
                    uid: entry.pw_uid,
                    gid: entry.pw_gid,
                    home: PathBuf::from(text(entry.pw_dir)),
                }));
            },
            libc::ERANGE if size < 1 << 20 => size *= 4,
            error => {
                return Err(format!(
                    "reading the system's user database: {}",
                    std::io::Error::from_raw_os_error(error)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_and_strangers_are_not() {
        let root = Account::of_uid(0).expect("uid 0 is in every user database");
        assert_eq!((root.name.as_str(), root.uid), ("root", 0));
        assert_eq!(Account::named("root").unwrap(), root);
        let error = Account::named("no-such-user-of-ferry").unwrap_err();
        assert!(error.contains("no user no-such-user-of-ferry"), "{error}");
        assert!(Account::named("a\0b").is_err());
    }
}
