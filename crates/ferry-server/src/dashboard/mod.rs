//! The web dashboard, served at `/` by every server: pages rendered on the server from
//! templates (`crates/ferry-server/templates/`), readable without JavaScript; one small
//! script of ferry's own makes deployment pages update live. Every page and form goes
//! through the same services and permission checks as the API, as the logged-in user.
//!
//! Boundary: a browser is trusted with nothing but its session cookie (`session.rs`), and a
//! form changes something only with the session's form token and from ferry's own origin.

pub mod api_docs;
mod app;
mod assets;
mod audit;
mod deployment;
mod incident;
mod incidents;
pub mod live;
mod login;
mod overview;
mod page;
pub mod pulse;
mod session;
mod stream;
mod targets;

use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The most live streams (deployment pages, the overview's pulse) one user has open at
/// once, over all their sessions and tabs. A browser opens at most six connections to a
/// server over HTTP/1.1, so this is more than one person watches.
pub const LIVE_STREAMS_PER_USER: usize = 16;

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::form).post(login::log_in))
        .route("/logout", post(login::log_out))
        .route("/live/overview", get(pulse::events))
        .route("/apps/{app}", get(app::page))
        .route("/apps/{app}/diff", get(app::diff_page))
        .route("/apps/{app}/promote", post(app::promote))
        .route("/apps/{app}/deploy", post(app::deploy))
        .route("/apps/{app}/rollback", post(app::rollback))
        .route("/apps/{app}/backups/{id}/restore", post(app::restore))
        .route("/deployments/{id}", get(deployment::page))
        .route("/deployments/{id}/live", get(live::events))
        .route("/deployments/{id}/{act}", post(deployment::act))
        .route("/audit", get(audit::page))
        .route("/incidents", get(incidents::board))
        .route("/incidents/{id}", get(incident::page))
        .route("/incidents/{id}/{act}", post(incidents::act))
        .route("/targets", get(targets::page))
        .route("/assets/{name}", get(assets::asset))
        .layer(axum::middleware::map_response(page::hardened))
}

/// A page the dashboard does not have.
pub fn no_such_page(uri: &Uri) -> Response {
    let message = format!(
        "ferry has no page {}: the overview at / leads to every application",
        uri.path()
    );
    page::hardened_now(page::PageError::new(StatusCode::NOT_FOUND, message).into_response())
}

/// A form's address opened as a page (a reload after a refusal, say): back to the page the
/// form is on, its address without the form's last part; anything else is refused.
pub fn not_a_form_address(method: &Method, uri: &Uri) -> Response {
    let path = uri.path().trim_end_matches('/');
    match path.rsplit_once('/') {
        Some((page, _)) if *method == Method::GET => {
            Redirect::to(if page.is_empty() { "/" } else { page }).into_response()
        }
        _ => page::hardened_now(
            page::PageError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} takes only the form on its page", uri.path()),
            )
            .into_response(),
        ),
    }
}
