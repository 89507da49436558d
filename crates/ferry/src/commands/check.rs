//! `ferry check [DIR]`: checks a tree's `ferry.toml` as the server and the agent will read
//! it, without a server. `ferry release create` runs the same check before uploading, so a
//! release that could never deploy is refused before it exists.

use std::fs;
use std::path::{Path, PathBuf};

use ferry_cas::release_config::{ConfigError, ReleaseConfig, CONFIG_FILE};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output::Output;

/// What `ferry check` reports.
#[derive(Serialize)]
struct CheckReport {
    dir: String,
    /// False when the tree has no `ferry.toml` (the release deploys with defaults).
    config: bool,
}

pub fn run(output: Output, dir: PathBuf) -> CliResult {
    let config = check_tree(&dir, &dir.display().to_string())?.is_some();
    let report = CheckReport {
        dir: dir.display().to_string(),
        config,
    };
    output.print(&report, |r| {
        if r.config {
            println!("ferry.toml is valid");
        } else {
            println!("no ferry.toml: the release deploys with defaults");
        }
    });
    Ok(())
}

/// The checked `ferry.toml` at the root of the tree `root`, `None` when it has none; an
/// unusable one is refused (exit 3) with its line, column and what is wrong, under `name`
/// (what the user called the tree: a tarball or a git ref is unpacked in a temporary
/// directory whose name would mean nothing to them).
pub fn check_tree(root: &Path, name: &str) -> CliResult<Option<ReleaseConfig>> {
    if !root.is_dir() {
        return Err(CliError::refused(format!(
            "{} is not a directory: name the directory that holds the release's files",
            root.display()
        )));
    }
    let path = root.join(CONFIG_FILE);
    let metadata = match fs::symlink_metadata(&path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::failed(format!("{}: {e}", path.display()))),
    };
    if !metadata.is_file() {
        return Err(CliError::refused(format!(
            "{name}: ferry.toml must be a regular file"
        )));
    }
    let refused = |error: ConfigError| CliError::refused(format!("{name}: {error}"));
    ReleaseConfig::check_size(metadata.len()).map_err(refused)?;
    let data = fs::read(&path).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
    ReleaseConfig::parse_bytes(&data).map(Some).map_err(refused)
}
