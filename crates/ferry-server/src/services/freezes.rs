//! Freezing an environment now: `ferry env freeze ENV --for 2h --reason TEXT` and `ferry env
//! unfreeze ENV`, beside the recurring windows `ferry env set --freeze` adds; and what
//! freezes an environment, for policy and for `ferry env list`. The rules (bounds,
//! replacing, what unfreeze ends, chaining) live in `ferry_domain::freeze`.

use ferry_api::{FreezeEnvironment, UnfreezeEnvironment};
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::freeze::{
    check_replacement, check_unfreeze, checked_reason, still_frozen, FreezeEnd, FreezeWindow,
    Freezes, OneOffFreeze,
};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::Action;
use ferry_domain::pipeline::Environment;
use ferry_store::{FreezeWindowRecord, OneOffFreezeRecord};

use super::pipeline::environment;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The freeze windows and one-off freeze of one environment.
pub async fn of(state: &AppState, env: &str) -> ServiceResult<Freezes> {
    let windows = state.store.freeze_windows(Some(env)).await?;
    let one_offs = state.store.one_off_freezes(Some(env)).await?;
    assemble(env, &windows, &one_offs)
}

/// The freezes of `env` among those of every environment (read once for a whole pipeline).
pub fn assemble(
    env: &str,
    windows: &[FreezeWindowRecord],
    one_offs: &[OneOffFreezeRecord],
) -> ServiceResult<Freezes> {
    let windows = windows
        .iter()
        .filter(|w| w.env == env)
        .map(|w| {
            // They were checked when added.
            FreezeWindow::parse(&w.expression).map_err(|e| {
                ServiceError::internal(format!(
                    "freeze window {:?} of {env} is unreadable: {e}",
                    w.expression
                ))
            })
        })
        .collect::<ServiceResult<Vec<_>>>()?;
    let one_off = one_offs
        .iter()
        .find(|f| f.env == env)
        .map(|f| f.freeze.clone());
    Ok(Freezes { windows, one_off })
}

/// Freezes `env` from now (release manager or admin, as for freeze windows), in place of a
/// one-off freeze in force that ends no later; audited.
pub async fn freeze(
    state: &AppState,
    caller: &Caller,
    env: &str,
    request: FreezeEnvironment,
) -> ServiceResult<Environment> {
    validate_name(NameKind::Environment, env)?;
    let end = match (&request.lasting, &request.until) {
        (Some(lasting), None) => FreezeEnd::parse_for(lasting),
        (None, Some(until)) => FreezeEnd::parse_until(until),
        _ => {
            return Err(ServiceError::invalid(
                "say how long the freeze lasts: give --for DURATION (like 2h) or --until \
                 \"YYYY-MM-DD HH:MM\" (UTC), not both",
            ))
        }
    }
    .map_err(ServiceError::invalid)?;
    let now = caller.now_ms();
    let new = OneOffFreeze::new(now, end, &request.reason, &caller.user.name)
        .map_err(ServiceError::invalid)?;
    caller.require(Action::ChangePolicy)?;
    let env = environment(state, env).await?;
    // Only the one-off freeze is replaced: the windows need not be read.
    let current = state
        .store
        .one_off_freezes(Some(&env.name))
        .await?
        .into_iter()
        .next()
        .map(|record| record.freeze);
    check_replacement(&env.name, current.as_ref(), &new, now)
        .map_err(|e| ServiceError::policy("frozen", e))?;
    let replacing = current.as_ref().map(|c| c.until_ms);
    let record = caller.audit(
        AuditAction::EnvironmentFreezeNow(audit_event::FreezeNow {
            until_ms: new.until_ms,
            reason: new.reason.clone(),
            replaced_until_ms: current
                .as_ref()
                .filter(|c| c.active_at(now).is_some())
                .map(|c| c.until_ms),
        }),
        format!("environment/{}", env.name),
        None,
    );
    let freeze = OneOffFreezeRecord {
        env: env.name.clone(),
        freeze: new,
    };
    state.store.freeze_now(freeze, replacing, record).await?;
    Ok(env)
}

/// Ends the one-off freeze of `env` in force now (release manager or admin); audited with
/// the freeze it ends. Refused, changing nothing, when none is in force (`ENV is not
/// frozen`, or what holds it instead). Also says what still holds it: its freeze windows.
pub async fn unfreeze(
    state: &AppState,
    caller: &Caller,
    env: &str,
    request: UnfreezeEnvironment,
) -> ServiceResult<(Environment, Option<String>)> {
    validate_name(NameKind::Environment, env)?;
    let reason = request
        .reason
        .as_deref()
        .map(|r| checked_reason(r, "the reason"))
        .transpose()
        .map_err(ServiceError::invalid)?
        .filter(|r| !r.is_empty());
    caller.require(Action::ChangePolicy)?;
    let env = environment(state, env).await?;
    let freezes = of(state, &env.name).await?;
    let now = caller.now_ms();
    let ended = check_unfreeze(&env.name, &freezes, now)
        .map_err(|e| ServiceError::policy("not_frozen", e))?;
    let record = caller.audit(
        AuditAction::EnvironmentUnfreezeNow(audit_event::UnfreezeNow {
            until_ms: ended.until_ms,
            frozen_for: ended.reason.clone(),
            frozen_by: ended.by.clone(),
            reason,
        }),
        format!("environment/{}", env.name),
        None,
    );
    state
        .store
        .end_freeze(&env.name, ended.until_ms, record)
        .await?;
    let warning = still_frozen(&env.name, &freezes.windows, now);
    Ok((env, warning))
}
