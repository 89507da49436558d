//! Which applications a caller may see.

use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;

use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The application named, if the caller may see it. An application of a team the caller
/// cannot see is reported as missing, so names do not leak across teams.
pub async fn visible_app(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ServiceResult<ferry_store::App> {
    validate_name(NameKind::App, name)?;
    state
        .store
        .app(name)
        .await?
        .filter(|app| {
            caller.may(Action::ViewApp {
                team: &app.team,
                app: &app.name,
            })
        })
        .ok_or_else(|| no_such_app(name))
}

/// 404 for an application that does not exist or that the caller may not see: the two look
/// the same, so names do not leak across teams.
pub fn no_such_app(name: &str) -> ServiceError {
    ServiceError::not_found(format!(
        "no application named {name:?}: see `ferry app list`"
    ))
}
