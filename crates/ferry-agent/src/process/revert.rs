//! Reverting drift as a task (`ferry drift revert`): the application checked now; what the
//! drifted paths hold kept as a backup of the application (reason `drift_revert`: the paths
//! relative to the release, read from `current`), except the files rendered from the
//! configuration, which may hold secrets and are written again from its values; then the
//! release given its exact content,
//! as a rollback to a changed release does (a fresh tree built beside it and exchanged with
//! one atomic rename, blobs fetched when an edit in place spoilt the cache's copy); then
//! checked again, which reports the drift gone.

use anyhow::bail;
use ferry_api::{BackupReason, DriftChange, RevertOutcome};

use super::{Agent, SwitchedBack};
use crate::app_backup::take::Taken;
use crate::app_backup::{outermost, snapshot};
use crate::layout::{current_installed, staging_dir, AppLayout};
use crate::lock::AppLock;

impl Agent {
    /// The task of reverting `app`, which the server saw running `version`.
    pub(super) async fn revert(
        &self,
        task: i64,
        app: &str,
        version: &str,
    ) -> anyhow::Result<(String, Option<serde_json::Value>)> {
        let found = self.drift_found_now(app).await?;
        if found.version != version {
            bail!(
                "{app} runs {} here now, not {version}: nothing was reverted; look again with `ferry drift {app} --refresh`",
                found.version
            );
        }
        if found.paths.is_empty() {
            let outcome = RevertOutcome {
                version: found.version,
                reverted: Vec::new(),
                backup: None,
                rewritten: Vec::new(),
            };
            return Ok((
                format!("{app} {version} serves its release exactly: nothing to revert"),
                Some(serde_json::to_value(&outcome)?),
            ));
        }
        // Files ferry renders from the configuration are written again from its values and
        // never kept: a backup is stored in clear, and they may hold secrets.
        let rendered = self.rendered_paths(app).await?;
        let kept: Vec<String> = found
            .paths
            .iter()
            .filter(|p| p.change != DriftChange::Deleted && !rendered.contains(&p.path))
            .map(|p| p.path.clone())
            .collect();
        let backup = match kept.is_empty() {
            true => None,
            false => Some(self.keep_drifted(task, app, version, kept).await?),
        };
        // The release directory served, with its configuration revision: the rendered
        // files are repaired from the values too.
        let Some(served) = current_installed(&self.root, app).filter(|i| i.version == version)
        else {
            bail!("{app} no longer runs {version} here: nothing was reverted");
        };
        match self.switch_back(app, &served).await? {
            SwitchedBack::Done { .. } => {}
            SwitchedBack::DeployInstead => bail!(
                "{app} {version} could not be given its release's content back here (the agent's log says why); what the drifted paths hold is in backup {}",
                backup.map_or_else(|| "-".to_owned(), |id| id.to_string())
            ),
        }
        let after = self.drift_found_now(app).await?;
        if !after.paths.is_empty() {
            bail!(
                "{app} {version} still differs from its release after the revert ({} paths, first {}): someone is editing it now?",
                after.paths.len(),
                after.paths[0].path
            );
        }
        let kept = match backup {
            Some(id) => format!(", what they held kept in backup {id}"),
            None => String::new(),
        };
        let rewritten: Vec<String> = (found.paths.iter())
            .filter(|p| rendered.contains(&p.path))
            .map(|p| p.path.clone())
            .collect();
        let written_again = match rewritten.is_empty() {
            true => "",
            false => " (files written from the configuration are written again from its values, not kept)",
        };
        let message = format!(
            "{app} {version} serves its release exactly again: {} path(s) reverted{kept}{written_again}",
            found.paths.len()
        );
        let outcome = RevertOutcome {
            version: found.version,
            reverted: found.paths,
            backup,
            rewritten,
        };
        Ok((message, Some(serde_json::to_value(&outcome)?)))
    }

    /// The files the release `app` serves renders from its configuration (`[config]` in its
    /// `ferry.toml`).
    async fn rendered_paths(&self, app: &str) -> anyhow::Result<Vec<String>> {
        let layout = AppLayout::new(&self.root, app)?;
        let (_, config) =
            tokio::task::spawn_blocking(move || crate::app_backup::take::release_config(&layout))
                .await??;
        Ok((config.config.rendered_paths().into_iter())
            .map(str::to_owned)
            .collect())
    }

    /// Keeps what `paths` of release `version` of `app` hold now as a backup of the
    /// application (reason `drift_revert`, paths relative to the release), every file read
    /// (no index vouches for hand edits); its number.
    async fn keep_drifted(
        &self,
        task: i64,
        app: &str,
        version: &str,
        paths: Vec<String>,
    ) -> anyhow::Result<i64> {
        let (root, name, version) = (self.root.clone(), app.to_owned(), version.to_owned());
        let taken = tokio::task::spawn_blocking(move || -> anyhow::Result<Taken> {
            let layout = AppLayout::new(&root, &name)?;
            let _lock = AppLock::acquire(&root, &name)?;
            let paths = outermost(&paths);
            let scratch = staging_dir(&root);
            std::fs::create_dir_all(&scratch)?;
            let index = scratch.join(format!("drift-revert-{name}.index"));
            let _ = std::fs::remove_file(&index);
            let Some(served) = layout.current().filter(|i| i.version == version) else {
                anyhow::bail!("{name} no longer runs {version} here: nothing was kept");
            };
            let snapshot = snapshot(&layout.release_dir(&served), &paths, &index);
            let _ = std::fs::remove_file(&index);
            Ok(Taken {
                version,
                paths,
                snapshot: snapshot?,
            })
        })
        .await??;
        let backup = self
            .send_backup(app, BackupReason::DriftRevert, Some(task), taken)
            .await?;
        Ok(backup.id)
    }
}
