//! Files in the data directory, written so that a crash leaves the old or the new content,
//! never a torn one: temp file, write, fsync, rename, fsync the directory.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use anyhow::{bail, Context};

/// Creates `dir` (and its parents) readable only by its owner, if it does not exist.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))
}

/// Replaces `path` with `contents`, mode 0600, atomically and durably.
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .context("a file path has a parent directory")?;
    let name = path.file_name().context("a file path has a name")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Makes the entries of `dir` (a rename in it) durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// Where the audit key is kept when `--audit-key` names no file: beside the database, where
/// anyone who can read the data directory can read it too.
pub const AUDIT_KEY_FILE: &str = "audit-key";

/// The audit chain's key: from `key_file` (`--audit-key`, best outside the data directory,
/// so a copy of the data directory cannot forge the trail) or else `DATA/audit-key`,
/// created on first start. A database without its key cannot be verified, so a missing key
/// beside an existing database stops the start.
pub fn load_or_create_audit_key(
    data_dir: &Path,
    key_file: Option<&Path>,
    database_exists: bool,
) -> anyhow::Result<[u8; 32]> {
    let beside_database = data_dir.join(AUDIT_KEY_FILE);
    let key_path = key_file.unwrap_or(&beside_database);
    let key = match fs::read_to_string(key_path) {
        Ok(text) => parse_key(text.trim()).with_context(|| {
            format!(
                "{} is not 64 hex digits; restore it from a backup",
                key_path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if database_exists {
                bail!(
                    "{} is missing but the database exists: if the key lives elsewhere (or on the server that started on this database first), pass `--audit-key FILE` or copy it here; otherwise restore it from a backup, or the audit trail cannot be verified",
                    key_path.display()
                );
            }
            create_key(key_path, "audit key")?
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", key_path.display())),
    };
    warn_if_readable_by_others(key_path, "audit key");
    if key_file.is_some() && beside_database.exists() {
        tracing::warn!(
            "{} still exists beside the database although --audit-key names {}: anyone who can read the data directory could forge the audit trail with it; remove it once {} holds the key",
            beside_database.display(),
            key_path.display(),
            key_path.display()
        );
    }
    Ok(key)
}

/// Creates `path` holding a new key (`what` names it), refused with what to do when its
/// directory does not exist (a mistyped `--audit-key` or `--secret-key` must not scatter
/// keys about).
pub fn create_key(path: &Path, what: &str) -> anyhow::Result<[u8; 32]> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        if !dir.is_dir() {
            bail!(
                "cannot create the {what} {}: the directory {} does not exist; create it, readable by the server's user only",
                path.display(),
                dir.display()
            );
        }
    }
    write_new_key(path)
}

/// Writes a new random 256-bit key to `path` as 64 hex digits (mode 0600), and returns it.
pub fn write_new_key(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).context("reading random bytes for a key")?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_private_file(path, format!("{hex}\n").as_bytes())?;
    Ok(key)
}

/// Logs a warning when users other than the owner may read the key (`what` names it).
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "the {what} {} can be read by other users (mode {:o}): `chmod 600` it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
}

/// A key written as 64 hex digits.
pub fn parse_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_bad_ones_are_refused() {
        assert_eq!(parse_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_key(&"ab".repeat(31)), None);
        assert_eq!(parse_key(&"zz".repeat(32)), None);
        assert_eq!(parse_key(&"é".repeat(32)), None);
    }
}
