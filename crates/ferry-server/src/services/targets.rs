//! Targets, the servers that run applications: enrolling them and placing applications on
//! them.

use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::token::hash_token;
use ferry_store::Target;

use super::apps::visible_app;
use super::{ServiceError, ServiceResult};
use crate::auth::{new_token, Caller};
use crate::state::AppState;

/// How long an enrollment token stays valid.
const ENROLLMENT_VALID_MS: i64 = 60 * 60 * 1000;

/// A one-time enrollment token, which exists nowhere else (the server keeps its hash).
pub struct Enrollment {
    pub target: Target,
    /// With TLS, `TOKEN.FINGERPRINT`: the agent learns which certificate to pin from it.
    pub token: String,
    pub expires_ms: i64,
}

/// A one-time token with which a new server's agent enrolls as target `name` of `env`
/// (release manager or admin).
pub async fn enroll(
    state: &AppState,
    caller: &Caller,
    env: &str,
    name: &str,
) -> ServiceResult<Enrollment> {
    validate_name(NameKind::Environment, env)?;
    validate_name(NameKind::Target, name)?;
    caller.require(Action::ChangePolicy)?;
    let token = new_token().map_err(|e| ServiceError::internal(e.to_string()))?;
    let expires_ms = caller.now_ms() + ENROLLMENT_VALID_MS;
    let record = caller.audit(
        AuditAction::TargetEnrollToken(audit_event::TargetEnrollToken {
            env: env.to_owned(),
        }),
        format!("target/{name}"),
        None,
    );
    let target = state
        .store
        .create_enrollment(env, name, &hash_token(&token), expires_ms, record)
        .await?;
    Ok(Enrollment {
        target,
        token: match &state.tls_fingerprint {
            Some(fingerprint) => format!("{token}.{fingerprint}"),
            None => token,
        },
        expires_ms,
    })
}

/// Takes a target out of service (release manager or admin): its agent's credential is
/// refused from the commit on, it leaves the target list, placements and status, and its
/// history stays. Enrolling its name again brings it back for a new agent to take over.
pub async fn remove(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<Target> {
    validate_name(NameKind::Target, name)?;
    caller.require(Action::ChangePolicy)?;
    let target = state
        .store
        .list_targets()
        .await?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "no target {name:?} in service; `ferry target list` shows them"
            ))
        })?;
    let record = caller.audit(
        AuditAction::TargetRemove(audit_event::TargetRemove {
            env: target.env.clone(),
        }),
        format!("target/{name}"),
        None,
    );
    Ok(state
        .store
        .remove_target(name, caller.now_ms(), record)
        .await?)
}

/// Places an application on exactly these targets of an environment (approve level there);
/// returns the placement as stored.
pub async fn place(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    targets: &[String],
) -> ServiceResult<Vec<String>> {
    let app = visible_app(state, caller, app).await?;
    validate_name(NameKind::Environment, env)?;
    for target in targets {
        validate_name(NameKind::Target, target)?;
    }
    if targets.is_empty() {
        return Err(ServiceError::invalid(
            "name at least one target: --targets T1,T2",
        ));
    }
    caller.require(Action::InEnvironment {
        team: &app.team,
        env,
        level: Level::Approve,
    })?;
    let record = caller.audit(
        AuditAction::AppPlace(audit_event::AppPlace {
            env: env.to_owned(),
            targets: targets.to_vec(),
        }),
        format!("app/{}", app.name),
        Some(&app.name),
    );
    state
        .store
        .place_app(&app.name, env, targets, record)
        .await?;
    Ok(state.store.placement(&app.name, env).await?)
}

/// The target named, if it is in service; not found otherwise, saying so when the name is
/// an application's the caller may see (names given the wrong way round are common).
pub async fn in_service(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<Target> {
    validate_name(NameKind::Target, name)?;
    let found = state
        .store
        .list_targets()
        .await?
        .into_iter()
        .find(|target| target.name == name);
    if let Some(target) = found {
        return Ok(target);
    }
    // Names given the wrong way round (`ferry drift revert APP TARGET`) are common.
    let mixed_up = match visible_app(state, caller, name).await {
        Ok(_) => format!(" ({name} is an application: the target comes first)"),
        Err(_) => String::new(),
    };
    Err(ServiceError::not_found(format!(
        "no target {name:?}{mixed_up}: `ferry target list` shows the targets"
    )))
}
