//! Taking a backup of an application as it runs on this target: the backup paths and
//! `pre_backup` hook of the release `current` points at, the hook run first (a consistent
//! database dump into a shared path), then the snapshot, under the application's lock so no
//! deploy switches releases meanwhile.

use std::fs;
use std::path::Path;

use ferry_cas::release_config::{ReleaseConfig, CONFIG_FILE};

use super::index::index_path;
use super::{snapshot, Snapshot};
use crate::config_files::ConfigValues;
use crate::error::{AgentError, AgentResult};
use crate::hooks::{run_command, HookEnv};
use crate::isolation::CommandsAs;
use crate::layout::{staging_dir, AppLayout, Installed};
use crate::lock::AppLock;

/// A backup taken on this target, before its blobs are sent.
#[derive(Debug)]
pub struct Taken {
    /// The release the application runs.
    pub version: String,
    /// Its backup paths, relative to `shared/`.
    pub paths: Vec<String>,
    pub snapshot: Snapshot,
}

/// The backup paths and `pre_backup` hook of the release `app` runs.
pub fn release_config(layout: &AppLayout) -> AgentResult<(Installed, ReleaseConfig)> {
    let app = layout.app();
    let version = layout.current().ok_or_else(|| {
        AgentError::Refused(format!(
            "{app} runs no release on this target: nothing to back up"
        ))
    })?;
    let file = layout.release_dir(&version).join(CONFIG_FILE);
    let config = match fs::read(&file) {
        Ok(bytes) => ReleaseConfig::parse_bytes(&bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ReleaseConfig::default(),
        Err(e) => return Err(AgentError::io(&file, e)),
    };
    Ok((version, config))
}

/// Whether a backup runs the release's `pre_backup` hook first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreBackup {
    /// A backup of the live application: the hook makes its consistent copy first.
    Run,
    /// The backup a restore takes of what it replaces: the paths as they are. Restoring is
    /// what one does when the data is damaged or gone, which a hook (dumping a database into
    /// a directory that is not there) may fail on, and the files are replaced next anyway.
    Skip,
}

/// Takes a backup of `app` (of environment `env`, whose configuration `values` are those of
/// the revision the release served was staged with, for the hook): refused, naming the
/// release, when its `ferry.toml` names no backup paths, or the revision served is not
/// `values`' any more; failed, with the hook's output, when `pre_backup` fails.
pub fn take(
    root: &Path,
    app: &str,
    env: &str,
    values: &ConfigValues,
    pre_backup: PreBackup,
    commands_as: &CommandsAs,
) -> AgentResult<Taken> {
    let layout = AppLayout::new(root, app)?;
    let _lock = AppLock::acquire(root, app)?;
    let (installed, config) = release_config(&layout)?;
    let version = installed.version.clone();
    if installed.config != values.revision() {
        return Err(AgentError::Refused(format!(
            "{app} now runs {installed}, deployed while the backup was being prepared: take it again"
        )));
    }
    if config.backup.is_empty() {
        return Err(AgentError::Refused(format!(
            "release {version} of {app} names no backup paths: list the paths inside shared/ \
             to back up in its ferry.toml (`backup = [\"uploads\"]`)"
        )));
    }
    if let Some(command) = config
        .hooks
        .pre_backup
        .as_ref()
        .filter(|_| pre_backup == PreBackup::Run)
    {
        let hook_env = HookEnv {
            app: app.to_owned(),
            env: env.to_owned(),
            version: version.clone(),
            previous_version: None,
            release_dir: layout.release_dir(&installed),
            shared_dir: layout.shared_dir(),
            config: values.clone(),
            account: commands_as.clone().map_err(AgentError::Refused)?,
        };
        let outcome = run_command(
            command,
            &hook_env,
            config.hooks.pre_backup_timeout,
            &staging_dir(root),
        )?;
        if !outcome.success {
            let output = outcome.output_tail.trim_end();
            let output = match output.is_empty() {
                true => "(it printed nothing)".to_owned(),
                false => format!("its output ends:\n{output}"),
            };
            return Err(AgentError::Refused(format!(
                "the pre_backup hook of {app} {version} {}, so no backup was taken; {output}",
                outcome.failure
            )));
        }
    }
    let snapshot = snapshot(&layout.shared_dir(), &config.backup, &index_path(root, app))?;
    Ok(Taken {
        version,
        paths: config.backup,
        snapshot,
    })
}
