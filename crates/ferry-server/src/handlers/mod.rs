//! HTTP handlers, grouped by API version.

pub mod agent;
pub mod v1;

use axum::http::StatusCode;

use crate::error::ApiError;

/// Liveness: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Any path the API does not have.
pub async fn no_such_endpoint() -> ApiError {
    ApiError::not_found("no such endpoint: see /api/v1/openapi.json for the API")
}

/// A path the API has, with a method it does not accept.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method: see /api/v1/openapi.json",
    )
}
