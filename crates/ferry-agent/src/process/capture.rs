//! The capture task (`ferry drift capture`): the hand edits of an application become a
//! release. The engine ([`crate::capture`]) reads the tree under the application's lock and
//! keeps the lock; the content the running release lacks is uploaded (only what the server
//! lacks of it travels); the server creates the release and records the target running it;
//! then the engine links the release into place and switches to it. A refusal anywhere
//! before the switch leaves the target as it was (the lock is dropped with the capture).

use ferry_api::{AgentCapture, CaptureOutcome, CapturedRelease, ErrorBody};

use super::Agent;
use crate::capture::Capture;
use crate::config_files::{render, ConfigOf};
use crate::deploy::serves_completed;
use crate::layout::{current_installed, AppLayout, Installed};

/// Where agents submit what they captured.
const CAPTURES: &str = "/api/v1/agent/captures";
/// The most a capture's report may say of its paths: the server takes task reports of up to
/// 1 MiB, and path names can be long.
const MAX_DETAIL_BYTES: usize = 512 * 1024;

impl Agent {
    /// Captures `app` as `version` for task `task`; says what it made, in a sentence and as a
    /// [`CaptureOutcome`].
    pub(super) async fn capture(
        &self,
        task: i64,
        app: &str,
        version: &str,
    ) -> anyhow::Result<(String, Option<serde_json::Value>)> {
        let Some(served) = current_installed(&self.root, app) else {
            anyhow::bail!("{app} serves no release on this target: there is nothing to capture");
        };
        let running = served.version.clone();
        // Run again because its report was lost: the capture was made, and it is served.
        let captured = Installed::new(version, served.config);
        if running == version && serves_completed(&self.root, app, &captured) {
            let message = format!("{app} {version} was captured on this target, which runs it");
            return Ok((message, None));
        }
        let manifest = std::sync::Arc::new(self.manifest(app, &running).await?);
        let config = self.published_config(app, &served, &manifest).await?;
        // The configuration files rendered into the directory, to leave out of the release.
        let values = self.config_values(app, served.config).await?;
        let (root, a, env) = (self.root.clone(), app.to_owned(), self.state.env.clone());
        let target = self.state.target.clone();
        let cache = std::sync::Arc::clone(&self.cache);
        let capture = tokio::task::spawn_blocking(move || {
            let layout = AppLayout::new(&root, &a)?;
            let of = ConfigOf {
                app: &a,
                env: &env,
                version: &served.version,
            };
            let rendered = render(
                &layout,
                &[Some(&served)],
                &manifest,
                &config,
                &values,
                of,
                &cache,
            )?;
            let place = (target.as_str(), env.as_str());
            Capture::scan(&root, &a, place, &served, &manifest, &config, &rendered)
        })
        .await??;
        let uploaded = self.upload_blobs(app, capture.blobs().to_vec()).await?;
        let submitted = AgentCapture {
            task,
            app: app.to_owned(),
            version: version.to_owned(),
            hotfix_of: running.clone(),
            manifest: capture.manifest().clone(),
        };
        let response = self
            .link
            .answer(self.link.post_request(CAPTURES, &submitted))
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            let why = serde_json::from_str::<ErrorBody>(&text)
                .map(|body| body.error.message)
                .unwrap_or(format!("{status} {text}"));
            anyhow::bail!("the server did not create {app} {version}: {why}");
        }
        let captured: CapturedRelease = response.json().await?;
        let v = version.to_owned();
        let linked = tokio::task::spawn_blocking(move || capture.finish(&v)).await??;
        let message = format!(
            "captured {app} {version} from {running}: {} path(s) differ; {} bytes uploaded; {} files linked, none rewritten",
            captured.paths, uploaded.bytes, linked.files_linked
        );
        let mut outcome = CaptureOutcome {
            release: captured,
            bytes_uploaded: uploaded.bytes,
            files_linked: linked.files_linked,
        };
        if serde_json::to_vec(&outcome)?.len() > MAX_DETAIL_BYTES {
            // The count stays; `ferry release diff` lists every path.
            let release = &mut outcome.release;
            (release.added, release.removed, release.modified) = Default::default();
        }
        Ok((message, Some(serde_json::to_value(&outcome)?)))
    }
}
