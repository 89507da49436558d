//! The agent's connection to its server: every request carries the target's credential, and
//! anything but success is an error naming the endpoint.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The server refused the target's credential: the target was removed, or enrolled again
/// by another agent. Waiting never helps; enrolling again does.
#[derive(Debug, thiserror::Error)]
#[error("the server refused this target's credential: {0}")]
pub struct CredentialRefused(String);

impl CredentialRefused {
    /// The server's own words when it gave them (they say what to do), else what it means.
    async fn from(response: reqwest::Response) -> CredentialRefused {
        CredentialRefused(match response.json::<ferry_api::ErrorBody>().await {
            Ok(body) => body.error.message,
            Err(_) => "the target was removed or enrolled again by another agent; enroll this \
                       agent again with a token from `ferry target enroll ENV NAME`"
                .to_owned(),
        })
    }
}

/// A server and the credential to reach it with; cheap to clone.
#[derive(Clone)]
pub struct ServerLink {
    pub http: reqwest::Client,
    server: String,
    credential: String,
    /// The agent's root, whose filesystem's free space its heartbeats tell the server.
    root: PathBuf,
}

impl ServerLink {
    pub fn new(http: reqwest::Client, server: &str, credential: &str, root: &Path) -> ServerLink {
        ServerLink {
            http,
            server: server.to_owned(),
            credential: credential.to_owned(),
            root: root.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let request = self.http.get(self.url(path)).timeout(timeout);
        Ok(self.send(path, request).await?.json().await?)
    }

    /// `GET path` as a heartbeat (the long-poll for what to run): it tells the space on
    /// the root's filesystem too.
    pub async fn heartbeat_get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<T> {
        let request = self.saying_disk(self.http.get(self.url(path)).timeout(timeout));
        Ok(self.send(path, request).await?.json().await?)
    }

    /// `request` with `FREE/TOTAL` bytes of the root's filesystem, as
    /// [`ferry_api::AGENT_DISK_HEADER`] says it, when the system tells.
    pub fn saying_disk(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match rustix::fs::statvfs(&self.root) {
            Ok(stats) => {
                let free = stats.f_bavail.saturating_mul(stats.f_frsize);
                let total = stats.f_blocks.saturating_mul(stats.f_frsize);
                request.header(ferry_api::AGENT_DISK_HEADER, format!("{free}/{total}"))
            }
            Err(_) => request,
        }
    }

    /// A POST of `body` as JSON to `path`, to adjust before [`ServerLink::send`].
    pub fn post_request<B: Serialize>(&self, path: &str, body: &B) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).json(body)
    }

    pub async fn post<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<reqwest::Response> {
        self.send(path, self.post_request(path, body)).await
    }

    /// Sends a request with the agent's credential; anything but success is an error.
    pub async fn send(
        &self,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let response = self.answer(request).await?;
        if !response.status().is_success() {
            bail!(
                "{path}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(response)
    }

    /// Sends a request with the agent's credential and returns the server's answer, whatever
    /// its status but a refused credential, for the caller to read.
    pub async fn answer(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let response = request.bearer_auth(&self.credential).send().await?;
        if response.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(CredentialRefused::from(response).await.into());
        }
        Ok(response)
    }
}
