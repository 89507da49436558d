//! The pipeline's policy applied to a deployment request: the release's lifecycle, no
//! silent downgrade, freezes (windows and one-off freezes), approvals, break-glass and the
//! regression guard; and applied again, with the overrides granted on the request, by the
//! approval that would start a deployment that waited. The rules live in the domain; this gathers what they need
//! from the store.

use ferry_domain::approval::needs_approval;
use ferry_domain::audit_event;
use ferry_domain::deployment::Kind;
use ferry_domain::downgrade::check_downgrade;
use ferry_domain::freeze::{check_freeze, frozen_until, FrozenNow};
use ferry_domain::guard::{Undone, UndoneHotfixes};
use ferry_domain::lifecycle::{check_entry, Candidate, ReleaseKind};
use ferry_domain::overrides::{break_glass, BreakGlass};
use ferry_domain::permission::Level;
use ferry_domain::pipeline::{is_development, Environment};
use ferry_store::{App, DeploymentRecord, Release};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::services::{ServiceError, ServiceResult};
use crate::state::AppState;

/// What is asked, and which overrides come with it.
pub struct Ask<'a> {
    pub app: &'a App,
    pub env: &'a Environment,
    pub release: &'a Release,
    /// What the deployment does. A rollback (`ferry rollback`) goes back, which is its
    /// purpose, so neither the lifecycle, downgrades nor approvals hold it up; freezes (windows
    /// and one-off freezes) and the regression guard do. A stage-only deployment switches
    /// nothing, so neither downgrades, the regression guard nor approvals hold it up; the
    /// lifecycle and freezes do, so that nothing reaches an environment's targets before the
    /// release earned the environment, nor while it is frozen.
    pub kind: Kind,
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
    pub guard_override: Option<audit_event::GuardOverride>,
    /// Paths of shipped hotfixes the release changes differently: allowed, for review.
    pub review: Vec<String>,
    /// The overrides granted, stored with the deployment for the approval that starts it.
    pub overrides: Overrides,
}

/// The overrides granted on a deployment request, kept with the deployment (as JSON): the
/// approval that starts it judges policy again and honours them, without asking the approver
/// for the requester's permissions again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// `--allow-downgrade`.
    #[serde(default)]
    pub allow_downgrade: bool,
    /// The reason of an accepted `--break-glass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<String>,
    /// An accepted `--override-guard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_guard: Option<GuardOverride>,
    /// The reason of `--skip-backup`: the targets do not back up the application's data
    /// before they switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_backup: Option<String>,
}

/// An accepted `--override-guard`: its reason, and the hotfixes it let the release undo. It
/// covers only those: a hotfix shipped while the deployment waited was not overridden by
/// anyone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardOverride {
    pub reason: String,
    pub hotfixes: Vec<String>,
}

impl Overrides {
    /// The overrides stored with `record`; none for a deployment stored before they were.
    pub fn of(record: &DeploymentRecord) -> ServiceResult<Overrides> {
        serde_json::from_str(&record.overrides).map_err(|e| {
            ServiceError::internal(format!(
                "the overrides of deployment {} are unreadable: {e}",
                record.id
            ))
        })
    }

    /// As stored with the deployment.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("overrides serialize")
    }
}

/// The deployments of `app` that went live, in any environment, newest first.
pub async fn live_history(state: &AppState, app: &str) -> ServiceResult<Vec<DeploymentRecord>> {
    Ok(state
        .store
        .list_deployments(Some(app), 1000)
        .await?
        .into_iter()
        .filter(DeploymentRecord::went_live)
        .collect())
}

/// Applies the policy of `ask.env` to the request, refusing with the rule that stops it.
pub async fn judge(state: &AppState, caller: &Caller, ask: &Ask<'_>) -> ServiceResult<Verdict> {
    let env = &ask.env.name;
    let pipeline = state.store.list_environments().await?;
    match ask.kind {
        Kind::Deploy => {
            check_lifecycle_and_downgrade(
                state,
                &pipeline,
                ask.app,
                env,
                ask.release,
                ask.allow_downgrade,
            )
            .await?
        }
        Kind::Stage => check_lifecycle(state, &pipeline, ask.app, env, ask.release).await?,
        Kind::Rollback => {}
    }
    // The guard does not apply in development, where fixes are merged, nor to staging,
    // which switches nothing.
    let Guarded {
        overridden: guard_override,
        review,
    } = if is_development(&pipeline, env) || ask.kind == Kind::Stage {
        Guarded::default()
    } else {
        regression_guard(state, caller, ask).await?
    };
    // Only a switch waits for approvals, so only a switch's break-glass overrides them.
    let policy = match ask.kind {
        Kind::Deploy => ask.env.policy,
        Kind::Rollback | Kind::Stage => ferry_domain::pipeline::Policy {
            approvals_required: 0,
            ..ask.env.policy
        },
    };
    let freezes = crate::services::freezes::of(state, env).await?;
    let now = caller.now_ms();
    let break_glass = match ask.break_glass {
        Some(reason) => Some(
            break_glass(
                &caller.user.name,
                env,
                caller.level_on(ask.app, env),
                reason,
                &policy,
                frozen_until(&freezes, now).as_ref().map(FrozenNow::thaw),
            )
            .map_err(|e| ServiceError::forbidden(e.to_string()))?,
        ),
        None => {
            check_freeze(env, &freezes, now)
                .map_err(|e| ServiceError::policy("frozen", e.to_string()))?;
            None
        }
    };
    let overrides = Overrides {
        allow_downgrade: ask.allow_downgrade && ask.kind == Kind::Deploy,
        break_glass: break_glass.as_ref().map(|glass| glass.reason.clone()),
        skip_backup: None,
        override_guard: guard_override.as_ref().map(|accepted| GuardOverride {
            reason: accepted.reason.clone(),
            hotfixes: accepted
                .undone
                .iter()
                .map(|u| u.hotfix_version.clone())
                .collect(),
        }),
    };
    Ok(Verdict {
        awaits_approval: ask.kind == Kind::Deploy
            && needs_approval(&ask.env.policy, break_glass.is_some()),
        break_glass,
        guard_override: guard_override.map(|accepted| accepted.audited()),
        review,
        overrides,
    })
}

/// Applies the policy of `env` again, as it stands now, to a deployment that waited for
/// approvals and is about to start: lifecycle, downgrade, the regression guard and freeze
/// windows, honouring the `overrides` granted on the request. The approvals themselves are
/// the caller's business.
pub async fn rejudge(
    state: &AppState,
    caller: &Caller,
    app: &App,
    env: &Environment,
    release: &Release,
    overrides: &Overrides,
) -> ServiceResult<()> {
    let pipeline = state.store.list_environments().await?;
    check_lifecycle_and_downgrade(
        state,
        &pipeline,
        app,
        &env.name,
        release,
        overrides.allow_downgrade,
    )
    .await?;
    if !is_development(&pipeline, &env.name) {
        let overridden: &[String] = overrides
            .override_guard
            .as_ref()
            .map_or(&[], |o| o.hotfixes.as_slice());
        let undone: Vec<Undone> =
            crate::services::support::guard(state, &app.name, &env.name, release)
                .await?
                .undone
                .into_iter()
                .filter(|u| !overridden.contains(&u.hotfix_version))
                .collect();
        if !undone.is_empty() {
            // Only a deploy waits for approvals, so this is never a rollback.
            return Err(guard_refusal(undone, false));
        }
    }
    if overrides.break_glass.is_none() {
        let freezes = crate::services::freezes::of(state, &env.name).await?;
        check_freeze(&env.name, &freezes, caller.now_ms())
            .map_err(|e| ServiceError::policy("frozen", e.to_string()))?;
    }
    Ok(())
}

/// The release's lifecycle through the pipeline: it has earned `env`.
async fn check_lifecycle(
    state: &AppState,
    pipeline: &[Environment],
    app: &App,
    env: &str,
    release: &Release,
) -> ServiceResult<()> {
    let history = live_history(state, &app.name).await?;
    check_earned(pipeline, app, env, release, &history)
}

/// [`check_lifecycle`] from the application's live history, newest first.
fn check_earned(
    pipeline: &[Environment],
    app: &App,
    env: &str,
    release: &Release,
    history: &[DeploymentRecord],
) -> ServiceResult<()> {
    let (app, version) = (&app.name, &release.version);
    let passed: Vec<&str> = history
        .iter()
        .filter(|d| d.version == *version)
        .map(|d| d.env.as_str())
        .collect();
    let candidate = Candidate {
        app,
        version,
        kind: match release.hotfix_of {
            Some(_) => ReleaseKind::Hotfix,
            None => ReleaseKind::Product,
        },
    };
    check_entry(pipeline, &candidate, &passed, env)
        .map_err(|e| ServiceError::policy("lifecycle", e.to_string()))
}

/// The release's lifecycle through the pipeline, and, unless `allow_downgrade`, no going
/// back to an older release than the one running in `env`.
async fn check_lifecycle_and_downgrade(
    state: &AppState,
    pipeline: &[Environment],
    app: &App,
    env: &str,
    release: &Release,
    allow_downgrade: bool,
) -> ServiceResult<()> {
    let history = live_history(state, &app.name).await?;
    check_earned(pipeline, app, env, release, &history)?;
    let (app, version) = (&app.name, &release.version);
    if allow_downgrade {
        return Ok(());
    }
    // Oldest first, each version where it first succeeded here.
    let mut first_seen: Vec<&str> = Vec::new();
    for d in history.iter().rev().filter(|d| d.env == env) {
        if !first_seen.contains(&d.version.as_str()) {
            first_seen.push(&d.version);
        }
    }
    let running = history
        .iter()
        .find(|d| d.env == env)
        .map(|d| d.version.as_str());
    check_downgrade(app, env, &first_seen, running, version)
        .map_err(|e| ServiceError::policy("downgrade", e.to_string()))
}

/// The regression guard's refusal: every undone hotfix named in the message, and given to
/// scripts in `details`.
fn guard_refusal(undone: Vec<Undone>, going_back: bool) -> ServiceError {
    let details = serde_json::json!({ "undone": undone_json(&undone) });
    let refusal = UndoneHotfixes { undone, going_back };
    ServiceError::policy("guard", refusal.to_string()).with_details(details)
}

/// Each undone hotfix: its version, its incident and the paths missing the fix.
fn undone_json(undone: &[Undone]) -> Vec<serde_json::Value> {
    undone
        .iter()
        .map(|u| {
            serde_json::json!({ "hotfix_version": u.hotfix_version, "incident": u.incident,
                "missing": u.missing })
        })
        .collect()
}

/// What the regression guard let through: the override accepted, if any, and the paths
/// changed differently from a shipped hotfix, for review.
#[derive(Default)]
struct Guarded {
    overridden: Option<AcceptedOverride>,
    review: Vec<String>,
}

/// An accepted `--override-guard`: its reason and the hotfixes it lets the release undo.
struct AcceptedOverride {
    reason: String,
    undone: Vec<Undone>,
}

impl AcceptedOverride {
    /// What the audit event of the override records.
    fn audited(&self) -> audit_event::GuardOverride {
        audit_event::GuardOverride {
            reason: self.reason.clone(),
            overridden: self
                .undone
                .iter()
                .map(|u| audit_event::OverriddenHotfix {
                    hotfix_version: u.hotfix_version.clone(),
                    incident: u.incident,
                    missing: u.missing.clone(),
                })
                .collect(),
        }
    }
}

/// The regression guard: a release that would undo a hotfix shipped to production is refused
/// unless `--override-guard --reason` comes from someone with approve level there. Rollbacks
/// are checked too: going back past a shipped hotfix undoes it. An accepted override gives
/// its reason and the hotfixes it lets through.
async fn regression_guard(
    state: &AppState,
    caller: &Caller,
    ask: &Ask<'_>,
) -> ServiceResult<Guarded> {
    let (app, env) = (&ask.app.name, &ask.env.name);
    let outcome = crate::services::support::guard(state, app, env, ask.release).await?;
    let Some(reason) = ask.override_guard else {
        if !outcome.undone.is_empty() {
            return Err(guard_refusal(outcome.undone, ask.kind == Kind::Rollback));
        }
        return Ok(Guarded {
            overridden: None,
            review: outcome.review,
        });
    };
    let level = caller.level_on(ask.app, env);
    if level < Level::Approve {
        return Err(ServiceError::forbidden(format!(
            "user {:?} has {level} on {env:?} for {app}; --override-guard needs approve",
            caller.user.name
        )));
    }
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ServiceError::policy(
                "guard",
                "--override-guard needs --reason TEXT: say why undoing the hotfix is intended",
            )
        })?;
    Ok(Guarded {
        overridden: Some(AcceptedOverride {
            reason: reason.to_owned(),
            undone: outcome.undone,
        }),
        review: outcome.review,
    })
}
