//! What every page shares: the frame around it (who is logged in, the navigation, the
//! logout form), rendering a template into a response, and pages that say why not.

use askama::Template;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_store::StoreError;

use super::session::Viewer;
use crate::error::ApiError;
use crate::services::ServiceError;

/// The parts of the dashboard the navigation leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Overview,
    Incidents,
    Audit,
    Targets,
    Api,
}

/// The frame around a page: the viewer's name, the token its forms carry, where they are.
pub struct Frame {
    pub user: String,
    pub form_token: String,
    pub section: Section,
}

impl Frame {
    pub fn of(viewer: &Viewer, section: Section) -> Frame {
        Frame {
            user: viewer.caller.user.name.clone(),
            form_token: viewer.form_token(),
            section,
        }
    }

    /// `aria-current` for the navigation's link to `section`.
    pub fn current(&self, section: Section) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

/// A rendered page, sent as HTML.
pub fn html(page: &impl Template) -> Result<Response, PageError> {
    html_with_status(StatusCode::OK, page)
}

/// A rendered page sent with `status` (a form shown again with why it was refused, say).
pub fn html_with_status(status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
    let body = page.render().map_err(|e| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the page failed: {e}"),
        )
    })?;
    Ok((
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

/// Why a page cannot be shown or a form was refused: the status and the same message the
/// API and the command line give.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!("dashboard: {}", self.message);
        }
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::UNAUTHORIZED => "Logged out",
            StatusCode::FORBIDDEN => "Not allowed",
            status if status.is_server_error() => "Something went wrong",
            _ => "Refused",
        };
        let page = ErrorPage {
            title,
            message: &self.message,
        };
        match html_with_status(self.status, &page) {
            Ok(response) => response,
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> PageError {
        PageError::new(error.status, error.message)
    }
}

impl From<ServiceError> for PageError {
    fn from(error: ServiceError) -> PageError {
        ApiError::from(error).into()
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> PageError {
        ApiError::from(error).into()
    }
}

/// Headers on every dashboard response: nothing but ferry's own scripts, styles and forms,
/// never inside another site's frame, pages never cached (they show who may do what now).
/// An error the framework answered in plain text (a number in the address that is not
/// one, a query it cannot read) becomes a page saying so.
pub async fn hardened(response: Response) -> Response {
    let plain_refusal = response.status().is_client_error()
        && response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"));
    if !plain_refusal {
        return hardened_now(response);
    }
    let status = response.status();
    let said = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let message = format!("this address cannot be read: {said}");
    hardened_now(PageError::new(status, message).into_response())
}

/// The headers of [`hardened`], on a response in hand.
pub fn hardened_now(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
