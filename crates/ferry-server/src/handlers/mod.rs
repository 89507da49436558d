//! HTTP handlers, grouped by API version.

pub mod agent;
pub mod v1;

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::dashboard;
use crate::error::ApiError;

/// Liveness: the process serves requests; with the server's version, for `ferry doctor`.
pub async fn healthz() -> ([(&'static str, &'static str); 1], &'static str) {
    (
        [(ferry_api::SERVER_VERSION_HEADER, env!("CARGO_PKG_VERSION"))],
        "ok\n",
    )
}

/// Any path the API does not have.
/// Any path the server does not have: the API's error for the API, a page for a browser.
pub async fn no_such_endpoint(uri: Uri) -> Response {
    if is_api(&uri) {
        return ApiError::not_found("no such endpoint: see /api/v1/openapi.json for the API")
            .into_response();
    }
    dashboard::no_such_page(&uri)
}

/// A path the server has, with a method it does not accept.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    if is_api(&uri) {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not accept that method: see /api/v1/openapi.json",
        )
        .into_response();
    }
    dashboard::not_a_form_address(&method, &uri)
}

/// Whether a request is for the API (agents' included), not the dashboard.
fn is_api(uri: &Uri) -> bool {
    uri.path().starts_with("/api/")
}
