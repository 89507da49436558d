//! Production support as the server applies it: the support path of a new incident, the
//! regression guard over shipped hotfixes, backport obligations, and escalation of critical
//! incidents nobody acknowledged. The rules live in the domain; this gathers what they need.

use ferry_domain::pipeline::{development, is_production, production};
use std::collections::BTreeMap;
use std::time::Duration;

use ferry_cas::manifest::{EntryKind, Manifest};
use ferry_domain::audit::AuditRecord;
use ferry_domain::audit_event::{self, AuditAction};
use ferry_domain::backport::{
    closes_obligation, releases_to_check, ExistingRelease, ObligationStatus,
};
use ferry_domain::guard::{check_guard, hotfix_changes, judge, Change, GuardReport};
use ferry_domain::incident::{IncidentStatus, Severity};
use ferry_domain::rotation::{due_escalation, responder, Responder};
use ferry_domain::routing::maintaining_team;
use ferry_domain::steady::Ages;
use ferry_domain::support::{plan_path, suggest_hotfix_version, SupportPath};
use ferry_store::{Backport, IncidentRecord, IncidentStep, Release};
use serde_json::{json, Value};

use crate::bootstrap::SERVER_ACTOR;
use crate::services::manifests::load_manifest;
use crate::services::policy::live_history;
use crate::services::{ServiceError, ServiceResult};
use crate::state::AppState;

/// What a path holds, for comparing trees: a file's content hash and mode, or a symlink's
/// target. Directories carry no content of their own and are left out.
pub fn content_map(manifest: &Manifest) -> BTreeMap<String, String> {
    manifest
        .entries
        .iter()
        .filter_map(|entry| {
            let content = match &entry.kind {
                EntryKind::File { hash, mode, .. } => format!("file {hash} {mode:o}"),
                EntryKind::Symlink { target } => format!("symlink {target}"),
                EntryKind::Dir { .. } => return None,
            };
            Some((entry.path.clone(), content))
        })
        .collect()
}

async fn release_content(
    state: &AppState,
    app: &str,
    version: &str,
) -> ServiceResult<BTreeMap<String, String>> {
    let release = state.store.release(app, version).await?.ok_or_else(|| {
        ServiceError::policy(
            "guard",
            format!(
                "release {version} of {app}, which the regression guard compares with, is no longer stored: create it again from its source (`ferry audit --app {app}` shows the source it was made from) with `ferry release create {app} {version} --from SOURCE`, or waive its backport obligation (`ferry backport list --app {app}`)"
            ),
        )
    })?;
    Ok(content_map(load_manifest(state, &release).await?.as_ref()))
}

/// How a candidate release treats one shipped hotfix.
async fn judge_against(
    state: &AppState,
    backport: &Backport,
    candidate: &BTreeMap<String, String>,
) -> ServiceResult<GuardReport> {
    Ok(judge(&changes_of(state, backport).await?, candidate))
}

/// What shipped hotfix `backport` changed from its base.
async fn changes_of(state: &AppState, backport: &Backport) -> ServiceResult<Vec<Change<String>>> {
    let base = release_content(state, &backport.app, &backport.base_version).await?;
    let fix = release_content(state, &backport.app, &backport.hotfix_version).await?;
    Ok(hotfix_changes(&base, &fix))
}

/// The regression guard's answer for a candidate: refusals, and paths to review.
#[derive(Default)]
pub struct GuardOutcome {
    /// One refusal per shipped hotfix the candidate would undo.
    pub undone: Vec<ferry_domain::guard::Undone>,
    /// `HOTFIX: PATH` for every path the candidate changed differently from a hotfix.
    pub review: Vec<String>,
}

/// Checks `candidate` against every hotfix of `app` that reached production, except those
/// whose obligation was waived: the team decided that fix need not reach the product line.
pub async fn guard(
    state: &AppState,
    app: &str,
    env: &str,
    candidate: &Release,
) -> ServiceResult<GuardOutcome> {
    let mut outcomes = guard_each(state, app, env, std::slice::from_ref(candidate)).await?;
    Ok(outcomes.pop().unwrap_or_default())
}

/// [`guard`] for each of `candidates`, in their order: the shipped hotfixes and what each
/// changed are read once for all of them (the dashboard judges every release of an
/// application at once).
pub async fn guard_each(
    state: &AppState,
    app: &str,
    env: &str,
    candidates: &[Release],
) -> ServiceResult<Vec<GuardOutcome>> {
    let shipped: Vec<Backport> = state
        .store
        .backports(Some(app))
        .await?
        .into_iter()
        .filter(|b| b.status.guards())
        .collect();
    let mut fixes = Vec::with_capacity(shipped.len());
    for backport in &shipped {
        fixes.push((backport, changes_of(state, backport).await?));
    }
    let mut outcomes = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        let mut outcome = GuardOutcome::default();
        if fixes.is_empty() {
            outcomes.push(outcome);
            continue;
        }
        let content = content_map(load_manifest(state, candidate).await?.as_ref());
        for (backport, changes) in &fixes {
            let report = judge(changes, &content);
            outcome.review.extend(
                report
                    .merged
                    .iter()
                    .map(|path| format!("{}: {path}", backport.hotfix_version)),
            );
            if let Err(undone) = check_guard(
                app,
                env,
                &candidate.version,
                &backport.hotfix_version,
                backport.incident,
                &report,
            ) {
                outcome.undone.push(undone);
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The open obligations of `app` whose fix a new product release includes.
pub async fn fulfilled_backports(
    state: &AppState,
    app: &str,
    manifest: &Manifest,
) -> ServiceResult<Vec<i64>> {
    let open: Vec<Backport> = state
        .store
        .backports(Some(app))
        .await?
        .into_iter()
        .filter(|b| b.status == ObligationStatus::Open)
        .collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let content = content_map(manifest);
    let mut done = Vec::new();
    for backport in open {
        if closes_obligation(&judge_against(state, &backport, &content).await?) {
            done.push(backport.id);
        }
    }
    Ok(done)
}

/// What ferry plans for a new incident of `app` in `env`.
pub struct Plan {
    pub path: SupportPath,
    pub base_version: Option<String>,
    pub suggested_version: Option<String>,
    pub source: Option<Value>,
}

/// What the last (production) and the first (development) environment run of `app` now.
pub async fn production_and_dev(
    state: &AppState,
    pipeline: &[ferry_domain::pipeline::Environment],
    app: &str,
) -> ServiceResult<(Option<String>, Option<String>)> {
    let history = live_history(state, app).await?;
    let running = |env: Option<&ferry_domain::pipeline::Environment>| {
        env.and_then(|e| history.iter().find(|d| d.env == e.name))
            .map(|d| d.version.clone())
    };
    Ok((
        running(production(pipeline)),
        running(development(pipeline)),
    ))
}

/// The suggested version of a hotfix of `base` and where `base` came from.
pub async fn hotfix_source(
    state: &AppState,
    app: &str,
    base: &str,
) -> ServiceResult<(String, Value)> {
    let releases = state.store.list_releases(app).await?;
    let taken: Vec<&str> = releases.iter().map(|r| r.version.as_str()).collect();
    let release = releases.iter().find(|r| r.version == base);
    let mut source: Value = release
        .and_then(|r| serde_json::from_str(&r.source).ok())
        .unwrap_or_else(|| json!({}));
    source["export"] = json!(format!("ferry release export {app} {base} ./{app}-{base}"));
    Ok((suggest_hotfix_version(base, &taken), source))
}

/// The seed's support table: compares what runs in production with what runs in dev.
pub async fn plan(
    state: &AppState,
    app: &str,
    env: &str,
    severity: Severity,
) -> ServiceResult<Plan> {
    let pipeline = state.store.list_environments().await?;
    let (production, dev) = production_and_dev(state, &pipeline, app).await?;
    let in_production = is_production(&pipeline, env);
    let path = plan_path(
        severity,
        in_production,
        production.as_deref(),
        dev.as_deref(),
    );
    if !path.is_hotfix() {
        return Ok(Plan {
            path,
            base_version: None,
            suggested_version: None,
            source: None,
        });
    }
    let base = production.expect("a hotfix path has a production release");
    let (suggested, source) = hotfix_source(state, app, &base).await?;
    Ok(Plan {
        path,
        suggested_version: Some(suggested),
        base_version: Some(base),
        source: Some(source),
    })
}

/// The backport obligation a deployment's success opens, with its audit event, to be saved
/// with the deployment's end: a hotfix that reached the last environment owes its fix to the
/// application's maintaining team (once per hotfix: the store keeps the first).
pub async fn obligation_opened_by(
    state: &AppState,
    app: &str,
    env: &str,
    version: &str,
) -> ServiceResult<Option<(Backport, AuditRecord)>> {
    let pipeline = state.store.list_environments().await?;
    if !is_production(&pipeline, env) {
        return Ok(None);
    }
    let Some(release) = state.store.release(app, version).await? else {
        return Ok(None);
    };
    let Some(base) = release.hotfix_of.clone() else {
        return Ok(None);
    };
    obligation_of_hotfix(state, app, version, base, release.incident).await
}

/// The backport obligation hotfix `version` of `base` (fixing `incident`) owes once it runs
/// in production, with its audit event: for a release not stored yet (a capture, stored
/// with its obligation in one transaction).
pub async fn obligation_of_hotfix(
    state: &AppState,
    app: &str,
    version: &str,
    base: String,
    incident_id: Option<i64>,
) -> ServiceResult<Option<(Backport, AuditRecord)>> {
    let pipeline = state.store.list_environments().await?;
    let incident = match incident_id {
        Some(id) => state.store.incident(id).await?,
        None => None,
    };
    // Without an incident, decide as the support table would now.
    let mode = match incident.as_ref().map(|i| i.path) {
        Some(path) => path.backport_mode(),
        None => {
            let dev = development(&pipeline).map(|e| e.name.as_str());
            let history = live_history(state, app).await?;
            let dev_version = history
                .iter()
                .find(|d| Some(d.env.as_str()) == dev)
                .map(|d| d.version.as_str());
            plan_path(Severity::Critical, true, Some(&base), dev_version).backport_mode()
        }
    };
    let Some(mode) = mode else {
        return Ok(None);
    };
    let now = state.clock.now_ms();
    // The maintaining team's work, whichever team the incident was routed to.
    let team = state
        .store
        .app(app)
        .await?
        .map(|a| maintaining_team(&a.team, a.maintainer.as_deref()).to_owned());
    let audit = AuditAction::BackportOpen(audit_event::BackportOpen {
        hotfix_version: version.to_owned(),
        base_version: base.clone(),
        incident: incident_id,
        mode,
        team: team.clone(),
    })
    .record(
        now,
        SERVER_ACTOR,
        format!("release/{app}/{version}"),
        Some(app),
    );
    let backport = Backport {
        id: 0,
        app: app.to_owned(),
        hotfix_version: version.to_owned(),
        base_version: base,
        incident: incident_id,
        mode,
        status: ObligationStatus::Open,
        closed_by: None,
        reason: None,
        opened_ms: now,
        closed_ms: None,
    };
    Ok(Some((backport, audit)))
}

/// After a hotfix's obligation was opened with its deployment's end: a product release made
/// meanwhile may already include the fix, and then the obligation is done at once. Until
/// this runs (or if it fails), the obligation stays open and the regression guard holds
/// later releases to the fix, which is the safe side.
pub async fn close_if_fixed_already(
    state: &AppState,
    app: &str,
    version: &str,
) -> ServiceResult<()> {
    let opened = state
        .store
        .backports(Some(app))
        .await?
        .into_iter()
        .find(|b| b.hotfix_version == version && b.status == ObligationStatus::Open);
    let Some(opened) = opened else {
        return Ok(());
    };
    let team = state
        .store
        .app(app)
        .await?
        .map(|a| maintaining_team(&a.team, a.maintainer.as_deref()).to_owned());
    close_if_already_included(state, &opened, team.as_deref()).await
}

/// Closes a new obligation as done when a release that exists already includes its fix:
/// the newest product release made after the hotfix's base, or what dev runs.
async fn close_if_already_included(
    state: &AppState,
    backport: &Backport,
    team: Option<&str>,
) -> ServiceResult<()> {
    let app = &backport.app;
    let releases = state.store.list_releases(app).await?;
    let Some(base) = releases.iter().find(|r| r.version == backport.base_version) else {
        return Ok(());
    };
    let pipeline = state.store.list_environments().await?;
    let (_, dev) = production_and_dev(state, &pipeline, app).await?;
    let existing: Vec<ExistingRelease> = releases
        .iter()
        .map(|r| ExistingRelease {
            version: &r.version,
            created_ms: r.created_ms,
            hotfix: r.hotfix_of.is_some(),
        })
        .collect();
    for version in releases_to_check(&existing, base.created_ms, dev.as_deref()) {
        let release = releases
            .iter()
            .find(|r| r.version == version)
            .expect("checked releases come from the list");
        let content = content_map(load_manifest(state, release).await?.as_ref());
        if !closes_obligation(&judge_against(state, backport, &content).await?) {
            continue;
        }
        let by = format!("release {version}");
        let audit = AuditAction::BackportDone(audit_event::BackportDone {
            backport: backport.id,
            hotfix_version: backport.hotfix_version.clone(),
            release: version.to_owned(),
            team: team.map(str::to_owned),
        })
        .record(
            state.clock.now_ms(),
            SERVER_ACTOR,
            format!("backport/{}", backport.id),
            Some(app),
        );
        let now = state.clock.now_ms();
        state
            .store
            .complete_backport(backport.id, &by, now, audit)
            .await?;
        return Ok(());
    }
    Ok(())
}

/// Who answers an incident of `team` opened at `opened_ms`, at escalation `level`: a person
/// of the rotation, or `None` for the team's leads.
pub async fn assignee(
    state: &AppState,
    team: &str,
    opened_ms: i64,
    level: u32,
) -> ServiceResult<Option<String>> {
    let support = state.store.team_support(team).await?;
    Ok(match support.rotation {
        Some(rotation) => match responder(&rotation, opened_ms, level) {
            Responder::Person(person) => Some(person),
            Responder::Leads => None,
        },
        None => None,
    })
}

/// Escalates every critical incident that stayed unacknowledged past its team's escalation
/// time: to the next person of the rotation, then to the team's leads. How long each has
/// been open is timed on the steady clock (`open_for`, by incident), so setting the
/// machine's clock neither escalates incidents early nor holds them back.
pub async fn escalate_due(state: &AppState, open_for: &mut Ages<i64>) -> ServiceResult<()> {
    let now = state.clock.read();
    for incident in state.store.incidents(None, false).await? {
        if incident.status != IncidentStatus::Open {
            continue;
        }
        let opened_now = open_for.now_for(incident.id, incident.opened_ms, now);
        let severity = incident.severity;
        let support = state.store.team_support(&incident.team).await?;
        let Some(level) = due_escalation(
            severity,
            false,
            false,
            incident.opened_ms,
            opened_now,
            support.escalate_after_ms,
            incident.escalation_level,
        ) else {
            continue;
        };
        let assignee = assignee(state, &incident.team, incident.opened_ms, level).await?;
        escalate(state, incident, level, assignee, now.wall_ms).await?;
    }
    open_for.end_pass();
    Ok(())
}

async fn escalate(
    state: &AppState,
    mut incident: IncidentRecord,
    level: u32,
    assignee: Option<String>,
    now: i64,
) -> ServiceResult<()> {
    let read_level = incident.escalation_level;
    let to = assignee
        .clone()
        .unwrap_or_else(|| format!("the leads of team {}", incident.team));
    incident.history.push(IncidentStep {
        at_ms: now,
        actor: SERVER_ACTOR.to_owned(),
        what: format!("escalated to {to}: not acknowledged in time"),
    });
    incident.escalation_level = level;
    incident.assignee = assignee;
    let audit = AuditAction::IncidentEscalate(audit_event::IncidentEscalate {
        incident: incident.id,
        level,
        assignee: incident.assignee.clone(),
        team: incident.team.clone(),
        title: incident.title.clone(),
        severity: incident.severity,
    })
    .record(
        now,
        SERVER_ACTOR,
        format!("incident/{}", incident.id),
        Some(&incident.app),
    );
    state
        .store
        .update_incident(incident, IncidentStatus::Open, read_level, audit)
        .await?;
    Ok(())
}

/// Checks for incidents to escalate every `every`, for as long as the server runs.
pub async fn run_escalations(state: AppState, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    let mut open_for = Ages::default();
    loop {
        ticker.tick().await;
        if let Err(error) = escalate_due(&state, &mut open_for).await {
            tracing::warn!("escalating incidents failed: {}", error.message);
        }
    }
}
