//! Who is calling: bearer tokens, and the caller's permissions as the domain sees them.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ferry_domain::audit::AuditRecord;
use ferry_domain::audit_event::AuditAction;
use ferry_domain::permission::{decide, Action, Decision, Level, Principal, Role};
use ferry_domain::token::{format_token, hash_token};
use ferry_store::{TokenHolder, User};

use crate::error::ApiError;
use crate::services::{ServiceError, ServiceResult};
use crate::state::AppState;

/// A new API token: 256 bits from the operating system's generator.
pub fn new_token() -> anyhow::Result<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)?;
    Ok(format_token(&random))
}

/// The authenticated caller of a request.
pub struct Caller {
    pub user: User,
    pub principal: Principal,
    now_ms: i64,
}

impl Caller {
    /// Refuses with 403 and the domain's reason unless the caller may perform `action`.
    pub fn require(&self, action: Action<'_>) -> ServiceResult<()> {
        match decide(&self.principal, action) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(ServiceError::forbidden(reason)),
        }
    }

    /// Whether the caller may perform `action`.
    pub fn may(&self, action: Action<'_>) -> bool {
        decide(&self.principal, action).is_allowed()
    }

    /// The caller's level on `app` of `team` in `env`: the team role's, or a per-app
    /// grant's if higher.
    pub fn level_on(&self, app: &ferry_store::App, env: &str) -> Level {
        self.principal.level_on(&app.team, &app.name, env)
    }

    /// The audit record of a change this caller makes now.
    pub fn audit(&self, action: AuditAction, subject: String, app: Option<&str>) -> AuditRecord {
        action.record(self.now_ms, &self.user.name, subject, app)
    }

    /// The time the request is handled at.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }
}

/// Builds the domain's view of a user from their memberships and the stored roles.
pub fn principal_of(user: &User, roles: &[Role]) -> Result<Principal, ApiError> {
    let role = |name: &str| {
        roles
            .iter()
            .find(|r| r.name == name)
            .cloned()
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "user {:?} refers to a missing role {name:?}",
                    user.name
                ))
            })
    };
    let default_role = role(&user.default_role)?;
    let mut team_roles = BTreeMap::new();
    for membership in &user.teams {
        let team_role = match &membership.role {
            Some(name) => role(name)?,
            None => default_role.clone(),
        };
        team_roles.insert(membership.team.clone(), team_role);
    }
    let mut app_grants: BTreeMap<String, BTreeMap<String, Level>> = BTreeMap::new();
    for grant in &user.grants {
        app_grants
            .entry(grant.app.clone())
            .or_default()
            .insert(grant.env.clone(), grant.level);
    }
    Ok(Principal {
        user: user.name.clone(),
        default_role,
        team_roles,
        app_grants,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized(
                "missing API token: send `Authorization: Bearer TOKEN` (`ferry login` stores one for the CLI)",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
            })?;
        Caller::by_token(state, token).await
    }
}

impl Caller {
    /// The holder of API token `token`. Read from the store on every request, never cached:
    /// a rotated token or a disabled user is refused from the next request on, by every
    /// server sharing the database.
    pub async fn by_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
        let holder = state
            .store
            .user_by_token(&hash_token(token))
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "unknown API token: check FERRY_TOKEN or --token, or run `ferry login` again (a rotated token no longer works)",
                )
            })?;
        Caller::of(state, holder)
    }

    /// The caller a stored user is, with their roles; a disabled user is refused.
    pub fn of(
        state: &AppState,
        TokenHolder { user, roles }: TokenHolder,
    ) -> Result<Caller, ApiError> {
        if user.disabled_ms.is_some() {
            return Err(ApiError::unauthorized(format!(
                "user {:?} is disabled: ask an admin to enable them (`ferry user enable {}`)",
                user.name, user.name
            )));
        }
        let principal = principal_of(&user, &roles)?;
        Ok(Caller {
            user,
            principal,
            now_ms: state.clock.now_ms(),
        })
    }
}
