//! Where the client finds its server, token and CA certificate: flags, then the environment
//! (`FERRY_SERVER`, `FERRY_TOKEN`, `FERRY_CA_CERT`; clap reads them), then the file
//! `ferry login` writes.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

/// What `ferry login` stores.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Config {
    pub server: Option<String>,
    pub token: Option<String>,
    /// The CA certificate (PEM) trusted for an https:// server, as an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

/// The config file: `$FERRY_CONFIG`, else `$XDG_CONFIG_HOME/ferry/config.toml`, else
/// `~/.config/ferry/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FERRY_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("ferry").join("config.toml"))
}

/// The stored config; an absent file is an empty config.
pub fn load() -> CliResult<Config> {
    let Some(path) = config_path() else {
        return Ok(Config::default());
    };
    match fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is not a valid ferry config ({e}); fix it or run `ferry login` again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(CliError::failed(format!("reading {}: {e}", path.display()))),
    }
}

/// Writes the config file, readable only by its owner, replacing it atomically.
pub fn save(config: &Config) -> anyhow::Result<PathBuf> {
    let path = config_path().context("no config directory: set HOME or FERRY_CONFIG")?;
    let dir = path.parent().context("the config path has a directory")?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("toml.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(toml::to_string(config)?.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
