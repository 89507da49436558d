//! The dashboard's style sheet and script, compiled into the binary: a page never fetches
//! anything from elsewhere.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::page::PageError;

/// Every asset: its name, media type and bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "ferry.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/ferry.css"),
    ),
    (
        "ferry.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/ferry.js"),
    ),
    (
        "ferry.svg",
        "image/svg+xml",
        include_bytes!("../../assets/ferry.svg"),
    ),
];

/// `GET /assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(known, _, _)| *known == name) {
        Some((_, media_type, bytes)) => (
            [
                (CONTENT_TYPE, *media_type),
                // Short: a new ferry binary's assets reach browsers within minutes.
                (CACHE_CONTROL, "public, max-age=300"),
            ],
            *bytes,
        )
            .into_response(),
        None => PageError::new(StatusCode::NOT_FOUND, format!("no asset named {name:?}"))
            .into_response(),
    }
}
