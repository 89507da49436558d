//! `ferry check [DIR]`: checks a tree's `ferry.toml` as the server and the agent will read
//! it, without a server. `ferry release create` runs the same check before uploading, so a
//! release that could never deploy is refused before it exists. What `[config]` says of the
//! release's files is checked against the tree as a release would hold it (its manifest).

use std::fs;
use std::path::{Path, PathBuf};

use ferry_cas::ingest::Limits;
use ferry_cas::manifest::Manifest;
use ferry_cas::release_config::{ConfigError, ReleaseConfig, CONFIG_FILE};
use ferry_cas::scan::scan_tree;
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
    let name = dir.display().to_string();
    let config = check_tree(&dir, &name)?;
    // Only files that `[config]` names need the tree's manifest, which reads every file.
    if let Some(config) = config
        .as_ref()
        .filter(|config| !config.config.rendered_paths().is_empty())
    {
        let scanned = scan_tree(&dir, &Limits::default()).map_err(super::release::cas_error)?;
        check_files(config, &scanned.manifest, &dir, &name)?;
    }
    let config = config.is_some();
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

/// Refuses a `ferry.toml` whose `[config]` does not fit the release's files (`manifest`,
/// of the tree `root`): a template missing or that could never render, a file ferry writes
/// already in the release, or its directory missing; under `name`, as [`check_tree`].
pub fn check_files(
    config: &ReleaseConfig,
    manifest: &Manifest,
    root: &Path,
    name: &str,
) -> CliResult {
    let refused = |error: ConfigError| CliError::refused(format!("{name}: {error}"));
    config.check_against_manifest(manifest).map_err(refused)?;
    for template in &config.config.templates {
        let path = root.join(&template.source);
        let text =
            fs::read(&path).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))?;
        config.check_template(template, &text).map_err(refused)?;
    }
    Ok(())
}
