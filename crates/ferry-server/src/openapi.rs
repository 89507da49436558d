//! The router, with the OpenAPI document generated from the handlers' annotations.

use std::any::Any;

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::handlers::{self, v1};
use crate::metrics;
use crate::state::AppState;

mod common_errors;

#[derive(OpenApi)]
#[openapi(
    info(title = "ferry", description = "Self-service release management and production support"),
    modifiers(&BearerToken),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(v1::me::whoami))
        .routes(routes!(v1::teams::list_teams, v1::teams::create_team))
        .routes(routes!(v1::users::list_users, v1::users::create_user))
        .routes(routes!(v1::users::rotate_token))
        .routes(routes!(v1::users::set_password))
        .routes(routes!(v1::users::disable_user))
        .routes(routes!(v1::users::enable_user))
        .routes(routes!(v1::roles::list_roles))
        .routes(routes!(v1::roles::set_role_level))
        .routes(routes!(
            v1::environments::list_environments,
            v1::environments::create_environment
        ))
        .routes(routes!(
            v1::environments::change_policy,
            v1::environments::delete_environment
        ))
        .routes(routes!(v1::environments::rename_environment))
        .routes(routes!(v1::environments::freeze_environment))
        .routes(routes!(v1::environments::unfreeze_environment))
        .routes(routes!(v1::apps::list_apps, v1::apps::create_app))
        .routes(routes!(v1::apps::show_app, v1::apps::change_app))
        .routes(routes!(v1::blobs::missing_blobs))
        .routes(routes!(v1::blobs::upload_blobs))
        .routes(routes!(v1::blobs::fetch_blobs))
        .routes(routes!(
            v1::releases::list_releases,
            v1::releases::create_release
        ))
        .routes(routes!(v1::releases::show_release))
        .routes(routes!(v1::releases::release_manifest))
        .routes(routes!(v1::releases::diff_releases))
        .routes(routes!(v1::maintenance::prune))
        .routes(routes!(v1::maintenance::check_integrity))
        .routes(routes!(v1::targets::enroll))
        .routes(routes!(v1::targets::list_targets))
        .routes(routes!(v1::targets::remove_target))
        .routes(routes!(v1::targets::place))
        .routes(routes!(v1::apps::list_grants, v1::apps::set_grant))
        .routes(routes!(
            v1::incidents::list_incidents,
            v1::incidents::open_incident
        ))
        .routes(routes!(v1::incidents::show_incident))
        .routes(routes!(v1::incidents::ack_incident))
        .routes(routes!(v1::incidents::resolve_incident))
        .routes(routes!(v1::incidents::start_hotfix))
        .routes(routes!(v1::support::list_backlog))
        .routes(routes!(v1::support::list_backports))
        .routes(routes!(v1::support::waive_backport))
        .routes(routes!(
            v1::support::show_team_support,
            v1::support::set_team_support
        ))
        .routes(routes!(v1::support::list_routes, v1::support::set_route))
        .routes(routes!(v1::support::remove_route))
        .routes(routes!(v1::support::set_maintainer))
        .routes(routes!(v1::teams::list_members))
        .routes(routes!(v1::teams::set_member, v1::teams::remove_member))
        .routes(routes!(
            v1::channels::list_channels,
            v1::channels::add_channel
        ))
        .routes(routes!(v1::channels::remove_channel))
        .routes(routes!(v1::channels::test_channel))
        .routes(routes!(v1::channels::list_deliveries))
        .routes(routes!(v1::channels::show_delivery))
        .routes(routes!(v1::deployments::deploy))
        .routes(routes!(v1::deployments::rollback))
        .routes(routes!(v1::deployments::promote))
        .routes(routes!(v1::deployments::approve))
        .routes(routes!(v1::deployments::reject))
        .routes(routes!(v1::deployments::cancel))
        .routes(routes!(v1::deployments::show))
        .routes(routes!(v1::deployments::logs))
        .routes(routes!(v1::deployments::list))
        .routes(routes!(v1::deployments::status))
        .routes(routes!(v1::drift::list))
        .routes(routes!(v1::drift::check))
        .routes(routes!(v1::drift::capture))
        .routes(routes!(v1::drift::revert))
        .routes(routes!(v1::tasks::show))
        .routes(routes!(v1::config::show, v1::config::edit))
        .routes(routes!(v1::config::history))
        .routes(routes!(v1::config::compare))
        .routes(routes!(v1::config::apply))
        .routes(routes!(v1::backups::list, v1::backups::create))
        .routes(routes!(v1::backups::show))
        .routes(routes!(v1::backups::restore))
        .routes(routes!(v1::backups::manifest))
        .routes(routes!(v1::backups::fetch_blobs))
        .routes(routes!(handlers::agent::enroll))
        .routes(routes!(handlers::agent::desired))
        .routes(routes!(handlers::agent::manifest))
        .routes(routes!(handlers::agent::config))
        .routes(routes!(handlers::agent::fetch_blobs))
        .routes(routes!(handlers::agent::report))
        .routes(routes!(handlers::agent::heartbeat))
        .routes(routes!(handlers::agent::drift))
        .routes(routes!(handlers::agent::task))
        .routes(routes!(handlers::agent::capture))
        .routes(routes!(handlers::agent::missing_blobs))
        .routes(routes!(handlers::agent::upload_blobs))
        .routes(routes!(handlers::agent::backup))
        .routes(routes!(v1::audit::list_events))
        .routes(routes!(v1::audit::verify))
        .split_for_parts();
    common_errors::add(&mut openapi);
    // Bytes: each handle on the router shares the document instead of copying it.
    let openapi_json = axum::body::Bytes::from(openapi.to_pretty_json().unwrap_or_default());
    let reference = crate::dashboard::api_docs::Reference::of(openapi_json.clone());
    api.route(
        "/api/v1/openapi.json",
        get(move || async move { ([("content-type", "application/json")], openapi_json) }),
    )
    .route(
        "/api/docs",
        get(move |viewer| crate::dashboard::api_docs::page(viewer, reference.clone())),
    )
    .merge(crate::dashboard::routes())
    .route("/healthz", get(handlers::healthz))
    .route("/metrics", get(metrics::render))
    .fallback(handlers::no_such_endpoint)
    .method_not_allowed_fallback(handlers::method_not_allowed)
    .layer(axum::middleware::from_fn(metrics::track))
    .layer(CatchPanicLayer::custom(panic_response))
    .with_state(state)
}

/// A panic is a bug: log it, answer 500 in the API's error format, keep serving.
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!("panic while handling a request: {message}");
    ApiError::internal("the server hit a bug handling this request; see the server log")
        .into_response()
}
