//! A live stream of one viewer's (a deployment's page, the overview's pulse): it counts
//! against the user's [`LIVE_STREAMS_PER_USER`], and it ends when the server stops or the
//! viewer's session does (a logout, a rotated token, a disabled user), as the session's
//! other requests would be refused then.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};

use super::page::PageError;
use super::session::{SessionCookie, Viewer};
use super::LIVE_STREAMS_PER_USER;
use crate::held_open::Place;
use crate::state::AppState;

/// How often an open stream checks that its session still holds: one read of the store,
/// so an ended session's streams close within this time on every server.
const SESSION_CHECK_EVERY: Duration = Duration::from_secs(10);

/// A viewer's place for one live stream.
pub struct LiveStream {
    place: Place,
    session: SessionCookie,
}

impl LiveStream {
    /// A place for one more live stream of `viewer`'s, or 429 when they have
    /// [`LIVE_STREAMS_PER_USER`] open.
    pub fn open(state: &AppState, viewer: Viewer) -> Result<LiveStream, PageError> {
        let user = &viewer.caller.user.name;
        let place = state.live_streams.enter(user).ok_or_else(|| {
            PageError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{user} has {LIVE_STREAMS_PER_USER} live pages open already; close some of them and reload this one"
                ),
            )
        })?;
        Ok(LiveStream {
            place,
            session: viewer.session,
        })
    }

    /// `events` as server-sent events, for as long as the server runs and the session holds.
    pub fn respond<S>(self, state: &AppState, events: S) -> Response
    where
        S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
    {
        let events = self
            .place
            .kept_by(events)
            .take_until(state.until_stopping())
            .take_until(session_ended(state.clone(), self.session));
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response()
    }
}

/// Returns once `session` no longer lets its user in.
async fn session_ended(state: AppState, session: SessionCookie) {
    loop {
        tokio::time::sleep(SESSION_CHECK_EVERY).await;
        match session.caller(&state).await {
            Ok(Some(_)) => {}
            Ok(None) => return,
            // The store not answering once does not end a session; the next check asks again.
            Err(e) => tracing::warn!("dashboard: checking a live stream's session: {e}"),
        }
    }
}
