//! Deployment pages that update live, over server-sent events.
//!
//! One task per watched deployment reads it when something changed (the wake-up every
//! deployment change and agent report bumps, on this server or another sharing the
//! database) and renders its live part once; every browser watching gets that rendering
//! through a watch channel. A hundred browsers on one deployment cost one read per change
//! and none while nothing changes: nothing polls the database per browser. The task ends
//! when the last browser leaves or the deployment is finished.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::Response;
use ferry_api::DeploymentStatus;
use ferry_store::DeploymentRecord;
use futures::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::watch;

use super::deployment::LiveDeployment;
use super::page::PageError;
use super::session::Viewer;
use super::stream::LiveStream;
use crate::services::deployment_logs::logs_of;
use crate::services::deployments::visible_deployment;
use crate::services::ServiceResult;
use crate::state::AppState;
use crate::views::deployment_shown;

/// A safety net under the wake-ups: a watched deployment is read again this often anyway.
const READ_AT_LEAST_EVERY: Duration = Duration::from_secs(30);

/// The live part of a deployment's page, rendered, with the status it shows.
pub struct Rendered {
    pub html: String,
    pub status: DeploymentStatus,
    /// The deployment as shown on its page.
    pub deployment: ferry_api::Deployment,
}

impl Rendered {
    fn is_finished(&self) -> bool {
        !self.status.is_active()
    }
}

/// Reads what a deployment's live part shows.
pub async fn read(state: &AppState, record: DeploymentRecord) -> ServiceResult<LiveDeployment> {
    let logs = logs_of(state, &record, None).await?;
    let deployment = deployment_shown(state, record).await?;
    Ok(LiveDeployment { deployment, logs })
}

/// Renders a deployment's live part.
pub fn render(live: &LiveDeployment) -> Result<Rendered, PageError> {
    let html = live.render().map_err(|e| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the deployment failed: {e}"),
        )
    })?;
    Ok(Rendered {
        html,
        status: live.deployment.status,
        deployment: live.deployment.clone(),
    })
}

/// The deployments browsers watch now, each with the channel its renderings go out on.
#[derive(Default)]
pub struct LiveDeployments {
    watched: Mutex<HashMap<i64, Arc<watch::Sender<Arc<Rendered>>>>>,
}

impl LiveDeployments {
    /// Renderings of deployment `id`, starting with `first`; starts watching it unless
    /// someone already does.
    fn subscribe(
        &self,
        state: &AppState,
        id: i64,
        first: Rendered,
    ) -> watch::Receiver<Arc<Rendered>> {
        let mut watched = self.watched.lock().expect("the map is never poisoned");
        if let Some(sender) = watched.get(&id) {
            return sender.subscribe();
        }
        let finished = first.is_finished();
        let (sender, receiver) = watch::channel(Arc::new(first));
        if !finished {
            let sender = Arc::new(sender);
            watched.insert(id, sender.clone());
            tokio::spawn(watch_deployment(state.clone(), id, sender));
        }
        receiver
    }

    /// Stops watching `id` unless a browser subscribed meanwhile; true when it stopped.
    fn leave(&self, id: i64, sender: &watch::Sender<Arc<Rendered>>, finished: bool) -> bool {
        let mut watched = self.watched.lock().expect("the map is never poisoned");
        if finished || sender.receiver_count() == 0 {
            watched.remove(&id);
            return true;
        }
        false
    }
}

/// Reads and renders deployment `id` whenever a deployment changed, until no browser
/// watches it or it is finished.
async fn watch_deployment(state: AppState, id: i64, sender: Arc<watch::Sender<Arc<Rendered>>>) {
    let live = &state.live;
    loop {
        let changed = state.wakeups.deployments().notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        tokio::select! {
            _ = &mut changed => {}
            _ = sender.closed() => {}
            _ = tokio::time::sleep(READ_AT_LEAST_EVERY) => {}
        }
        if live.leave(id, &sender, false) {
            return;
        }
        let rendered = match state.store.deployment(id).await {
            Ok(Some(record)) => match read(&state, record).await {
                Ok(view) => render(&view),
                Err(e) => Err(PageError::from(e)),
            },
            Ok(None) => Err(PageError::new(StatusCode::NOT_FOUND, "removed")),
            Err(e) => Err(PageError::from(e)),
        };
        let rendered = match rendered {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::warn!("dashboard: watching deployment {id}: {}", e.message);
                live.leave(id, &sender, true);
                return;
            }
        };
        let finished = rendered.is_finished();
        if sender.borrow().html != rendered.html {
            sender.send_replace(Arc::new(rendered));
        }
        if finished {
            live.leave(id, &sender, true);
            return;
        }
    }
}

/// What the page showed when it opened the stream.
#[derive(Debug, Deserialize)]
pub struct Shown {
    /// The deployment's status on the page: when it changes, the page reloads, as what the
    /// viewer may do (approve, cancel) changes with it.
    shown: Option<DeploymentStatus>,
}

/// `GET /deployments/{id}/live`: the deployment's live part as server-sent events:
/// `update` with the new HTML, `reload` when its status moved on from the page's, `done`
/// once it is finished (the browser stops listening).
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(shown): Query<Shown>,
) -> Result<Response, PageError> {
    let (record, _) = visible_deployment(&state, &viewer.caller, id).await?;
    let stream = LiveStream::open(&state, viewer)?;
    let first = render(&read(&state, record).await?)?;
    let receiver = state.live.subscribe(&state, id, first);
    Ok(stream.respond(&state, renderings(receiver, shown.shown)))
}

/// The events for one browser: the rendering now, then each new one.
fn renderings(
    receiver: watch::Receiver<Arc<Rendered>>,
    shown: Option<DeploymentStatus>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (receiver, true, false),
        move |(mut receiver, first, ended)| async move {
            if ended {
                return None;
            }
            if !first && receiver.changed().await.is_err() {
                return None;
            }
            let rendered = receiver.borrow_and_update().clone();
            let mut events = vec![Event::default().event("update").data(&rendered.html)];
            // Browsers drop an event without data: these carry the status.
            let status = rendered.status.as_str();
            if shown.is_some_and(|shown| shown != rendered.status) {
                events.push(Event::default().event("reload").data(status));
            }
            let finished = rendered.is_finished();
            if finished {
                events.push(Event::default().event("done").data(status));
            }
            Some((stream::iter(events), (receiver, false, finished)))
        },
    )
    .flatten()
    .map(Ok)
}
