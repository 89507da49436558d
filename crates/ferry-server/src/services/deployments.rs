//! Deployments as use cases: deploy, promote, roll back, approve, reject and cancel. Each judges
//! the pipeline's policy through `super::policy`, records the change with its audit event in
//! one store call, and wakes the agents concerned.

use ferry_api::{
    ApplyConfig, CancelDeployment, CreateDeployment, CreatePromotion, CreateRollback, Review,
};
use ferry_domain::approval::{Approval, ApprovalError};
use ferry_domain::audit_event::{
    AuditAction, BreakGlassUsed, DeployChange, DeploymentApprove, DeploymentCancel,
    DeploymentReject, DeploymentRequested, RequestedChange, RollbackChange,
};
use ferry_domain::deployment::{self, Kind, Refusal as Ending, Strategy};
use ferry_domain::lifecycle::check_promotion;
use ferry_domain::liveness::Health;
use ferry_domain::name::validate_version;
use ferry_domain::permission::{Action, Level};
use ferry_domain::pipeline::{is_development, is_production};
use ferry_domain::rollback::rollback_target;
use ferry_domain::served::Served;
use ferry_store::{ApprovalRecord, DeploymentRecord, DeploymentUpdate, IncidentUpdate};

use super::apps::visible_app;
use super::orchestrator::desired_changes;
use super::pipeline::environment;
use super::policy::{judge, live_history, rejudge, Ask, Overrides, Verdict};
use super::refusals;
use super::{until_no_conflict, Refusal, ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// The version each target of the placement serves now, as last reported.
async fn targets_with_current(
    state: &AppState,
    app: &str,
    env: &str,
) -> ServiceResult<Vec<(String, Option<String>)>> {
    let placement = state.store.placement(app, env).await?;
    let reported = state.store.target_apps(None).await?;
    Ok(placement
        .into_iter()
        .map(|target| {
            let current = reported
                .iter()
                .find(|r| r.target == target && r.app == app)
                .and_then(|r| Some(Served::new(r.current_version.clone()?, r.current_config)));
            (target, current.map(|served| served.label()))
        })
        .collect())
}

/// The targets whose agents are there, of `targets` (the placement of `app` in `env`),
/// and the names of those left out. A target whose agent is offline (missed three
/// heartbeats) refuses the deployment, naming it and when it was last seen, unless
/// `skip_offline` leaves it out; with every target offline it is refused all the same.
async fn online_targets(
    state: &AppState,
    caller: &Caller,
    (app, env): (&str, &str),
    targets: Vec<(String, Option<String>)>,
    skip_offline: bool,
) -> ServiceResult<(Vec<(String, Option<String>)>, Vec<String>)> {
    let known = state.store.list_targets().await?;
    let now = caller.now_ms();
    let mut offline = Vec::new();
    let (online, left_out): (Vec<_>, Vec<_>) = targets.into_iter().partition(|(name, _)| {
        let target = known.iter().find(|t| &t.name == name);
        let (enrolled, seen) = target.map_or((None, None), |t| (t.enrolled_ms, t.last_seen_ms));
        let up = state.liveness.health(enrolled, seen, now) == Health::Online;
        if !up {
            offline.push((name.clone(), seen));
        }
        up
    });
    if offline.is_empty() {
        return Ok((online, Vec::new()));
    }
    let named: Vec<String> = offline
        .iter()
        .map(|(name, seen)| format!("{name} ({})", state.liveness.last_seen(*seen, now)))
        .collect();
    let details = serde_json::json!({ "offline": offline
        .iter()
        .map(|(name, seen)| serde_json::json!({
            "target": name,
            "last_seen": seen.map(crate::views::rfc3339),
        }))
        .collect::<Vec<_>>() });
    let message = if online.is_empty() {
        format!(
            "every target of {app} in {env} is offline: {}; start their agents (`ferry target list` shows when each was last seen)",
            named.join(", ")
        )
    } else if skip_offline {
        return Ok((online, left_out.into_iter().map(|(name, _)| name).collect()));
    } else {
        format!(
            "{} {} offline: start its agent again, or leave it out with --skip-offline (`ferry target list` shows every target)",
            named.join(", "),
            if named.len() == 1 { "is" } else { "are" }
        )
    };
    Err(ServiceError::policy("offline", message).with_details(details))
}

/// A deployment about to be created.
struct NewDeployment<'a> {
    app: &'a str,
    env: &'a str,
    version: &'a str,
    /// The configuration revision delivered with the release (0: none).
    config: u64,
    kind: Kind,
    strategy: Strategy,
    /// What it changes, as the audit event records it.
    change: RequestedChange,
    /// What policy decided: whether it waits for approvals (its targets stage the release
    /// meanwhile) instead of starting, and the overrides to audit.
    verdict: Verdict,
    /// An incident change saved with the deployment.
    incident: Option<IncidentUpdate>,
    /// Leave out targets whose agent is offline instead of refusing.
    skip_offline: bool,
}

/// `--skip-backup REASON`, checked: only where a backup would be taken (a deployment that
/// switches, to a protected environment), and with a reason.
fn skip_backup(
    reason: Option<&str>,
    env: &ferry_domain::pipeline::Environment,
    kind: Kind,
) -> ServiceResult<Option<String>> {
    let Some(reason) = reason else {
        return Ok(None);
    };
    if reason.trim().is_empty() {
        return Err(ServiceError::invalid(
            "--skip-backup needs a reason saying why the data is not backed up first: it is audited and sent to the application's team",
        ));
    }
    if !env.policy.protected || kind == Kind::Stage {
        return Err(ServiceError::invalid(format!(
            "--skip-backup is for deployments that switch a protected environment's targets, which back up first; {} takes no backup before deploying{}",
            env.name,
            if kind == Kind::Stage { " (and --stage-only switches nothing)" } else { "" }
        )));
    }
    Ok(Some(reason.trim().to_owned()))
}

/// Creates and starts a deployment, or leaves it awaiting approval; refused when the
/// environment has no target for the app.
async fn start(
    state: &AppState,
    caller: &Caller,
    new: NewDeployment<'_>,
) -> ServiceResult<DeploymentRecord> {
    let (app, env) = (new.app, new.env);
    let targets = targets_with_current(state, app, env).await?;
    if targets.is_empty() {
        // An environment between the first and the last may also be skipped.
        let pipeline = state.store.list_environments().await?;
        let skippable = pipeline.iter().any(|e| e.name == env && !e.optional)
            && !is_development(&pipeline, env)
            && !is_production(&pipeline, env);
        let or_skip = match skippable {
            true => format!(", or let releases skip it: `ferry env set {env} --optional true`"),
            false => String::new(),
        };
        return Err(ServiceError::invalid(format!(
            "{app} has no target in {env}: enroll one (`ferry target enroll {env} NAME`) and start its agent{or_skip}"
        )));
    }
    let (targets, skipped_offline) =
        online_targets(state, caller, (app, env), targets, new.skip_offline).await?;
    let mut machine = if new.kind == Kind::Stage {
        deployment::Deployment::staging(targets)
    } else {
        deployment::Deployment::new(new.strategy, targets)
    };
    let commands = if new.verdict.awaits_approval {
        machine.await_approval()
    } else {
        machine.start(caller.now_ms())
    };
    let mut record = DeploymentRecord {
        config: new.config,
        id: 0,
        app: app.to_owned(),
        env: env.to_owned(),
        version: new.version.to_owned(),
        kind: new.kind,
        state: machine,
        revision: 0,
        requested_by: caller.user.name.clone(),
        created_ms: caller.now_ms(),
        updated_ms: caller.now_ms(),
        overrides: new.verdict.overrides.to_json(),
        review: new.verdict.review.clone(),
    };
    let changes = desired_changes(&mut record, commands);
    let verdict = new.verdict;
    let requested = DeploymentRequested {
        change: new.change,
        env: env.to_owned(),
        override_guard: verdict.guard_override,
        review: verdict.review,
        break_glass: verdict.break_glass.as_ref().map(|glass| BreakGlassUsed {
            kind: new.kind.to_owned(),
            reason: glass.reason.clone(),
            summary: glass.summary(&caller.user.name, env),
        }),
        team: team_of(state, app).await?,
        skipped_offline,
        skip_backup: verdict.overrides.skip_backup.clone(),
    };
    let audit = caller.audit(
        requested.into_action(new.kind == Kind::Stage),
        String::new(),
        Some(app),
    );
    record = state
        .store
        .create_deployment(record, changes.clone(), audit, new.incident)
        .await?;
    state.wakeups.deployment_changed(&changes);
    Ok(record)
}

/// The team that owns `app`, whose channels hear about its overrides.
async fn team_of(state: &AppState, app: &str) -> ServiceResult<String> {
    Ok(state
        .store
        .app(app)
        .await?
        .map(|a| a.team)
        .unwrap_or_default())
}

fn strategy(name: Option<&str>) -> ServiceResult<Strategy> {
    name.map_or(Ok(Strategy::Rolling), |name| {
        Strategy::parse(name).map_err(|e| ServiceError::invalid(e.to_string()))
    })
}

/// Deploys a release to an environment (deploy level there), under the environment's
/// policy: the release's lifecycle, no silent downgrade, freeze windows and approvals
/// (`break_glass` overrides the last two). A stage-only deployment changes nothing served,
/// so it needs no approval and is not held to downgrades or the regression guard; the
/// lifecycle and freeze windows hold it like a deployment (release content reaches an
/// environment's targets only once the release earned it, and not during a freeze).
pub async fn deploy(
    state: &AppState,
    caller: &Caller,
    app: &str,
    request: CreateDeployment,
) -> ServiceResult<DeploymentRecord> {
    let stage_only = if request.stage_only {
        " (stage only)"
    } else {
        ""
    };
    let asked = format!(
        "deploy {app} {} to {}{stage_only}",
        request.version, request.env
    );
    let result = deploy_with(state, caller, app, request, None).await;
    refusals::recorded(state, caller, asked, Some(app), result).await
}

/// [`deploy`], saving `incident`'s change in the same transaction as the deployment (the
/// hotfix base `hotfix start` moved): both happen, or neither.
pub async fn deploy_with(
    state: &AppState,
    caller: &Caller,
    app: &str,
    request: CreateDeployment,
    incident: Option<IncidentUpdate>,
) -> ServiceResult<DeploymentRecord> {
    let app = visible_app(state, caller, app).await?;
    validate_version(&request.version)?;
    let env = environment(state, &request.env).await?;
    let strategy = strategy(request.strategy.as_deref())?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &env.name,
        level: Level::Deploy,
    })?;
    let release = state
        .store
        .release(&app.name, &request.version)
        .await?
        .ok_or_else(|| ServiceError::no_such_release(&app.name, &request.version))?;
    if request.stage_only && (request.allow_downgrade || request.override_guard) {
        return Err(ServiceError::invalid(
            "--stage-only switches nothing, so it takes no --allow-downgrade or --override-guard: they are for the deployment that switches",
        ));
    }
    let kind = if request.stage_only {
        Kind::Stage
    } else {
        Kind::Deploy
    };
    let ask = Ask {
        app: &app,
        env: &env,
        release: &release,
        kind,
        allow_downgrade: request.allow_downgrade,
        break_glass: request.break_glass.then_some(request.reason.as_deref()),
        override_guard: request.override_guard.then_some(request.reason.as_deref()),
    };
    let skip_backup = skip_backup(request.skip_backup.as_deref(), &env, kind)?;
    let mut verdict = judge(state, caller, &ask).await?;
    verdict.overrides.skip_backup = skip_backup;
    // Every deployment delivers the environment's newest configuration with its release.
    let config = newest_config(state, &app.name, &env.name).await?;
    let change = RequestedChange::Deploy(DeployChange {
        version: request.version.clone(),
        strategy: request.strategy.clone(),
        reason: request.reason.clone(),
        allow_downgrade: request.allow_downgrade,
        config,
    });
    start(
        state,
        caller,
        NewDeployment {
            app: &app.name,
            env: &env.name,
            version: &request.version,
            config,
            kind,
            strategy,
            change,
            verdict,
            incident,
            skip_offline: request.skip_offline,
        },
    )
    .await
}

/// Deploys the release that runs in one environment to the next one, under the next one's
/// policy (deploy level there).
pub async fn promote(
    state: &AppState,
    caller: &Caller,
    app: &str,
    request: CreatePromotion,
) -> ServiceResult<DeploymentRecord> {
    let asked = format!("promote {app} from {} to {}", request.from, request.to);
    let result = promote_as_asked(state, caller, app, request).await;
    refusals::recorded(state, caller, asked, Some(app), result).await
}

async fn promote_as_asked(
    state: &AppState,
    caller: &Caller,
    app: &str,
    request: CreatePromotion,
) -> ServiceResult<DeploymentRecord> {
    let app = visible_app(state, caller, app).await?;
    let from = environment(state, &request.from).await?;
    let to = environment(state, &request.to).await?;
    let pipeline = state.store.list_environments().await?;
    check_promotion(&pipeline, &app.name, &from.name, &to.name)
        .map_err(|e| ServiceError::policy("lifecycle", e.to_string()))?;
    let running = running(state, &app.name, &from.name)
        .await?
        .map(|served| served.version)
        .ok_or_else(|| {
            ServiceError::invalid(format!(
                "nothing runs in {} yet to promote: deploy a release there first (`ferry deploy {} VERSION --to {}`)",
                from.name, app.name, from.name
            ))
        })?;
    // A release rolled back from there, with whichever configuration, is not brought back
    // by a promotion.
    let bad: Vec<String> = (state.store.bad_versions(&app.name, &to.name).await?.iter())
        .map(|label| Served::parse(label).version)
        .collect();
    ferry_domain::rollback::check_promoted_release(&app.name, &to.name, &running, &bad)
        .map_err(|e| ServiceError::policy("rolled_back", e.to_string()))?;
    // Its refusal is recorded once, as the promotion asked.
    deploy_with(
        state,
        caller,
        &app.name,
        CreateDeployment {
            version: running,
            env: to.name,
            strategy: request.strategy,
            reason: request.reason,
            allow_downgrade: request.allow_downgrade,
            break_glass: request.break_glass,
            override_guard: request.override_guard,
            skip_offline: request.skip_offline,
            skip_backup: request.skip_backup,
            ..CreateDeployment::default()
        },
        None,
    )
    .await
}

/// The release, with its configuration revision, that last deployed successfully to `env`
/// (what runs there).
async fn running(state: &AppState, app: &str, env: &str) -> ServiceResult<Option<Served>> {
    Ok(live_history(state, app)
        .await?
        .into_iter()
        .find(|d| d.env == env)
        .map(|d| d.served()))
}

/// Deploys the release `env` runs with the newest configuration revision there (`ferry
/// config apply`; deploy level): a deployment like any other, held to the environment's
/// freezes and approvals. Refused when the newest revision is what runs already.
pub async fn apply_config(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    request: ApplyConfig,
) -> ServiceResult<DeploymentRecord> {
    let asked = format!("apply the configuration of {app} in {env}");
    let result = apply_config_as_asked(state, caller, app, env, request).await;
    refusals::recorded(state, caller, asked, Some(app), result).await
}

async fn apply_config_as_asked(
    state: &AppState,
    caller: &Caller,
    app: &str,
    env: &str,
    request: ApplyConfig,
) -> ServiceResult<DeploymentRecord> {
    let app = visible_app(state, caller, app).await?;
    let env = environment(state, env).await?;
    caller.require(Action::ChangeConfig {
        team: &app.team,
        app: &app.name,
        env: &env.name,
    })?;
    let running = running(state, &app.name, &env.name)
        .await?
        .ok_or_else(|| {
            ServiceError::invalid(format!(
                "nothing runs in {env} yet: deploy a release (`ferry deploy {app} VERSION --to {env}`), which takes the newest configuration",
                env = env.name,
                app = app.name
            ))
        })?;
    let newest = newest_config(state, &app.name, &env.name).await?;
    if newest == 0 {
        return Err(ServiceError::invalid(format!(
            "{} has no configuration in {}: nothing to apply (`ferry config set {} --env {} KEY=VALUE` sets some)",
            app.name, env.name, app.name, env.name
        )));
    }
    if newest == running.config {
        return Err(ServiceError::invalid(format!(
            "{} runs {} {} with configuration {newest}, the newest: nothing to apply (`ferry config set` makes a new revision)",
            env.name, app.name, running.version
        )));
    }
    let version = running.version;
    deploy_with(
        state,
        caller,
        &app.name,
        CreateDeployment {
            version,
            env: env.name,
            strategy: request.strategy,
            reason: request.reason,
            break_glass: request.break_glass,
            skip_offline: request.skip_offline,
            skip_backup: request.skip_backup,
            ..CreateDeployment::default()
        },
        None,
    )
    .await
}

/// The newest configuration revision of `app` in `env` (0: none), which every deployment
/// there delivers with its release.
pub async fn newest_config(state: &AppState, app: &str, env: &str) -> ServiceResult<u64> {
    Ok((state.store.config_revision(app, env, None).await?).map_or(0, |r| r.revision))
}

/// `--to` as a rollback target among `live` (labels, newest first, the first running): a
/// label as it is, or a version alone as the newest label of that release that is not the
/// one running (so `--to 1.2` after a configuration change goes back to 1.2's previous
/// configuration).
fn newest_live_of(live: &[String], to: &str) -> String {
    if live.iter().any(|label| label == to) {
        return to.to_owned();
    }
    (live.iter().skip(1))
        .find(|label| Served::parse(label).version == to)
        .cloned()
        .unwrap_or_else(|| to.to_owned())
}

/// Goes back to a release that went live in the environment before (deploy level there),
/// under its freeze windows and regression guard; the release rolled back from is marked bad
/// there.
pub async fn rollback(
    state: &AppState,
    caller: &Caller,
    app: &str,
    request: CreateRollback,
) -> ServiceResult<DeploymentRecord> {
    let asked = format!("roll back {app} in {}", request.env);
    let result = rollback_as_asked(state, caller, app, request).await;
    refusals::recorded(state, caller, asked, Some(app), result).await
}

async fn rollback_as_asked(
    state: &AppState,
    caller: &Caller,
    app: &str,
    request: CreateRollback,
) -> ServiceResult<DeploymentRecord> {
    let app = visible_app(state, caller, app).await?;
    let env = environment(state, &request.env).await?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &env.name,
        level: Level::Deploy,
    })?;
    if let Some(to) = &request.to {
        validate_version(&Served::parse(to).version)?;
    }
    // What went live, newest first, as releases with their configuration revisions: going
    // back after a configuration change takes the previous revision back too.
    let live: Vec<String> = live_history(state, &app.name)
        .await?
        .into_iter()
        .filter(|d| d.env == env.name)
        .map(|d| d.served().label())
        .collect();
    let bad = state.store.bad_versions(&app.name, &env.name).await?;
    let requested = request.to.as_deref().map(|to| newest_live_of(&live, to));
    let to =
        rollback_target(&app.name, &env.name, &live, &bad, requested.as_deref()).map_err(|e| {
            if e.is_policy() {
                ServiceError::policy("lifecycle", e.to_string())
            } else {
                ServiceError::invalid(e.to_string())
            }
        })?;
    let current = live[0].clone();
    let target = Served::parse(&to);
    let release = state
        .store
        .release(&app.name, &target.version)
        .await?
        .ok_or_else(|| ServiceError::no_such_release(&app.name, &target.version))?;
    let ask = Ask {
        app: &app,
        env: &env,
        release: &release,
        kind: Kind::Rollback,
        allow_downgrade: true,
        break_glass: request.break_glass.then_some(request.reason.as_deref()),
        override_guard: request.override_guard.then_some(request.reason.as_deref()),
    };
    let verdict = judge(state, caller, &ask).await?;
    let change = RequestedChange::Rollback(RollbackChange {
        from: current,
        to: to.clone(),
        reason: request.reason.clone(),
    });
    start(
        state,
        caller,
        NewDeployment {
            app: &app.name,
            env: &env.name,
            version: &target.version,
            config: target.config,
            kind: Kind::Rollback,
            strategy: Strategy::Parallel,
            change,
            verdict,
            incident: None,
            skip_offline: request.skip_offline,
        },
    )
    .await
}

/// A deployment the caller can see, and the environment it goes to.
async fn reviewed(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<
    (
        DeploymentRecord,
        ferry_store::App,
        ferry_domain::pipeline::Environment,
    ),
    ServiceError,
> {
    let (record, app) = visible_deployment(state, caller, id).await?;
    let env = environment(state, &record.env).await?;
    Ok((record, app, env))
}

/// Deployment `id` and its application, if the caller may see that application; one of an
/// application they cannot see is not found, as one that does not exist.
pub async fn visible_deployment(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> ServiceResult<(DeploymentRecord, ferry_store::App)> {
    let not_found =
        || ServiceError::not_found(format!("no deployment {id}: see `ferry deployment list`"));
    let record = state.store.deployment(id).await?.ok_or_else(not_found)?;
    let app = visible_app(state, caller, &record.app)
        .await
        .map_err(|_| not_found())?;
    Ok((record, app))
}

/// Approves a deployment awaiting approval (approve level on its environment in the app's
/// team; not the requester where self-approval is denied; once per person). The deployment
/// starts with the last approval it needs, if policy, judged again as it stands then, lets it;
/// otherwise that approval is refused and not recorded.
pub async fn approve(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: Review,
) -> ServiceResult<DeploymentRecord> {
    let result = approve_as_asked(state, caller, id, request).await;
    // A refusal is recorded with the deployment's application, where its team looks.
    let app = match &result {
        Err(_) => state
            .store
            .deployment(id)
            .await
            .ok()
            .flatten()
            .map(|d| d.app),
        Ok(_) => None,
    };
    let asked = format!("approve deployment {id}");
    refusals::recorded(state, caller, asked, app.as_deref(), result).await
}

async fn approve_as_asked(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: Review,
) -> ServiceResult<DeploymentRecord> {
    // Approvals are counted and recorded over the deployment's revision: of two approvals
    // landing together (on any server), one conflicts and is counted again, so exactly the
    // one that completes the count sees the other and starts the deployment.
    let request = &request;
    until_no_conflict(
        || async move {
            let (record, app, env) = reviewed(state, caller, id).await?;
            approve_once(state, caller, request, record, &app, &env).await
        },
        || busy(id),
    )
    .await
}

/// A deployment that kept changing while a review of it was recorded.
fn busy(id: i64) -> ServiceError {
    ServiceError::conflict(format!(
        "deployment {id} kept changing while your review was recorded: try again (`ferry deployment show {id}`)"
    ))
}

/// One approval, counted from the deployment as read.
async fn approve_once(
    state: &AppState,
    caller: &Caller,
    request: &Review,
    mut record: DeploymentRecord,
    app: &ferry_store::App,
    env: &ferry_domain::pipeline::Environment,
) -> ServiceResult<DeploymentRecord> {
    let id = record.id;
    let version = request
        .version
        .clone()
        .unwrap_or_else(|| record.version.clone());
    validate_version(&version)?;
    let approvals: Vec<Approval> = state
        .store
        .approvals(id)
        .await?
        .into_iter()
        .map(|a| Approval {
            approver: a.approver,
            version: a.version,
        })
        .collect();
    let review = domain_review(&record, env, &approvals);
    let outcome = review
        .approve(&caller.user.name, caller.level_on(app, &env.name), &version)
        .map_err(review_refusal)?;
    let mut changes = Vec::new();
    if outcome.ready {
        // What held when it was requested may not hold now: a freeze window, or a hotfix
        // shipped meanwhile. Refused, the approval is not recorded and it keeps waiting.
        let release = state
            .store
            .release(&app.name, &record.version)
            .await?
            .ok_or_else(|| ServiceError::no_such_release(&app.name, &record.version))?;
        rejudge(state, caller, app, env, &release, &Overrides::of(&record)?)
            .await
            .map_err(|refusal| cannot_start(id, refusal))?;
        let commands = record.state.start(caller.now_ms());
        changes = desired_changes(&mut record, commands);
    }
    record.updated_ms = caller.now_ms();
    let approval = ApprovalRecord {
        deployment_id: id,
        approver: caller.user.name.clone(),
        version: version.clone(),
        reason: request.reason.clone(),
        at_ms: caller.now_ms(),
    };
    let audit = caller.audit(
        AuditAction::DeploymentApprove(DeploymentApprove {
            version: version.clone(),
            env: env.name.clone(),
            reason: request.reason.clone(),
            approvals: outcome.approvals_now,
            required: env.policy.approvals_required,
            started: outcome.ready,
        }),
        format!("deployment/{id}"),
        Some(&app.name),
    );
    state
        .store
        .approve(approval, &record, changes.clone(), audit)
        .await
        .map_err(|e| match e {
            ferry_store::StoreError::AlreadyExists { .. } => ServiceError::policy(
                "approval",
                format!("{} approved deployment {id} already", caller.user.name),
            ),
            ferry_store::StoreError::Refused(message) => ServiceError::policy("approval", message),
            other => other.into(),
        })?;
    record.revision += 1;
    state.wakeups.deployment_changed(&changes);
    Ok(record)
}

/// Rejects a deployment awaiting approval, with a reason (approve level, or the requester
/// withdrawing their own). It ends `rejected` (or `withdrawn`) and its targets stop staging
/// it.
pub async fn reject(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: Review,
) -> ServiceResult<DeploymentRecord> {
    let request = &request;
    until_no_conflict(|| reject_once(state, caller, id, request), || busy(id)).await
}

/// One rejection, from the deployment as read.
async fn reject_once(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: &Review,
) -> ServiceResult<DeploymentRecord> {
    let (mut record, app, env) = reviewed(state, caller, id).await?;
    let rejection = domain_review(&record, &env, &[])
        .reject(
            &caller.user.name,
            caller.level_on(&app, &env.name),
            request.reason.as_deref().unwrap_or_default(),
        )
        .map_err(review_refusal)?;
    let by = caller.user.name.clone();
    let refusal = if rejection.withdrawn {
        Ending::Withdrawn {
            by,
            reason: rejection.reason.clone(),
        }
    } else {
        Ending::Rejected {
            by,
            reason: rejection.reason.clone(),
        }
    };
    record
        .state
        .refuse(refusal)
        .map_err(|e| ServiceError::policy("approval", e.to_string()))?;
    record.updated_ms = caller.now_ms();
    let audit = caller.audit(
        AuditAction::DeploymentReject(DeploymentReject {
            version: record.version.clone(),
            env: env.name.clone(),
            reason: rejection.reason.clone(),
            withdrawn: rejection.withdrawn,
        }),
        format!("deployment/{id}"),
        Some(&app.name),
    );
    state
        .store
        .update_deployment(DeploymentUpdate::of(&record), audit)
        .await?;
    record.revision += 1;
    state.wakeups.deployment_changed(&[]);
    Ok(record)
}

/// Cancels a deployment awaiting approval or running (deploy level on its environment, the
/// level that started it). One awaiting approval ends at once; a running one stops as after
/// a failure (targets not switched yet are not switched, switched ones go back) and ends
/// `cancelled` once they are back, which frees the application and environment for the next
/// deployment. Saved over the deployment's revision, so a cancel racing an agent's report is
/// counted from whichever landed first.
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: CancelDeployment,
) -> ServiceResult<DeploymentRecord> {
    let request = &request;
    until_no_conflict(
        || cancel_once(state, caller, id, request),
        || {
            ServiceError::conflict(format!(
                "deployment {id} kept changing while your cancel was recorded: try again (`ferry deployment show {id}`)"
            ))
        },
    )
    .await
}

/// One cancel, from the deployment as read.
async fn cancel_once(
    state: &AppState,
    caller: &Caller,
    id: i64,
    request: &CancelDeployment,
) -> ServiceResult<DeploymentRecord> {
    let (mut record, app, env) = reviewed(state, caller, id).await?;
    caller.require(Action::OnApp {
        team: &app.team,
        app: &app.name,
        env: &env.name,
        level: Level::Deploy,
    })?;
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .unwrap_or("no reason given")
        .to_owned();
    let was = record.status();
    let commands = record
        .state
        .cancel(&caller.user.name, &reason)
        .map_err(|e| {
            ServiceError::policy(
                "cancel",
                format!(
                    "deployment {id} cannot be cancelled: {e}{}",
                    match e {
                        deployment::CannotCancel::Cancelling { .. } =>
                            format!(" (`ferry deployment show {id} --wait` follows it)"),
                        deployment::CannotCancel::Finished { .. } => String::new(),
                    }
                ),
            )
        })?;
    record.updated_ms = caller.now_ms();
    let changes = desired_changes(&mut record, commands);
    let audit = caller.audit(
        AuditAction::DeploymentCancel(DeploymentCancel {
            version: record.version.clone(),
            env: env.name.clone(),
            reason,
            was,
            team: app.team.clone(),
        }),
        format!("deployment/{id}"),
        Some(&app.name),
    );
    let update = DeploymentUpdate {
        changes: changes.clone(),
        ..DeploymentUpdate::of(&record)
    };
    state.store.update_deployment(update, audit).await?;
    record.revision += 1;
    state.wakeups.deployment_changed(&changes);
    Ok(record)
}

/// A policy refusal of the approval that would start deployment `id`: the same rule and
/// details, and what became of the approval.
fn cannot_start(id: i64, refusal: ServiceError) -> ServiceError {
    if !matches!(refusal.refusal, Refusal::Policy(_)) {
        return refusal;
    }
    let message = format!(
        "deployment {id} cannot start now: {}; the approval is not recorded and the deployment still awaits approval (approve again once that changes, or withdraw it with `ferry reject {id} --reason TEXT` and ask again)",
        refusal.message
    );
    ServiceError { message, ..refusal }
}

fn domain_review<'a>(
    record: &'a DeploymentRecord,
    env: &'a ferry_domain::pipeline::Environment,
    approvals: &'a [Approval],
) -> ferry_domain::approval::Review<'a> {
    ferry_domain::approval::Review {
        env: &env.name,
        policy: env.policy,
        requester: &record.requested_by,
        version: &record.version,
        status: record.status(),
        approvals,
    }
}

/// A refused approval or rejection: permission problems are 403, the rest policy (409) or
/// bad input (422).
fn review_refusal(error: ApprovalError) -> ServiceError {
    match error {
        ApprovalError::NotAllowed { .. } | ApprovalError::RejectNotAllowed { .. } => {
            ServiceError::forbidden(error.to_string())
        }
        ApprovalError::ReasonRequired => ServiceError::invalid(error.to_string()),
        _ => ServiceError::policy("approval", error.to_string()),
    }
}
