//! `/login` and `/logout`: a password or an API token for a session cookie, and back.

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use ferry_domain::login::SESSION_LIFETIME_MS;
use serde::Deserialize;

use super::page::{html, html_with_status, PageError};
use super::session::{clear_cookie, is_local_path, same_origin, NoFields, Posted, SessionCookie};
use crate::peer::Peer;
use crate::services::sessions::{self, Proof};
use crate::state::AppState;

/// Where to go once logged in.
#[derive(Debug, Default, Deserialize)]
pub struct Next {
    next: Option<String>,
}

impl Next {
    /// The page to go back to: one of this server's, the overview otherwise.
    fn page(&self) -> &str {
        self.next
            .as_deref()
            .filter(|n| is_local_path(n))
            .unwrap_or("/")
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    next: &'a str,
    user: &'a str,
    refused: Option<&'a str>,
}

/// The login form.
pub async fn form(Query(next): Query<Next>) -> Result<Response, PageError> {
    html(&LoginPage {
        next: next.page(),
        user: "",
        refused: None,
    })
}

/// What the login form posts: a user name and password, or an API token.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// Checks the credentials and starts a session; shows the form again with why not.
pub async fn log_in(
    State(state): State<AppState>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    Form(credentials): Form<Credentials>,
) -> Result<Response, PageError> {
    same_origin(&headers)?;
    let next = Next {
        next: credentials.next,
    };
    let proof = if !credentials.token.trim().is_empty() {
        Proof::Token(credentials.token)
    } else if credentials.user.trim().is_empty() || credentials.password.is_empty() {
        return refused(
            &next,
            &credentials.user,
            StatusCode::BAD_REQUEST,
            "give your user name and password, or an API token",
        );
    } else {
        Proof::Password {
            user: credentials.user.trim().to_owned(),
            password: credentials.password,
        }
    };
    let cookie = SessionCookie::new().map_err(|e| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no randomness: {e}"),
        )
    })?;
    match sessions::log_in(&state, proof, peer.ip().to_canonical(), cookie.hash()).await {
        Ok(_) => {
            let secure = state.tls_fingerprint.is_some();
            let set = cookie.set_cookie(secure, SESSION_LIFETIME_MS / 1000);
            Ok(([(SET_COOKIE, set)], Redirect::to(next.page())).into_response())
        }
        Err(error) => {
            let error = PageError::from(error);
            refused(&next, &credentials.user, error.status, &error.message)
        }
    }
}

fn refused(next: &Next, user: &str, status: StatusCode, why: &str) -> Result<Response, PageError> {
    html_with_status(
        status,
        &LoginPage {
            next: next.page(),
            user,
            refused: Some(why),
        },
    )
}

/// Ends the session and forgets the cookie.
pub async fn log_out(
    State(state): State<AppState>,
    posted: Posted<NoFields>,
) -> Result<Response, PageError> {
    let viewer = posted.viewer;
    sessions::log_out(&state, &viewer.caller, &viewer.session.hash()).await?;
    let clear = clear_cookie(state.tls_fingerprint.is_some());
    Ok(([(SET_COOKIE, clear)], Redirect::to("/login")).into_response())
}
