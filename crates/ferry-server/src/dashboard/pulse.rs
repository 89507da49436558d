//! The overview's pulse: browsers showing the overview hear, over server-sent events, that
//! what it shows changed, and then ask for their own overview again (what each may see
//! differs, so the page is not pushed).
//!
//! One task per server notices changes: it reads the store's status revision (the number
//! every change the overview shows bumps, by any server sharing the database) when a
//! deployment changed here or another server said so, and at least every few seconds, and
//! tells every browser listening when it moved. The database is read by that task alone,
//! never per browser; the task runs only while browsers listen.

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::Event;
use axum::response::Response;
use futures::stream::{self, Stream};
use tokio::sync::broadcast;

use super::page::PageError;
use super::session::Viewer;
use super::stream::LiveStream;
use crate::state::AppState;

/// How often the revision is read anyway while browsers listen, for the changes no wake-up
/// announces (an agent's report to another server).
const READ_AT_LEAST_EVERY: Duration = Duration::from_secs(5);

/// Changes arriving within this time make one pulse.
const GATHER: Duration = Duration::from_millis(300);

/// The overview's pulse, started with its first listener.
#[derive(Default)]
pub struct OverviewPulse {
    sender: Mutex<Option<broadcast::Sender<()>>>,
}

impl OverviewPulse {
    /// Pulses from now on, starting the task that beats them unless it runs.
    fn subscribe(&self, state: &AppState) -> broadcast::Receiver<()> {
        let mut sender = self
            .sender
            .lock()
            .expect("the pulse lock is never poisoned");
        if let Some(sender) = sender.as_ref() {
            return sender.subscribe();
        }
        let (beats, receiver) = broadcast::channel(4);
        *sender = Some(beats.clone());
        tokio::spawn(beat(state.clone(), beats));
        receiver
    }

    /// Stops the pulse unless someone subscribed meanwhile; true when it stopped.
    fn stop_unless_heard(&self) -> bool {
        let mut sender = self
            .sender
            .lock()
            .expect("the pulse lock is never poisoned");
        if sender.as_ref().is_some_and(|s| s.receiver_count() == 0) {
            *sender = None;
            return true;
        }
        false
    }
}

/// Tells `beats`' listeners whenever the status revision moves, until none listens.
async fn beat(state: AppState, beats: broadcast::Sender<()>) {
    let mut seen = state.store.status_revision().await.ok();
    let changed = state.wakeups.deployments().notified();
    tokio::pin!(changed);
    loop {
        let woken = tokio::select! {
            _ = &mut changed => true,
            _ = tokio::time::sleep(READ_AT_LEAST_EVERY) => false,
        };
        // Listening again before gathering and reading: a change meanwhile wakes the next
        // round.
        changed.set(state.wakeups.deployments().notified());
        if woken {
            tokio::time::sleep(GATHER).await;
        }
        if state.pulse.stop_unless_heard() {
            return;
        }
        match state.store.status_revision().await {
            Ok(revision) if Some(revision) != seen => {
                seen = Some(revision);
                let _ = beats.send(());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("dashboard: reading the status revision: {e}"),
        }
    }
}

/// `GET /live/overview`: a `changed` event whenever the overview may show something new.
pub async fn events(State(state): State<AppState>, viewer: Viewer) -> Result<Response, PageError> {
    let stream = LiveStream::open(&state, viewer)?;
    let receiver = state.pulse.subscribe(&state);
    Ok(stream.respond(&state, pulses(receiver)))
}

fn pulses(receiver: broadcast::Receiver<()>) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            // A listener that fell behind has missed pulses: one says it all.
            Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => {
                let event = Event::default().event("changed").data("status");
                Some((Ok(event), receiver))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}
