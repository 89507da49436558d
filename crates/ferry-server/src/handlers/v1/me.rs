//! `/api/v1/me`: who the token belongs to.

use axum::Json;
use ferry_api::WhoAmI;

use super::users::team_roles;
use crate::auth::Caller;
use crate::error::ApiError;

/// The caller's user, default role and teams.
#[utoipa::path(get, path = "/api/v1/me", tag = "access",
    responses((status = 200, body = WhoAmI), (status = 401, body = ferry_api::ErrorBody)))]
pub async fn whoami(caller: Caller) -> Result<Json<WhoAmI>, ApiError> {
    Ok(Json(WhoAmI {
        user: caller.user.name.clone(),
        role: caller.user.default_role.clone(),
        teams: team_roles(&caller.user),
    }))
}
