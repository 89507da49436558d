//! Capture: the hand edits on a target become a release (`ferry drift capture TARGET APP
//! --as VERSION`). A person asks ([`order`]: permission and everything that can be refused
//! before the agent works); the target's agent reads its tree, uploads the content the
//! server lacks and submits the manifest ([`record`]); the server creates the release as a
//! hotfix of the release the target ran, with the source "captured from TARGET by USER",
//! and records the target running it as a finished deployment, so history, rollback, the
//! regression guard and backport obligations see it like any hotfix that went live. The
//! request is audited as `drift.capture` with its task; what the agent made commits in one
//! transaction with its audit records (`release.create`, `drift.captured`, and
//! `backport.open` in production).
//!
//! No approval, freeze window or lifecycle is asked for: the content runs on the target
//! already, and the capture only names it. Whoever may create releases of the application
//! and deploy it to the target's environment may capture ([`Action::CaptureDrift`]).

use ferry_api::{AgentCapture, CaptureDrift, CapturedRelease, Task, TaskWork};
use ferry_cas::diff::diff;
use ferry_cas::source::Source;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::capture::check_capture_version;
use ferry_domain::deployment::{Deployment, Kind, Status, TargetAppState};
use ferry_domain::name::validate_version;
use ferry_domain::permission::Action;
use ferry_domain::pipeline::is_production;
use ferry_domain::served::Served;
use ferry_domain::task::TaskState;
use ferry_store::{
    ContentHold, DeploymentRecord, DesiredChange, DriftReport, NewCapture, NewRelease, StoreError,
    Target, TargetReport,
};

use super::apps::visible_app;
use super::manifests::load_manifest;
use super::releases::{check_hotfix_incident, store_manifest};
use super::{support, ServiceError, ServiceResult};
use crate::auth::Caller;
use crate::state::AppState;

/// A capture someone asked for: what the agent task carries to the target and back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureOrder {
    pub target: String,
    pub env: String,
    pub app: String,
    pub version: String,
    pub incident: Option<i64>,
    /// Who asked: the release's author and the audit records' actor.
    pub requested_by: String,
}

/// Asks the agent of the target to capture (an agent task, audited `drift.capture`), once
/// [`order`] found nothing to refuse and the target is online.
pub async fn request(
    state: &AppState,
    caller: &Caller,
    request: CaptureDrift,
) -> ServiceResult<Task> {
    let (order, target) = order(
        state,
        caller,
        &request.target,
        &request.app,
        &request.version,
        request.incident,
    )
    .await?;
    let audit = AuditAction::DriftCapture(audit_event::DriftCapture {
        env: order.env.clone(),
        task: 0,
        version: order.version.clone(),
        incident: order.incident,
    })
    .record(
        state.clock.now_ms(),
        &caller.user.name,
        format!("target/{}", order.target),
        Some(&order.app),
    );
    let work = TaskWork::CaptureDrift {
        version: order.version,
        incident: order.incident,
    };
    super::tasks::request(state, caller, &target, &order.app, work, audit).await
}

/// Creates the release `target`'s agent captured for one of its capture tasks (see
/// [`record`]): the task must be this target's, still pending, and ask for this
/// application and version.
pub async fn submit(
    state: &AppState,
    target: &Target,
    submitted: AgentCapture,
) -> ServiceResult<CapturedRelease> {
    let id = submitted.task;
    let missing = || ServiceError::not_found(format!("target {} has no task {id}", target.name));
    let task = state
        .store
        .task(id)
        .await?
        .filter(|task| task.target == target.name)
        .ok_or_else(missing)?;
    let incident = match serde_json::from_str(&task.work) {
        Ok(TaskWork::CaptureDrift { version, incident }) if version == submitted.version => {
            incident
        }
        _ => {
            return Err(ServiceError::invalid(format!(
                "task {id} does not ask to capture {} {}",
                submitted.app, submitted.version
            )))
        }
    };
    if task.state.at(task.requested_ms, state.clock.now_ms()) != TaskState::Pending {
        return Err(ServiceError::conflict(format!(
            "task {id} is over: nothing is created for it"
        )));
    }
    let order = CaptureOrder {
        target: task.target,
        env: task.env,
        app: task.app,
        version: submitted.version.clone(),
        incident,
        requested_by: task.requested_by,
    };
    record(state, target, &order, submitted).await
}

/// Checks that `caller` may capture `app` on `target` as `version` (the fix of `incident`,
/// if given), and everything that can be refused before the agent works: the target and
/// the application exist, the target runs the application, the version is new and later
/// than the running one, no deployment of the application to the environment is under way.
pub async fn order(
    state: &AppState,
    caller: &Caller,
    target: &str,
    app: &str,
    version: &str,
    incident: Option<i64>,
) -> ServiceResult<(CaptureOrder, Target)> {
    let app = visible_app(state, caller, app).await?;
    let target = super::targets::in_service(state, caller, target).await?;
    caller.require(Action::CaptureDrift {
        team: &app.team,
        app: &app.name,
        env: &target.env,
    })?;
    let running = running_release(state, &target, &app.name).await?;
    check_new_version(state, &app.name, &running, version).await?;
    if let Some(id) = incident {
        check_hotfix_incident(state, &app.name, id, Some(&running)).await?;
    }
    check_no_deployment_under_way(state, &app.name, &target.env).await?;
    let order = CaptureOrder {
        target: target.name.clone(),
        env: target.env.clone(),
        app: app.name,
        version: version.to_owned(),
        incident,
        requested_by: caller.user.name.clone(),
    };
    Ok((order, target))
}

/// Creates the release the agent of `target` captured for `order`, and records the target
/// running it. Checked again here, since time passed while the agent worked: the target still
/// runs the release the capture is made from, the version is still free, the manifest is
/// valid, differs from that release and references only content the server holds.
pub async fn record(
    state: &AppState,
    target: &Target,
    order: &CaptureOrder,
    submitted: AgentCapture,
) -> ServiceResult<CapturedRelease> {
    if submitted.app != order.app
        || submitted.version != order.version
        || target.name != order.target
    {
        return Err(ServiceError::invalid(format!(
            "this capture asked for {} {} on {}, not {} {} on {}",
            order.app, order.version, order.target, submitted.app, submitted.version, target.name
        )));
    }
    let (app, version) = (order.app.as_str(), order.version.as_str());
    let served = running_served(state, target, app).await?;
    let running = served.version.clone();
    if submitted.hotfix_of != running {
        return Err(ServiceError::conflict(format!(
            "{} runs {app} {running} now, not {}: the capture was made of a release the target no longer runs; capture again",
            target.name, submitted.hotfix_of
        )));
    }
    check_new_version(state, app, &running, version).await?;
    let manifest = submitted.manifest;
    manifest.validate()?;
    let base = state
        .store
        .release(app, &running)
        .await?
        .ok_or_else(|| ServiceError::no_such_release(app, &running))?;
    let changes = diff(&*load_manifest(state, &base).await?, &manifest);
    if changes.added.is_empty() && changes.removed.is_empty() && changes.modified.is_empty() {
        return Err(ServiceError::invalid(format!(
            "{} serves {app} {running} exactly as released: there is no drift to capture",
            target.name
        )));
    }
    let now = state.clock.now_ms();
    let user = order.requested_by.as_str();
    let source = Source::Captured {
        target: target.name.clone(),
        user: user.to_owned(),
    };
    // Shared with other creations, exclusive with garbage collection on every server: the
    // uploaded content cannot be collected before the release that references it commits.
    let _no_gc = state.store.hold_content(ContentHold::Shared).await?;
    let (manifest_blob, blobs) = store_manifest(state, &manifest).await?;
    let release = ferry_store::Release {
        app: app.to_owned(),
        version: version.to_owned(),
        digest: manifest.digest().to_hex(),
        manifest_blob: manifest_blob.to_hex(),
        files: manifest.n_files(),
        bytes: manifest.n_bytes(),
        source: serde_json::to_string(&source).expect("sources serialize"),
        notes: None,
        created_ms: now,
        created_by: user.to_owned(),
        hotfix_of: Some(running.clone()),
        incident: order.incident,
    };
    let subject = format!("release/{app}/{version}");
    let release_audit = super::releases::created(&release, &source, Vec::new(), Vec::new()).record(
        now,
        user,
        subject,
        Some(app),
    );
    let capture_audit = AuditAction::DriftCaptured(audit_event::DriftCaptured {
        target: target.name.clone(),
        env: target.env.clone(),
        version: version.to_owned(),
        hotfix_of: running.clone(),
        added: changes.added.len() as u64,
        removed: changes.removed.len() as u64,
        modified: changes.modified.len() as u64,
    })
    .record(now, user, String::new(), Some(app));
    // The captured release keeps the configuration the target served with it.
    let deployment = DeploymentRecord {
        config: served.config,
        id: 0,
        app: app.to_owned(),
        env: target.env.clone(),
        version: version.to_owned(),
        kind: Kind::Deploy,
        state: Deployment::captured(target.name.clone(), served.label(), now),
        revision: 0,
        requested_by: user.to_owned(),
        created_ms: now,
        updated_ms: now,
        overrides: "{}".to_owned(),
        review: Vec::new(),
    };
    let desired = vec![DesiredChange {
        config: served.config,
        target: target.name.clone(),
        app: app.to_owned(),
        version: Some(version.to_owned()),
        deployment_id: 0,
        stage_only: false,
    }];
    let pipeline = state.store.list_environments().await?;
    let opens = match is_production(&pipeline, &target.env) {
        true => {
            support::obligation_of_hotfix(state, app, version, running.clone(), order.incident)
                .await?
        }
        false => None,
    };
    let captured = state
        .store
        .capture_release(NewCapture {
            release: NewRelease {
                release,
                blobs,
                closes: Vec::new(),
                fulfils: Vec::new(),
            },
            release_audit,
            deployment,
            changes: desired.clone(),
            report: TargetReport {
                current_config: served.config,
                target: target.name.clone(),
                app: app.to_owned(),
                current_version: Some(version.to_owned()),
                state: TargetAppState::Succeeded,
                detail: Some(format!(
                    "captured from the files of {running} on the target"
                )),
                at_ms: now,
            },
            capture_audit,
            drift: DriftReport {
                target: target.name.clone(),
                app: app.to_owned(),
                version: version.to_owned(),
                paths: Vec::new(),
                path_count: 0,
                checked_ms: now,
            },
            opens,
        })
        .await
        .map_err(|error| match error {
            StoreError::AlreadyExists { .. } => taken(app, version),
            other => other.into(),
        })?;
    state.wakeups.deployment_changed(&desired);
    Ok(CapturedRelease {
        app: app.to_owned(),
        version: version.to_owned(),
        hotfix_of: running,
        digest: captured.release.digest,
        deployment: captured.deployment.id,
        backport: captured.backport.map(|b| b.id),
        paths: (changes.added.len() + changes.removed.len() + changes.modified.len()) as u64,
        added: first_paths(changes.added.into_iter().map(|p| p.path)),
        removed: first_paths(changes.removed.into_iter().map(|p| p.path)),
        modified: first_paths(changes.modified.into_iter().map(|p| p.path)),
    })
}

/// The most paths of each kind a capture's answer names: enough for people, small enough
/// for the task report it travels in (`ferry release diff` lists every path).
const NAMED_PATHS: usize = 100;

fn first_paths(paths: impl Iterator<Item = String>) -> Vec<String> {
    paths.take(NAMED_PATHS).collect()
}

/// The release `target` last reported running for `app`; refused when it runs none.
pub(super) async fn running_release(
    state: &AppState,
    target: &Target,
    app: &str,
) -> ServiceResult<String> {
    Ok(running_served(state, target, app).await?.version)
}

/// The release `target` last reported running for `app`, with its configuration revision;
/// refused when it runs none.
async fn running_served(state: &AppState, target: &Target, app: &str) -> ServiceResult<Served> {
    state
        .store
        .target_apps(Some(&target.name))
        .await?
        .into_iter()
        .find(|placed| placed.app == app)
        .and_then(|placed| Some(Served::new(placed.current_version?, placed.current_config)))
        .ok_or_else(|| {
            ServiceError::invalid(format!(
                "{} does not run {app}: `ferry drift {app}` shows the targets that run it and their drift",
                target.name
            ))
        })
}

/// Refuses `version` when it is not a valid version, exists already, or does not read as
/// later than `running`.
async fn check_new_version(
    state: &AppState,
    app: &str,
    running: &str,
    version: &str,
) -> ServiceResult<()> {
    validate_version(version)?;
    if state.store.release(app, version).await?.is_some() {
        return Err(taken(app, version));
    }
    check_capture_version(app, running, version).map_err(ServiceError::invalid)
}

fn taken(app: &str, version: &str) -> ServiceError {
    ServiceError::already_exists(format!(
        "release {app} {version} exists already: capture under a new version (`ferry release list {app}` shows the versions)"
    ))
}

/// Refuses while a deployment of `app` to `env` runs or awaits approval: the target may be
/// changing under the capture.
pub(super) async fn check_no_deployment_under_way(
    state: &AppState,
    app: &str,
    env: &str,
) -> ServiceResult<()> {
    let under_way = state
        .store
        .list_deployments(Some(app), 50)
        .await?
        .into_iter()
        .find(|d| d.env == env && matches!(d.status(), Status::Running | Status::AwaitingApproval));
    match under_way {
        Some(d) => Err(ServiceError::conflict(format!(
            "deployment {} of {app} to {env} is not finished: wait for it (`ferry deployment show {} --wait`), then try again",
            d.id, d.id
        ))),
        None => Ok(()),
    }
}
