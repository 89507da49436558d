//! The follow-up work incidents leave: backlog items for the normal product path, and
//! backport obligations a hotfix owes to development.

use std::collections::HashSet;

use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::backport::{check_waive, ObligationStatus};
use ferry_domain::name::{validate_name, NameKind};
use ferry_domain::permission::{Action, Level};
use ferry_domain::pipeline::production;
use ferry_domain::routing::maintaining_team;
use ferry_store::{BacklogItem, Backport};

use super::apps::{no_such_app, visible_app};
use super::incidents::sees_for_support;
use super::{ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The names of the applications the caller follows for support; when `app` is given, it
/// must be one of them.
async fn support_apps(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
) -> ServiceResult<HashSet<String>> {
    let apps: HashSet<String> = state
        .store
        .list_apps()
        .await?
        .into_iter()
        .filter(|app| sees_for_support(caller, app))
        .map(|app| app.name)
        .collect();
    if let Some(app) = app {
        validate_name(NameKind::App, app)?;
        if !apps.contains(app) {
            return Err(no_such_app(app));
        }
    }
    Ok(apps)
}

/// Backlog items of the applications the caller follows (of `app` when given), newest
/// first.
pub async fn items(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
) -> ServiceResult<Vec<BacklogItem>> {
    let apps = support_apps(state, caller, app).await?;
    let mut items = state.store.backlog(app).await?;
    items.retain(|item| apps.contains(&item.app));
    Ok(items)
}

/// Backport obligations of the applications the caller follows (of `app` when given),
/// newest first.
pub async fn backports(
    state: &AppState,
    caller: &Caller,
    app: Option<&str>,
) -> ServiceResult<Vec<Backport>> {
    let apps = support_apps(state, caller, app).await?;
    let mut backports = state.store.backports(app).await?;
    backports.retain(|b| apps.contains(&b.app));
    Ok(backports)
}

/// Closes a backport obligation by hand: the fix will not reach development, and why (approve
/// level in production on the application). A waived obligation no longer feeds the
/// regression guard.
pub async fn waive(
    state: &AppState,
    caller: &Caller,
    id: i64,
    reason: &str,
) -> ServiceResult<Backport> {
    let missing = || {
        ServiceError::not_found(format!(
            "no backport obligation {id}: `ferry backport list` shows them"
        ))
    };
    let backport = state
        .store
        .backports(None)
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(missing)?;
    let app = visible_app(state, caller, &backport.app)
        .await
        .map_err(|_| missing())?;
    let pipeline = state.store.list_environments().await?;
    let production = production(&pipeline)
        .map(|e| e.name.as_str())
        .unwrap_or_default();
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: production,
        level: Level::Approve,
    })?;
    let status = backport.status;
    let reason = check_waive(id, status, reason).map_err(|e| match status {
        ObligationStatus::Open => ServiceError::invalid(e.to_string()),
        _ => ServiceError::policy("backport", e.to_string()),
    })?;
    let audit = caller.audit(
        AuditAction::BackportWaive(audit_event::BackportWaive {
            backport: id,
            hotfix_version: backport.hotfix_version.clone(),
            reason: reason.clone(),
            team: maintaining_team(&app.team, app.maintainer.as_deref()).to_owned(),
        }),
        format!("backport/{id}"),
        Some(&app.name),
    );
    let now = caller.now_ms();
    state
        .store
        .waive_backport(id, &caller.user.name, &reason, now, audit)
        .await?;
    Ok(Backport {
        status: ObligationStatus::Waived,
        closed_by: Some(caller.user.name.clone()),
        reason: Some(reason),
        closed_ms: Some(now),
        ..backport
    })
}
