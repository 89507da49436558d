//! The pipeline's policy applied to a deployment request: the release's lifecycle, no
//! silent downgrade, freeze windows, approvals, and break-glass. The rules live in the
//! domain; this gathers what they need from the store.

use ferry_domain::approval::needs_approval;
use ferry_domain::downgrade::check_downgrade;
use ferry_domain::freeze::{check_freeze, frozen_until, FreezeWindow};
use ferry_domain::lifecycle::{check_entry, Candidate, ReleaseKind};
use ferry_domain::overrides::{break_glass, BreakGlass};
use ferry_domain::permission::Level;
use ferry_domain::pipeline::Environment;
use ferry_store::{App, DeploymentRecord, Release};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// What is asked, and which overrides come with it.
pub struct Ask<'a> {
    pub app: &'a App,
    pub env: &'a Environment,
    pub release: &'a Release,
    /// `ferry rollback`: going back is its purpose, and approvals do not hold it up.
    pub rollback: bool,
    pub allow_downgrade: bool,
    /// `--break-glass` with its `--reason`.
    pub break_glass: Option<Option<&'a str>>,
    /// `--override-guard` with its `--reason`.
    pub override_guard: Option<Option<&'a str>>,
}

/// What policy decided for a request it lets through.
pub struct Verdict {
    /// The deployment waits for approvals before it starts.
    pub awaits_approval: bool,
    /// A break-glass that was accepted, to audit.
    pub break_glass: Option<BreakGlass>,
    /// An accepted override of the regression guard, to audit: the reason and what it lets
    /// through.
    pub guard_override: Option<serde_json::Value>,
    /// Paths of shipped hotfixes the release changes differently: allowed, for review.
    pub review: Vec<String>,
}

impl Verdict {
    /// Nothing to wait for, override or review.
    pub fn clear() -> Verdict {
        Verdict {
            awaits_approval: false,
            break_glass: None,
            guard_override: None,
            review: Vec::new(),
        }
    }
}

/// The deployments of `app` that went live, in any environment, newest first.
pub async fn live_history(state: &AppState, app: &str) -> Result<Vec<DeploymentRecord>, ApiError> {
    Ok(state
        .store
        .list_deployments(Some(app), 1000)
        .await?
        .into_iter()
        .filter(DeploymentRecord::went_live)
        .collect())
}

/// Applies the policy of `ask.env` to the request, refusing with the rule that stops it.
pub async fn judge(state: &AppState, caller: &Caller, ask: &Ask<'_>) -> Result<Verdict, ApiError> {
    let (app, env, version) = (&ask.app.name, &ask.env.name, &ask.release.version);
    let history = live_history(state, app).await?;
    if !ask.rollback {
        let pipeline = state.store.list_environments().await?;
        let passed: Vec<&str> = history
            .iter()
            .filter(|d| d.version == *version)
            .map(|d| d.env.as_str())
            .collect();
        let candidate = Candidate {
            app,
            version,
            kind: match ask.release.hotfix_of {
                Some(_) => ReleaseKind::Hotfix,
                None => ReleaseKind::Product,
            },
        };
        check_entry(&pipeline, &candidate, &passed, env)
            .map_err(|e| ApiError::policy("lifecycle", e.to_string()))?;
        if !ask.allow_downgrade {
            // Oldest first, each version where it first succeeded here.
            let mut first_seen: Vec<&str> = Vec::new();
            for d in history.iter().rev().filter(|d| d.env == *env) {
                if !first_seen.contains(&d.version.as_str()) {
                    first_seen.push(&d.version);
                }
            }
            let running = history
                .iter()
                .find(|d| d.env == *env)
                .map(|d| d.version.as_str());
            check_downgrade(app, env, &first_seen, running, version)
                .map_err(|e| ApiError::policy("downgrade", e.to_string()))?;
        }
    }
    let (guard_override, review) = if ask.rollback || pipeline_start(state).await? == *env {
        (None, Vec::new())
    } else {
        regression_guard(state, caller, ask).await?
    };
    let windows = freeze_windows(state, env).await?;
    let now = caller.now_ms();
    let break_glass = match ask.break_glass {
        Some(reason) => Some(
            break_glass(
                &caller.user.name,
                env,
                caller.level_on(ask.app, env),
                reason,
                &ask.env.policy,
                frozen_until(&windows, now),
            )
            .map_err(|e| ApiError::forbidden(e.to_string()))?,
        ),
        None => {
            check_freeze(env, &windows, now)
                .map_err(|e| ApiError::policy("frozen", e.to_string()))?;
            None
        }
    };
    Ok(Verdict {
        awaits_approval: !ask.rollback && needs_approval(&ask.env.policy, break_glass.is_some()),
        break_glass,
        guard_override,
        review,
    })
}

/// The first environment of the pipeline, where the guard does not apply: dev is where
/// fixes are merged.
async fn pipeline_start(state: &AppState) -> Result<String, ApiError> {
    let pipeline = state.store.list_environments().await?;
    Ok(pipeline.first().map(|e| e.name.clone()).unwrap_or_default())
}

/// The regression guard: a release that would undo a hotfix shipped to production is refused
/// unless `--override-guard --reason` comes from someone with approve level there. Rollbacks
/// are not checked: going back is their purpose, and they are audited as such.
async fn regression_guard(
    state: &AppState,
    caller: &Caller,
    ask: &Ask<'_>,
) -> Result<(Option<serde_json::Value>, Vec<String>), ApiError> {
    let (app, env) = (&ask.app.name, &ask.env.name);
    let outcome = crate::support::guard(state, app, env, ask.release).await?;
    let Some(reason) = ask.override_guard else {
        if let Some(undone) = outcome.undone.first() {
            return Err(ApiError::policy("guard", undone.to_string()));
        }
        return Ok((None, outcome.review));
    };
    let level = caller.level_on(ask.app, env);
    if level < Level::Approve {
        return Err(ApiError::forbidden(format!(
            "user {:?} has {level} on {env:?} for {app}; --override-guard needs approve",
            caller.user.name
        )));
    }
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::policy(
                "guard",
                "--override-guard needs --reason TEXT: say why undoing the hotfix is intended",
            )
        })?;
    let overridden: Vec<serde_json::Value> = outcome
        .undone
        .iter()
        .map(|u| {
            serde_json::json!({ "hotfix_version": u.hotfix_version, "incident": u.incident,
                "missing": u.missing })
        })
        .collect();
    Ok((
        Some(serde_json::json!({ "reason": reason, "overridden": overridden })),
        outcome.review,
    ))
}

/// The freeze windows of an environment, parsed (they were checked when added).
pub async fn freeze_windows(state: &AppState, env: &str) -> Result<Vec<FreezeWindow>, ApiError> {
    state
        .store
        .freeze_windows(Some(env))
        .await?
        .iter()
        .map(|w| {
            FreezeWindow::parse(&w.expression).map_err(|e| {
                ApiError::internal(format!(
                    "freeze window {:?} of {env} is unreadable: {e}",
                    w.expression
                ))
            })
        })
        .collect()
}
