//! The secret key: what configuration secrets are encrypted with at rest. It lives in a file
//! outside the database (`DATA/secret-key` by default, or `--secret-key FILE`), 64 hex
//! digits, mode 0600; servers sharing a database share the file, as they share the audit
//! key. A copy of the database alone reveals no secret.
//!
//! Each secret is sealed with XChaCha20-Poly1305 under the key and a random 192-bit nonce,
//! bound to its application and key name (the associated data), so a sealed value copied
//! to another application or key does not open. The key's id (a hash of the key, never the
//! key) is claimed in the database by the first server that starts, and stored with each
//! revision that holds secrets: a server started with another key says so before serving
//! anything, even before any secret exists.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ferry_domain::config_revision::{Setting, Settings};
use ferry_store::{ConfigRevision, StoredEntry, StoredValue};

use crate::files::{create_key, parse_key, warn_if_readable_by_others};

/// The key's file in the data directory when `--secret-key` does not name one.
pub const SECRET_KEY_FILE: &str = "secret-key";

/// What a sealed value starts with: the format's version.
const SEALED_PREFIX: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// The key secrets are sealed with, and its id.
#[derive(Clone)]
pub struct SecretKey {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

/// Where a secret belongs: what its sealing is bound to.
#[derive(Clone, Copy, Debug)]
struct SealedFor<'a> {
    pub app: &'a str,
    pub key: &'a str,
}

impl SealedFor<'_> {
    fn associated_data(&self) -> Vec<u8> {
        format!("ferry config secret\0{}\0{}", self.app, self.key).into_bytes()
    }
}

impl SecretKey {
    pub fn from_bytes(key: [u8; 32]) -> SecretKey {
        let id = blake3::derive_key("ferry secret key id v1", &key);
        let id = id[..8].iter().map(|b| format!("{b:02x}")).collect();
        SecretKey { key, id }
    }

    /// The key's id: 16 hex digits derived from the key, safe to show and store.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `plaintext` sealed for `place`.
    fn seal(&self, place: SealedFor<'_>, plaintext: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).context("reading random bytes for a nonce")?;
        let cipher = XChaCha20Poly1305::new((&self.key).into());
        let aad = place.associated_data();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing the value of {} failed", place.key))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(bytes)))
    }

    /// The value `sealed` holds, if this key sealed it for `place`; the error never holds
    /// any of it.
    fn open(&self, place: SealedFor<'_>, sealed: &str) -> Result<String, String> {
        let refused = || {
            format!(
                "the secret {} of {} cannot be opened with secret key {}: it was sealed with another key or changed in the database",
                place.key, place.app, self.id
            )
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|text| STANDARD_NO_PAD.decode(text).ok())
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or_else(refused)?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new((&self.key).into());
        let aad = place.associated_data();
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| refused())?;
        String::from_utf8(plain).map_err(|_| refused())
    }
}

impl SecretKey {
    /// Every key of `revision` with its value in clear, its secrets opened; the error names
    /// the secret that does not open, never a byte of it.
    pub fn open_all(&self, revision: &ConfigRevision) -> Result<Settings, String> {
        (revision.entries.iter())
            .map(|entry| {
                let setting = match &entry.value {
                    StoredValue::Plain(value) => Setting {
                        value: value.clone(),
                        secret: false,
                    },
                    StoredValue::Sealed(sealed) => {
                        let place = SealedFor {
                            app: &revision.app,
                            key: entry.key.as_str(),
                        };
                        let value = self.open(place, sealed)?;
                        Setting {
                            value,
                            secret: true,
                        }
                    }
                };
                Ok((entry.key.clone(), setting))
            })
            .collect()
    }

    /// `settings` of `app` as the store keeps them: its secrets sealed.
    pub fn seal_all(&self, app: &str, settings: &Settings) -> anyhow::Result<Vec<StoredEntry>> {
        (settings.iter())
            .map(|(key, setting)| {
                let value = match setting.secret {
                    false => StoredValue::Plain(setting.value.clone()),
                    true => {
                        let place = SealedFor {
                            app,
                            key: key.as_str(),
                        };
                        StoredValue::Sealed(self.seal(place, &setting.value)?)
                    }
                };
                Ok(StoredEntry {
                    key: key.clone(),
                    value,
                })
            })
            .collect()
    }
}

/// Where the key's file is: `--secret-key FILE`, else `DATA/secret-key`.
pub fn key_path(data_dir: &Path, key_file: Option<&Path>) -> PathBuf {
    key_file.map_or_else(|| data_dir.join(SECRET_KEY_FILE), Path::to_owned)
}

/// Where a rotation writes the next key before every secret is sealed with it.
pub fn next_key_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".next");
    path.with_file_name(name)
}

/// Reads the key at `path`; `None` when there is no such file.
pub fn read(path: &Path) -> anyhow::Result<Option<SecretKey>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let key = parse_key(text.trim()).with_context(|| {
                format!(
                    "{} is not 64 hex digits: restore the secret key from where it is kept",
                    path.display()
                )
            })?;
            warn_if_readable_by_others(path, "secret key");
            Ok(Some(SecretKey::from_bytes(key)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The server's secret key. `needed` is the id of the key the database's secrets are
/// sealed with, as the first server to start claimed it: a key file holding another key,
/// or none, is refused with what to do. With nothing claimed yet, the key is created
/// (mode 0600) when its file does not exist. A rotation that stopped after the database
/// took the next key but before that key was put in place is finished here; one that
/// stopped before is forgotten.
pub fn load_or_create(path: &Path, needed: Option<&str>) -> anyhow::Result<SecretKey> {
    let next_path = next_key_path(path);
    if let Some(next) = read(&next_path)? {
        if needed == Some(next.id()) {
            fs::rename(&next_path, path)
                .with_context(|| format!("putting {} in place", next_path.display()))?;
            crate::files::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
            tracing::info!(
                "finished rotating the secret key: {} holds key {}",
                path.display(),
                next.id()
            );
        } else {
            fs::remove_file(&next_path)
                .with_context(|| format!("removing {}", next_path.display()))?;
        }
    }
    let key = match (read(path)?, needed) {
        (Some(key), _) => key,
        (None, Some(needed)) => bail!(
            "{} is missing, but the database's secrets are sealed with secret key {needed}: pass `--secret-key FILE` with the key the other servers use, or restore it from where it is kept",
            path.display()
        ),
        (None, None) => SecretKey::from_bytes(create_key(path, "secret key")?),
    };
    match needed {
        Some(needed) if needed != key.id() => bail!(
            "the database's secrets are sealed with secret key {needed}, but {} is key {}: start with the key the database's secrets are sealed with (`--secret-key FILE`; servers sharing a database share one key file)",
            path.display(),
            key.id()
        ),
        _ => Ok(key),
    }
}

/// The secret key of the server configured by `config`, checked against the key the
/// database's secrets need (see [`load_or_create`]) and claimed for the installation when no
/// server claimed one yet.
pub async fn open(
    store: &dyn ferry_store::Store,
    config: &crate::ServerConfig,
) -> anyhow::Result<SecretKey> {
    let path = key_path(&config.data_dir, config.secret_key_file.as_deref());
    let needed = store.secret_key_id().await?;
    let key = load_or_create(&path, needed.as_deref())?;
    if needed.is_none() {
        let claimed = store.claim_secret_key(key.id()).await?;
        if claimed != key.id() {
            bail!(
                "another server sharing the database started first with secret key {claimed}, but {} is key {}: start every server with the same key file (`--secret-key FILE`)",
                path.display(),
                key.id()
            );
        }
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::write_new_key;

    const HERE: SealedFor<'static> = SealedFor {
        app: "web",
        key: "API_KEY",
    };

    #[test]
    fn sealed_values_open_only_with_their_key_and_place() {
        let key = SecretKey::from_bytes([7; 32]);
        let sealed = key.seal(HERE, "s3cret value").unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_ne!(sealed, key.seal(HERE, "s3cret value").unwrap(), "nonce");
        assert_eq!(key.open(HERE, &sealed).unwrap(), "s3cret value");
        let other_key = SecretKey::from_bytes([8; 32]);
        assert_ne!(other_key.id(), key.id());
        for (opener, place, text) in [
            (&other_key, HERE, sealed.clone()),
            (
                &key,
                SealedFor {
                    app: "shop",
                    key: "API_KEY",
                },
                sealed.clone(),
            ),
            (
                &key,
                SealedFor {
                    app: "web",
                    key: "OTHER",
                },
                sealed.clone(),
            ),
            (&key, HERE, sealed.replacen("v1.", "v2.", 1)),
            (&key, HERE, last_character_changed(&sealed)),
            (&key, HERE, "v1.".to_owned()),
            (&key, HERE, "v1.!!!".to_owned()),
        ] {
            let error = opener.open(place, &text).unwrap_err();
            assert!(error.contains("cannot be opened"), "{error}");
            assert!(!error.contains("s3cret"));
        }
    }

    /// `text` with its last character replaced by another.
    fn last_character_changed(text: &str) -> String {
        let (start, last) = text.split_at(text.len() - 1);
        format!("{start}{}", if last == "A" { "B" } else { "A" })
    }

    #[test]
    fn the_key_file_is_created_and_checked_against_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_KEY_FILE);
        let missing = load_or_create(&path, Some("0011223344556677")).unwrap_err();
        assert!(missing.to_string().contains("is missing"), "{missing}");
        let key = load_or_create(&path, None).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            load_or_create(&path, Some(key.id())).unwrap().id(),
            key.id()
        );
        let wrong = load_or_create(&path, Some("0011223344556677")).unwrap_err();
        assert!(wrong
            .to_string()
            .contains("sealed with secret key 0011223344556677"));
    }

    #[test]
    fn an_interrupted_rotation_is_finished_or_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SECRET_KEY_FILE);
        let old = load_or_create(&path, None).unwrap();
        // Stopped before the database was resealed: the next key goes.
        write_new_key(&next_key_path(&path)).unwrap();
        assert_eq!(
            load_or_create(&path, Some(old.id())).unwrap().id(),
            old.id()
        );
        assert!(!next_key_path(&path).exists());
        // Stopped after: the next key is put in place.
        let next = SecretKey::from_bytes(write_new_key(&next_key_path(&path)).unwrap());
        let loaded = load_or_create(&path, Some(next.id())).unwrap();
        assert_eq!(loaded.id(), next.id());
        assert!(!next_key_path(&path).exists());
    }
}
