//! The web dashboard, served at `/` by every server: pages rendered on the server from
//! templates (`crates/ferry-server/templates/`), readable without JavaScript; one small
//! script of ferry's own makes deployment pages update live. Every page and form goes
//! through the same services and permission checks as the API, as the logged-in user.
//!
//! Boundary: a browser is trusted with nothing but its session cookie (`session.rs`), and a
//! form changes something only with the session's form token and from ferry's own origin.

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
mod targets;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

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
