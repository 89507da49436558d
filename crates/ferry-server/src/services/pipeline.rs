//! The pipeline as use cases see it: environments, their policy and freeze windows.

use ferry_api::{ChangePolicy, CreateEnvironment, RenameEnvironment};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::freeze::FreezeWindow;
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_domain::pipeline::Environment;
use ferry_store::{EnvironmentChange, FreezeWindowRecord, PolicyChange};

use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The most approvals an environment may require; more is a typo, not a policy.
const MAX_APPROVALS: u32 = 10;

/// The environment named; not found, naming `ferry env list`, when the pipeline has none.
pub async fn environment(state: &AppState, env: &str) -> ServiceResult<Environment> {
    validate_name(NameKind::Environment, env)?;
    state
        .store
        .list_environments()
        .await?
        .into_iter()
        .find(|e| e.name == env)
        .ok_or_else(|| {
            ServiceError::not_found(format!(
                "no environment named {env:?}: see `ferry env list`"
            ))
        })
}

/// Inserts an environment after another (or at the end), with that environment's policy
/// and every role's level there (release manager or admin).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: CreateEnvironment,
) -> ServiceResult<Environment> {
    validate_name(NameKind::Environment, &request.name)?;
    if let Some(after) = &request.after {
        validate_name(NameKind::Environment, after)?;
    }
    caller.require(Action::ChangePolicy)?;
    let record = caller.audit(
        AuditAction::EnvironmentCreate(audit_event::EnvironmentCreate {
            after: request.after.clone(),
        }),
        format!("environment/{}", request.name),
        None,
    );
    Ok(state
        .store
        .create_environment(&request.name, request.after.as_deref(), record)
        .await?)
}

/// Deletes an environment from the pipeline with its role levels, freeze windows and
/// application grants (release manager or admin). Refused, naming why, for the only
/// environment, for production when what would follow it is unprotected, while a release
/// runs there, a deployment is active or targets serve there, and when it has a history.
pub async fn delete(state: &AppState, caller: &Caller, name: &str) -> ServiceResult<()> {
    validate_name(NameKind::Environment, name)?;
    caller.require(Action::ChangePolicy)?;
    let env = environment(state, name).await?;
    let record = caller.audit(
        AuditAction::EnvironmentDelete(audit_event::EnvironmentDelete {
            position: env.position,
        }),
        format!("environment/{name}"),
        None,
    );
    Ok(state.store.delete_environment(name, record).await?)
}

/// Renames an environment, its targets, role levels, freeze windows and grants following
/// (release manager or admin); refused for one with a history of deployments or incidents.
pub async fn rename(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: RenameEnvironment,
) -> ServiceResult<Environment> {
    validate_name(NameKind::Environment, name)?;
    validate_name(NameKind::Environment, &request.to)?;
    caller.require(Action::ChangePolicy)?;
    let env = environment(state, name).await?;
    let record = caller.audit(
        AuditAction::EnvironmentRename(audit_event::EnvironmentRename {
            to: request.to.clone(),
        }),
        format!("environment/{}", env.name),
        None,
    );
    Ok(state
        .store
        .rename_environment(&env.name, &request.to, record)
        .await?)
}

/// What to tell whoever created `env`: releases cannot pass an environment that is not
/// optional and has no targets, so say how to make it passable.
pub fn passability_warning(env: &Environment) -> Option<String> {
    (!env.optional).then(|| {
        format!(
            "{name} has no targets, so no release can pass it on its way along the pipeline until \
             a target is enrolled there (`ferry target enroll {name} TARGET`); to let releases \
             skip it instead: `ferry env set {name} --optional true`",
            name = env.name
        )
    })
}

/// Changes an environment's policy and freeze windows (release manager or admin). Every
/// part is checked before anything changes, and all of it changes in one transaction.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: ChangePolicy,
) -> ServiceResult<Environment> {
    validate_name(NameKind::Environment, name)?;
    if request.approvals.is_some_and(|n| n > MAX_APPROVALS) {
        return Err(ServiceError::invalid(format!(
            "approvals must be between 0 and {MAX_APPROVALS}"
        )));
    }
    let policy_changes = request.approvals.is_some()
        || request.self_approval.is_some()
        || request.protected.is_some()
        || request.optional.is_some();
    if !policy_changes && request.freeze.is_empty() && request.unfreeze.is_empty() {
        return Err(ServiceError::invalid(
            "nothing to change: give approvals, self_approval, protected, optional, freeze or unfreeze",
        ));
    }
    caller.require(Action::ChangePolicy)?;
    let env = environment(state, name).await?;
    let existing = state.store.freeze_windows(Some(name)).await?;
    let canonical = |text: &String| {
        FreezeWindow::parse(text)
            .map(|w| w.to_string())
            .map_err(|e| ServiceError::invalid(format!("freeze window {text:?}: {e}")))
    };
    let added = request
        .freeze
        .iter()
        .map(canonical)
        .collect::<Result<Vec<_>, _>>()?;
    let mut removed = Vec::new();
    for text in &request.unfreeze {
        // Removed as listed, or as any spelling of the same window.
        let window = existing
            .iter()
            .find(|w| w.expression == *text || canonical(text).ok().as_ref() == Some(&w.expression))
            .ok_or_else(|| {
                ServiceError::not_found(format!(
                    "{name} has no freeze window {text:?}: see `ferry env list`"
                ))
            })?;
        removed.push(window.expression.clone());
    }
    if let Some(duplicate) = added
        .iter()
        .find(|a| existing.iter().any(|w| w.expression == **a))
    {
        return Err(ServiceError::already_exists(format!(
            "{name} has the freeze window {duplicate:?} already"
        )));
    }
    let audit = |action| caller.audit(action, format!("environment/{name}"), None);
    let change = EnvironmentChange {
        policy: policy_changes.then(|| {
            let change = PolicyChange {
                approvals_required: request.approvals,
                self_approval: request.self_approval,
                protected: request.protected,
                optional: request.optional,
            };
            let record = audit(AuditAction::EnvironmentSetPolicy(
                audit_event::EnvironmentSetPolicy {
                    approvals: request.approvals,
                    self_approval: request.self_approval,
                    protected: request.protected,
                    optional: request.optional,
                },
            ));
            (change, record)
        }),
        unfreeze: removed
            .into_iter()
            .map(|window| {
                let record = audit(AuditAction::EnvironmentUnfreeze(
                    audit_event::FreezeWindow {
                        window: window.clone(),
                    },
                ));
                (window, record)
            })
            .collect(),
        freeze: added
            .into_iter()
            .map(|expression| {
                let record = audit(AuditAction::EnvironmentFreeze(audit_event::FreezeWindow {
                    window: expression.clone(),
                }));
                let window = FreezeWindowRecord {
                    env: name.to_owned(),
                    expression,
                    created_ms: caller.now_ms(),
                };
                (window, record)
            })
            .collect(),
    };
    // One transaction: the policy and every window change, or nothing.
    Ok(state.store.change_environment(&env.name, change).await?)
}
