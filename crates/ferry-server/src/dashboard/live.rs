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
    })
}

/// Where one deployment's renderings go out, and where one browser hears them.
type Renderings = Arc<watch::Sender<Arc<Rendered>>>;
type Listener = watch::Receiver<Arc<Rendered>>;

/// The deployments browsers watch now, each with the channel its renderings go out on.
#[derive(Default)]
pub struct LiveDeployments {
    watched: Mutex<HashMap<i64, Renderings>>,
}

impl LiveDeployments {
    /// Renderings of deployment `id`, starting with `first`; starts watching it unless
    /// someone already does.
    fn subscribe(&self, state: &AppState, id: i64, first: Rendered) -> Listener {
        let (receiver, start) = self.join(id, first);
        if let Some(sender) = start {
            tokio::spawn(watch_deployment(state.clone(), id, sender));
        }
        receiver
    }

    /// Renderings of deployment `id`, starting with `first`, and the sender a new task is to
    /// watch it with when nobody did.
    fn join(&self, id: i64, first: Rendered) -> (Listener, Option<Renderings>) {
        let mut watched = self.watched.lock().expect("the map is never poisoned");
        if let Some(sender) = watched.get(&id) {
            // `first` was read just now; what the watching task sent may be older (it reads
            // only when woken), and a page shown with a newer status than its stream's
            // first event would reload, again and again until the task read once more.
            if sender.borrow().html != first.html {
                sender.send_replace(Arc::new(first));
            }
            return (sender.subscribe(), None);
        }
        let finished = first.is_finished();
        let (sender, receiver) = watch::channel(Arc::new(first));
        if finished {
            return (receiver, None);
        }
        let sender = Arc::new(sender);
        watched.insert(id, sender.clone());
        (receiver, Some(sender))
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
async fn watch_deployment(state: AppState, id: i64, sender: Renderings) {
    let live = &state.live;
    let changed = state.wakeups.deployments().notified();
    tokio::pin!(changed);
    loop {
        tokio::select! {
            _ = &mut changed => {}
            _ = sender.closed() => {}
            _ = tokio::time::sleep(READ_AT_LEAST_EVERY) => {}
        }
        if live.leave(id, &sender, false) {
            return;
        }
        // Listening again before the read: a change while it runs wakes the next round.
        changed.set(state.wakeups.deployments().notified());
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
    receiver: Listener,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(status: DeploymentStatus) -> Rendered {
        Rendered {
            html: format!("<span id=\"status\">{}</span>", status.as_str()),
            status,
        }
    }

    #[test]
    fn a_new_browser_starts_from_what_was_read_for_it_not_an_older_rendering() {
        let live = LiveDeployments::default();
        let (first, start) = live.join(7, rendered(DeploymentStatus::Running));
        assert!(
            start.is_some(),
            "the first browser starts the watching task"
        );
        let (second, start) = live.join(7, rendered(DeploymentStatus::Succeeded));
        assert!(start.is_none(), "one task watches a deployment");
        assert_eq!(second.borrow().status, DeploymentStatus::Succeeded);
        assert!(
            first.has_changed().unwrap(),
            "the first browser hears of it too"
        );
    }

    #[test]
    fn a_finished_deployment_is_not_watched() {
        let live = LiveDeployments::default();
        let (receiver, start) = live.join(7, rendered(DeploymentStatus::Succeeded));
        assert!(start.is_none());
        assert_eq!(receiver.borrow().status, DeploymentStatus::Succeeded);
    }
}
