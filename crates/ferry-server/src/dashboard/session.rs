//! Dashboard sessions: the cookie a browser holds after logging in, who it proves the
//! browser is, and the form token every change posted from a page must carry.
//!
//! Trust: the cookie is 256 random bits, sent only to ferry (`HttpOnly`, `SameSite=Strict`,
//! `Secure` under TLS) and stored only as its hash, so a copy of the database logs no one
//! in. A page's forms carry a token derived from the cookie, which another site can neither
//! read nor compute; a posted change without it, or from another origin, changes nothing.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use ferry_domain::token::hash_token;
use serde::de::DeserializeOwned;

use super::page::PageError;
use crate::auth::{new_token, Caller};
use crate::state::AppState;
use ferry_store::StoreError;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "ferry_session";

/// The most a posted form may hold.
const FORM_LIMIT: usize = 64 * 1024;

/// A session cookie's secret value, as the browser holds it.
pub struct SessionCookie(String);

impl SessionCookie {
    /// A new session's cookie: 256 bits from the operating system's generator.
    pub fn new() -> anyhow::Result<SessionCookie> {
        Ok(SessionCookie(new_token()?))
    }

    /// The cookie this request carries, if any.
    fn of(headers: &HeaderMap) -> Option<SessionCookie> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE_NAME)
            .map(|(_, value)| SessionCookie(value.to_owned()))
    }

    /// What the store keeps of it.
    pub fn hash(&self) -> String {
        hash_token(&self.0)
    }

    /// Who this session lets in now, or `None` once it ended (a logout, a rotated token, a
    /// disabled user). Read from the store every time, as tokens are, so an ended session
    /// is refused at once on every server.
    pub async fn caller(&self, state: &AppState) -> Result<Option<Caller>, StoreError> {
        let holder = state
            .store
            .user_by_session(&self.hash(), state.clock.now_ms())
            .await?;
        Ok(holder.and_then(|holder| Caller::of(state, holder).ok()))
    }

    /// The token the session's forms carry: derived from the cookie, so only a page ferry
    /// served to this browser knows it.
    pub fn form_token(&self) -> String {
        blake3::derive_key("ferry dashboard form token", self.0.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// The `Set-Cookie` value that gives the browser this session for `max_age_s` seconds.
    pub fn set_cookie(&self, secure: bool, max_age_s: i64) -> String {
        cookie_header(&self.0, secure, max_age_s)
    }
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_cookie(secure: bool) -> String {
    cookie_header("", secure, 0)
}

fn cookie_header(value: &str, secure: bool, max_age_s: i64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// A logged-in browser: who it is, with the permissions of the API, and its session.
pub struct Viewer {
    pub caller: Caller,
    pub session: SessionCookie,
}

impl Viewer {
    /// The token this viewer's forms carry.
    pub fn form_token(&self) -> String {
        self.session.form_token()
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(session) = SessionCookie::of(&parts.headers) else {
            return Err(to_login(parts));
        };
        let caller = session
            .caller(state)
            .await
            .map_err(|e| PageError::from(e).into_response())?;
        match caller {
            Some(caller) => Ok(Viewer { caller, session }),
            None => Err(to_login(parts)),
        }
    }
}

/// Where a request without a session goes: the login page, which brings a page asked for
/// by `GET` back to it.
fn to_login(parts: &Parts) -> Response {
    if parts.method != Method::GET {
        return PageError::new(
            StatusCode::UNAUTHORIZED,
            "your session ended (logged out, expired, or your token was rotated): log in again, then repeat what you did",
        )
        .into_response();
    }
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let query = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// Whether `next` is a page of this server to go back to after logging in: a path, never
/// another site (`//host`, `/\host` or a scheme).
pub fn is_local_path(next: &str) -> bool {
    next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(char::is_control)
}

/// A form posted from one of the dashboard's pages by a logged-in browser: its origin is
/// this server and it carries the session's form token. `T` is the form's other fields.
pub struct Posted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        same_origin(&parts.headers).map_err(IntoResponse::into_response)?;
        let bytes = crate::json::read_body(body, FORM_LIMIT)
            .await
            .map_err(|e| PageError::new(e.status, e.message).into_response())?;
        let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| bad_form(format!("the form could not be read: {e}")))?;
        let token = fields
            .iter()
            .find(|(name, _)| name == "form_token")
            .map(|(_, value)| value.as_str());
        if !token.is_some_and(|token| same_secret(token, &viewer.form_token())) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "this form did not come from a page ferry served to this browser in this session (or the page is older than your last login): reload the page and try again",
            )
            .into_response());
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| bad_form(format!("the form is not what this page sends: {e}")))?;
        Ok(Posted { viewer, form })
    }
}

/// A form with no fields but its token (logging out, restoring a backup).
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

fn bad_form(message: String) -> Response {
    PageError::new(StatusCode::BAD_REQUEST, message).into_response()
}

/// Refuses a request whose `Origin` names another site. Browsers send it with every form
/// posted; where it is missing, the form token (or, for the login form, the absence of a
/// session to ride on) protects.
pub fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    match (origin_host, host) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(PageError::new(
            StatusCode::FORBIDDEN,
            "this form was posted from another site: open ferry's own page and use the form there",
        )),
    }
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |differ, (x, y)| differ | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_server_are_gone_back_to() {
        for (next, local) in [
            ("/", true),
            ("/deployments/4?x=1", true),
            ("//evil.example/", false),
            ("/\\evil.example", false),
            ("https://evil.example/", false),
            ("evil", false),
            ("/a\nb", false),
            ("", false),
        ] {
            assert_eq!(is_local_path(next), local, "{next:?}");
        }
    }

    #[test]
    fn a_form_token_is_the_sessions_own() {
        let (a, b) = (SessionCookie::new().unwrap(), SessionCookie::new().unwrap());
        assert_eq!(a.form_token(), a.form_token());
        assert_ne!(a.form_token(), b.form_token());
        assert_eq!(a.form_token().len(), 64);
        assert_ne!(
            a.form_token(),
            a.hash(),
            "the form token is not what the store keeps"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn another_origin_is_refused() {
        let headers = |origin: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, "127.0.0.1:7070".parse().unwrap());
            if let Some(origin) = origin {
                headers.insert(ORIGIN, origin.parse().unwrap());
            }
            headers
        };
        assert!(same_origin(&headers(None)).is_ok());
        assert!(same_origin(&headers(Some("http://127.0.0.1:7070"))).is_ok());
        assert!(same_origin(&headers(Some("https://evil.example"))).is_err());
        assert!(same_origin(&headers(Some("null"))).is_err());
        assert!(same_origin(&headers(Some("http://127.0.0.1:7071"))).is_err());
    }

    #[test]
    fn the_cookie_is_kept_from_scripts_and_other_sites() {
        let cookie = SessionCookie::new().unwrap();
        let header = cookie.set_cookie(true, 60);
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=60",
        ] {
            assert!(header.contains(attribute), "{header}");
        }
        assert!(!cookie.set_cookie(false, 60).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
